#!/usr/bin/env python3
"""Side-by-side table of load runs (the generator's --out JSON files), written into BENCHMARKS.md.

Usage: compare_report.py --tag TAG --benchmarks BENCHMARKS.md [--edges E] RUN.json [RUN.json ...]

The section between <!-- run:TAG --> and <!-- /run:TAG --> is replaced (or appended), so the file's
hand-written text and the other runs' sections stay. With two runs the last column is the ratio
second/first, oriented so that above 1 means the second server is better.
"""
import argparse
import json
import os
import re

ONE_GIB_KIB = 1024 * 1024


def load(path):
    with open(path) as f:
        run = json.load(f)
    # compare.sh leaves the servers' RSS before the warm-up beside the results.
    fresh = path[:-len(".json")] + ".fresh-rss"
    run["freshRssBytes"] = int(open(fresh).read()) if os.path.exists(fresh) else None
    return run


# The first seconds of the hold still carry the ramp's tail (logins queued in the server finishing).
SETTLE_SECONDS = 5


def hold_samples(run):
    hold = [s for s in run["timeSeries"] if s["phase"] == "hold"]
    return [s for s in hold if s["t"] >= hold[0]["t"] + SETTLE_SECONDS] if hold else []


def cpu_seconds_per_1000(run):
    """Server CPU seconds per 1,000 chat messages relayed during the hold (one message = one stanza in, one out)."""
    samples = hold_samples(run)
    cpu = relayed = 0.0
    for prev, cur in zip(samples, samples[1:]):
        dt = cur["t"] - prev["t"]
        if cur["serverCpuPercent"] is None:
            continue
        cpu += cur["serverCpuPercent"] / 100.0 * dt
        relayed += cur["receivedPerSecond"] * dt
    return 1000.0 * cpu / relayed if relayed > 0 else None


def hold_p99_median(run):
    values = sorted(s["latencyP99Ms"] for s in hold_samples(run) if s["latencyP99Ms"] is not None)
    return values[len(values) // 2] if values else None


def figures(run):
    s = run["summary"]
    steady = s.get("steadyState") or {}
    online = steady.get("loggedIn") or 0
    rss_kib = steady.get("serverRssPerConnectionKiB")
    tcp_kib = max(0.0, steady.get("tcpMemoryPerConnectionKiB") or 0.0)
    rss_bytes = steady.get("serverRssBytes", -1)
    absolute_kib = rss_bytes / 1024.0 / online if online and rss_bytes > 0 else None
    fresh = run.get("freshRssBytes")
    fresh_kib = (rss_bytes - fresh) / 1024.0 / online if online and rss_bytes > 0 and fresh else None
    # Per connection over the fresh process when there was a warm-up (its freed memory is reused, so the RSS
    # just before the measured ramp understates), else over the RSS just before the ramp.
    rss_kib = fresh_kib if fresh_kib is not None else rss_kib
    ramp_cpu = s["cpuPercent"]["serverRamp"]
    errors = run["totals"].get("errors", {})
    return {
        "logins": f'{s["loginsSucceeded"]:,} ok / {s["loginsFailed"]:,} failed',
        "logins_per_s": s["loginsPerSecond"],
        "logins_per_core_s": s["loginsPerSecond"] / (ramp_cpu / 100.0) if ramp_cpu else None,
        "login_p50": s["loginTimeMs"]["p50"],
        "login_p99": s["loginTimeMs"]["p99"],
        "online": online,
        "rss_kib": rss_kib,
        "rss_abs_kib": absolute_kib,
        "fresh_mib": fresh / 1048576.0 if fresh else None,
        "tcp_kib": tcp_kib,
        "mem_kib": rss_kib + tcp_kib if rss_kib is not None else None,
        "conns_per_gib": ONE_GIB_KIB / (rss_kib + tcp_kib) if rss_kib else None,
        "lat_p50": s["latencyMs"]["p50"],
        "lat_p99": s["latencyMs"]["p99"],
        "lat_p999": s["latencyMs"]["p999"],
        "lat_max": s["latencyMs"]["max"],
        "lat_hold_p99": hold_p99_median(run),
        "messages": f'{s["messagesSent"]:,} sent / {s["messagesReceived"]:,} received / {s["messagesDropped"]:,} dropped',
        "cpu_per_1000": cpu_seconds_per_1000(run),
        "server_cpu": f'{ramp_cpu:.0f} / {s["cpuPercent"]["serverHold"]:.0f}',
        "generator_cpu": f'{s["cpuPercent"]["generatorRamp"]:.0f} / {s["cpuPercent"]["generatorHold"]:.0f}',
        "errors": s["errors"],
        "error_kinds": ", ".join(f"{k} {v}" for k, v in errors.items()) if isinstance(errors, dict) else "",
        "load": f'{run["machine"]["loadAverageStart"]} -> {run["machine"]["loadAverageEnd"]}',
    }


# (key, label, format, higher is better?) -- None: no ratio.
ROWS = [
    ("logins", "logins", "{}", None),
    ("logins_per_s", "logins/s (first attempt to last success)", "{:.1f}", True),
    ("logins_per_core_s", "logins per server CPU-second during the ramp", "{:.1f}", True),
    ("login_p50", "login time p50, ms (connect to bound + presence)", "{:.1f}", False),
    ("login_p99", "login time p99, ms", "{:.1f}", False),
    ("online", "clients online at rest", "{:,}", None),
    ("fresh_mib", "server RSS of the fresh process before any client, MiB", "{:.1f}", None),
    ("rss_kib", "server RSS per connection, KiB (over the fresh process, warm-up residue included)", "{:.1f}", False),
    ("rss_abs_kib", "server RSS per connection, KiB (whole RSS / clients)", "{:.1f}", False),
    ("tcp_kib", "kernel TCP memory per connection, KiB (/proc/net/sockstat, whole box)", "{:.2f}", False),
    ("mem_kib", "memory per idle TLS connection, KiB (RSS over the fresh process + kernel)", "{:.1f}", False),
    ("conns_per_gib", "connections per GiB", "{:,.0f}", True),
    ("lat_p50", "message latency p50, ms (whole run)", "{:.2f}", False),
    ("lat_p99", "message latency p99, ms (whole run, ramp included)", "{:.2f}", False),
    ("lat_p999", "message latency p99.9, ms", "{:.2f}", False),
    ("lat_max", "message latency max, ms", "{:.2f}", False),
    ("lat_hold_p99", "message latency p99, ms (median second of the hold, after 5 s)", "{:.2f}", False),
    ("messages", "messages", "{}", None),
    ("cpu_per_1000", "server CPU s per 1,000 messages relayed (hold, after 5 s)", "{:.3f}", False),
    ("server_cpu", "server CPU, % of one core, ramp / hold", "{}", None),
    ("generator_cpu", "generator CPU, % of one core, ramp / hold", "{}", None),
    ("errors", "errors", "{}", None),
    ("error_kinds", "errors by kind", "{}", None),
    ("load", "load average (1/5/15 min) start -> end", "{}", None),
]


def cell(value, fmt):
    return "-" if value is None or value == "" else fmt.format(value)


def ratio(first, second, higher_better):
    if higher_better is None or first is None or second is None or first == 0 or second == 0:
        return ""
    r = second / first if higher_better else first / second
    return f"**{r:.2f}x**"


def section(tag, edges, runs, names):
    c = runs[0]["config"]
    lines = [
        f"<!-- run:{tag} -->",
        f"### {tag}",
        "",
        f'{c["clients"]:,} clients, {c["mechanism"]}, STARTTLS, ramp {c["rate"]:g} logins/s, hold {c["holdSeconds"]:g} s, '
        f'one {c["bodySize"]}-character message per user every {c["intervalSeconds"]:g} s to one of {c["neighbours"]} neighbours; '
        f'{c["processes"]} generator process(es), {len(c["sources"])} source address(es). '
        + (f"ConnMgr: one core process and {edges} edge processes. " if edges > 1 else "")
        + "Started " + ", ".join(f'{n} {r["startedUtc"][:19].replace("T", " ")} UTC' for n, r in zip(names, runs)) + ".",
        "",
    ]
    figs = [figures(r) for r in runs]
    header = "| measure | " + " | ".join(names) + (" | ratio |" if len(runs) == 2 else " |")
    lines += [header, "|---" * (len(runs) + 1 + (1 if len(runs) == 2 else 0)) + "|"]
    for key, label, fmt, better in ROWS:
        row = f"| {label} | " + " | ".join(cell(f[key], fmt) for f in figs)
        if len(runs) == 2:
            row += " | " + ratio(figs[0][key], figs[1][key], better)
        lines.append(row + " |")
    lines += ["", "Ratios are " + (f"{names[1]} over {names[0]}" if len(runs) == 2 else "") +
              ", oriented so that above 1 is better for the second server.", ""] if len(runs) == 2 else [""]
    for n in names:
        stem = f"{tag}-{n}"
        lines.append(f"{n}: [full report](plots/{stem}.md), "
                     f"![connections](plots/{stem}-connections.png) ![memory](plots/{stem}-memory.png) "
                     f"![cpu](plots/{stem}-cpu.png) ![latency](plots/{stem}-latency.png)")
        lines.append("")
    lines.append(f"<!-- /run:{tag} -->")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tag", required=True)
    parser.add_argument("--benchmarks", required=True)
    parser.add_argument("--edges", type=int, default=1)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    runs = [load(p) for p in args.runs]
    names = [r["label"] for r in runs]
    text = section(args.tag, args.edges, runs, names)
    existing = open(args.benchmarks).read() if os.path.exists(args.benchmarks) else "# Benchmarks\n\n"
    pattern = re.compile(rf"<!-- run:{re.escape(args.tag)} -->.*?<!-- /run:{re.escape(args.tag)} -->\n", re.S)
    if pattern.search(existing):
        existing = pattern.sub(lambda _: text, existing)
    else:
        existing = existing.rstrip("\n") + "\n\n" + text
    with open(args.benchmarks, "w") as f:
        f.write(existing)
    print(text)


if __name__ == "__main__":
    main()
