using System.Globalization;
using System.Text;
using System.Text.Json;
using ConnMgr.Benchmarks.Load.Plot;

namespace ConnMgr.Benchmarks.Load;

/// <summary>
/// The results of a run: the JSON file (<c>--out</c>: config, machine, summary, totals with histograms,
/// time series) and the Markdown summary (<c>--md</c>) with its PNG plots.
/// </summary>
internal sealed class LoadReport
{
    private const double MiB = 1024 * 1024;

    public required LoadOptions Options { get; init; }
    public required DateTime StartedUtc { get; init; }
    public required RunTotals Totals { get; init; }
    public required IReadOnlyList<TimePoint> Series { get; init; }
    public (long Before, long After, long Hard) FileDescriptors { get; init; }

    /// <summary>/proc/loadavg at the start and end: on a shared box, other work competes for the cores.</summary>
    public string LoadAverageStart { get; init; } = "?";
    public string LoadAverageEnd { get; init; } = ProcessProbe.ReadLoadAverage();

    public double DurationSeconds => Series.Count == 0 ? 0 : Series[^1].Seconds;

    /// <summary>Seconds at which the first process left the ramp, and the hold; NaN if never reached.</summary>
    public double RampEndSeconds => FirstAt(RunPhase.Hold);
    public double HoldEndSeconds => FirstAt(RunPhase.Close);

    private double FirstAt(RunPhase phase)
    {
        foreach (var p in Series)
        {
            if (p.Phase >= phase)
                return p.Seconds;
        }
        return double.NaN;
    }

    /// <summary>
    /// The point the per-connection figures are taken at: the last second of the hold (all clients in,
    /// memory settled), else the second with the most clients online.
    /// </summary>
    public TimePoint? SteadyState
    {
        get
        {
            TimePoint? best = null;
            foreach (var p in Series)
            {
                if (p.Phase == RunPhase.Hold)
                    best = p;
            }
            if (best is not null)
                return best;
            foreach (var p in Series)
            {
                if (best is null || p.LoggedIn > best.LoggedIn)
                    best = p;
            }
            return best;
        }
    }

    /// <summary>Server RSS before any client connected (the first sample).</summary>
    public long ServerRssBaseline => Series.Count == 0 ? -1 : Series[0].ServerRssBytes;

    public double ServerRssPerConnectionKiB
    {
        get
        {
            var steady = SteadyState;
            if (steady is null || steady.LoggedIn <= 0 || steady.ServerRssBytes < 0 || ServerRssBaseline < 0)
                return double.NaN;
            return (steady.ServerRssBytes - ServerRssBaseline) / 1024.0 / steady.LoggedIn;
        }
    }

    public double TcpMemoryPerConnectionKiB
    {
        get
        {
            var steady = SteadyState;
            if (steady is null || steady.LoggedIn <= 0 || steady.TcpMemoryBytes < 0 || Series[0].TcpMemoryBytes < 0)
                return double.NaN;
            return (steady.TcpMemoryBytes - Series[0].TcpMemoryBytes) / 1024.0 / steady.LoggedIn;
        }
    }

    /// <summary>Mean CPU percent over the seconds of one phase; NaN if none was measured.</summary>
    public double MeanCpu(RunPhase phase, bool server)
    {
        double sum = 0;
        var n = 0;
        foreach (var p in Series)
        {
            var value = server ? p.ServerCpuPercent : p.GeneratorCpuPercent;
            if (p.Phase == phase && !double.IsNaN(value))
            {
                sum += value;
                n++;
            }
        }
        return n == 0 ? double.NaN : sum / n;
    }

    public void WriteJson(string path)
    {
        using var stream = File.Create(path);
        using var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true });
        json.WriteStartObject();
        json.WriteString("tool", "ConnMgr.Benchmarks load");
        json.WriteString("label", Options.Label);
        json.WriteString("startedUtc", StartedUtc.ToString("O", CultureInfo.InvariantCulture));
        json.WriteNumber("durationSeconds", DurationSeconds);

        json.WriteStartObject("config");
        json.WriteString("host", Options.Host.ToString());
        json.WriteNumber("port", Options.Port);
        json.WriteStartArray("ports");
        foreach (var port in Options.Ports)
            json.WriteNumberValue(port);
        json.WriteEndArray();
        json.WriteString("domain", Options.Domain);
        json.WriteNumber("clients", Options.Clients);
        json.WriteNumber("first", Options.First);
        json.WriteString("users", Options.UserPattern);
        json.WriteString("mechanism", Options.MechanismName);
        json.WriteBoolean("tls", Options.Tls);
        json.WriteBoolean("tlsResume", Options.TlsResume);
        json.WriteNumber("rate", Options.Rate);
        json.WriteNumber("holdSeconds", Options.Hold.TotalSeconds);
        json.WriteNumber("intervalSeconds", Options.Interval.TotalSeconds);
        json.WriteNumber("neighbours", Options.Neighbours);
        json.WriteNumber("bodySize", Options.BodySize);
        json.WriteNumber("loginTimeoutSeconds", Options.LoginTimeout.TotalSeconds);
        json.WriteNumber("processes", Options.Processes);
        json.WriteNumber("seed", Options.Seed);
        json.WriteStartArray("sources");
        foreach (var source in Options.Sources)
            json.WriteStringValue(source.ToString());
        json.WriteEndArray();
        json.WriteStartArray("serverPids");
        foreach (var pid in Options.ServerPids)
            json.WriteNumberValue(pid);
        json.WriteEndArray();
        json.WriteEndObject();

        json.WriteStartObject("machine");
        json.WriteNumber("processorCount", Environment.ProcessorCount);
        json.WriteNumber("pageSize", Environment.SystemPageSize);
        json.WriteNumber("fdSoftLimitBefore", FileDescriptors.Before);
        json.WriteNumber("fdSoftLimit", FileDescriptors.After);
        json.WriteNumber("fdHardLimit", FileDescriptors.Hard);
        json.WriteString("loadAverageStart", LoadAverageStart);
        json.WriteString("loadAverageEnd", LoadAverageEnd);
        json.WriteEndObject();

        var t = Totals;
        var steady = SteadyState;
        json.WriteStartObject("summary");
        Number(json, "rampEndSeconds", RampEndSeconds);
        Number(json, "holdEndSeconds", HoldEndSeconds);
        json.WriteNumber("loginsSucceeded", t.LoginsSucceeded);
        json.WriteNumber("loginsFailed", t.LoginsFailed);
        Number(json, "loginsPerSecond", t.LoginRate);
        Percentiles(json, "loginTimeMs", t.LoginTime, withTail: false);
        json.WriteNumber("messagesSent", t.MessagesSent);
        json.WriteNumber("messagesReceived", t.MessagesReceived);
        json.WriteNumber("messagesOffline", t.MessagesOffline);
        json.WriteNumber("messagesDropped", t.MessagesDropped);
        Percentiles(json, "latencyMs", t.Latency, withTail: true);
        json.WriteNumber("errors", t.TotalErrors);
        json.WriteNumber("peakConnected", Series.Count == 0 ? 0 : Series.Max(p => p.Connected));
        json.WriteNumber("peakLoggedIn", Series.Count == 0 ? 0 : Series.Max(p => p.LoggedIn));
        if (steady is not null)
        {
            json.WriteStartObject("steadyState");
            json.WriteNumber("atSeconds", steady.Seconds);
            json.WriteNumber("loggedIn", steady.LoggedIn);
            json.WriteNumber("serverRssBytes", steady.ServerRssBytes);
            json.WriteNumber("serverRssBaselineBytes", ServerRssBaseline);
            Number(json, "serverRssPerConnectionKiB", ServerRssPerConnectionKiB);
            json.WriteNumber("tcpMemoryBytes", steady.TcpMemoryBytes);
            Number(json, "tcpMemoryPerConnectionKiB", TcpMemoryPerConnectionKiB);
            json.WriteNumber("generatorRssBytes", steady.GeneratorRssBytes);
            json.WriteEndObject();
        }
        json.WriteStartObject("cpuPercent");
        Number(json, "serverRamp", MeanCpu(RunPhase.Ramp, server: true));
        Number(json, "serverHold", MeanCpu(RunPhase.Hold, server: true));
        Number(json, "generatorRamp", MeanCpu(RunPhase.Ramp, server: false));
        Number(json, "generatorHold", MeanCpu(RunPhase.Hold, server: false));
        json.WriteEndObject();
        json.WriteEndObject();

        json.WritePropertyName("totals");
        t.Write(json);

        json.WriteStartArray("timeSeries");
        foreach (var p in Series)
        {
            json.WriteStartObject();
            json.WriteNumber("t", p.Seconds);
            json.WriteString("phase", p.Phase.ToString().ToLowerInvariant());
            json.WriteNumber("connecting", p.Connecting);
            json.WriteNumber("connected", p.Connected);
            json.WriteNumber("loggedIn", p.LoggedIn);
            json.WriteNumber("loginsSucceeded", p.LoginsSucceeded);
            json.WriteNumber("loginsFailed", p.LoginsFailed);
            json.WriteNumber("errors", p.Errors);
            Number(json, "loginsPerSecond", p.LoginsPerSecond);
            Number(json, "sentPerSecond", p.SentPerSecond);
            Number(json, "receivedPerSecond", p.ReceivedPerSecond);
            Number(json, "latencyP50Ms", p.LatencyP50Ms);
            Number(json, "latencyP99Ms", p.LatencyP99Ms);
            json.WriteNumber("serverRssBytes", p.ServerRssBytes);
            Number(json, "serverCpuPercent", p.ServerCpuPercent);
            json.WriteNumber("generatorRssBytes", p.GeneratorRssBytes);
            Number(json, "generatorCpuPercent", p.GeneratorCpuPercent);
            json.WriteNumber("tcpMemoryBytes", p.TcpMemoryBytes);
            json.WriteNumber("tcpInUse", p.TcpInUse);
            json.WriteEndObject();
        }
        json.WriteEndArray();
        json.WriteEndObject();
    }

    /// <summary>NaN and infinities are not JSON numbers: they are written as null.</summary>
    private static void Number(Utf8JsonWriter json, string name, double value)
    {
        if (double.IsFinite(value))
            json.WriteNumber(name, Math.Round(value, 3));
        else
            json.WriteNull(name);
    }

    private static void Percentiles(Utf8JsonWriter json, string name, LatencyHistogram h, bool withTail)
    {
        json.WriteStartObject(name);
        json.WriteNumber("count", h.Count);
        Number(json, "p50", h.ValueAtPercentile(50) / 1000.0);
        Number(json, "p99", h.ValueAtPercentile(99) / 1000.0);
        if (withTail)
            Number(json, "p999", h.ValueAtPercentile(99.9) / 1000.0);
        Number(json, "max", h.Max / 1000.0);
        Number(json, "mean", h.Mean / 1000.0);
        json.WriteEndObject();
    }

    /// <summary>Writes the Markdown summary and its plots, <c>NAME-connections.png</c> etc., beside it.</summary>
    public void WriteMarkdown(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var stem = Path.GetFileNameWithoutExtension(path);
        var plots = WritePlots(directory, stem);

        var t = Totals;
        var steady = SteadyState;
        var md = new StringBuilder();
        void Line(string text) => md.Append(text).Append('\n');
        string F(double value, string format = "0.0") => double.IsFinite(value) ? value.ToString(format, CultureInfo.InvariantCulture) : "-";
        string Ms(LatencyHistogram h, double percentile) => h.Count == 0 ? "-" : F(h.ValueAtPercentile(percentile) / 1000.0, "0.##");

        Line($"# Load run against {Options.Label}: {Options.Clients:N0} clients");
        Line("");
        Line($"Started {StartedUtc:yyyy-MM-dd HH:mm:ss} UTC, {F(DurationSeconds, "0")} s. Generated by `ConnMgr.Benchmarks load` on {Environment.ProcessorCount} cores; the server ran on the same box. Load average (1/5/15 min) {LoadAverageStart} at the start, {LoadAverageEnd} at the end: anything above the core count means other work competed with the server and the generator.");
        Line("");
        Line("## Configuration");
        Line("");
        Line("| setting | value |");
        Line("|---|---|");
        Line($"| server | {Options.Host}:{string.Join(',', Options.Ports)}, domain `{Options.Domain}`, {(Options.Tls ? "STARTTLS" : "no TLS")}{(Options.TlsResume ? " with session resumption" : "")} |");
        Line($"| users | `{Options.UserPattern}` from {Options.First}, {Options.MechanismName}, resource `{Options.Resource}` |");
        Line($"| ramp | {F(Options.Rate, "0.##")} logins/s, then hold {F(Options.Hold.TotalSeconds, "0")} s |");
        Line(Options.Interval > TimeSpan.Zero
            ? $"| chat | one message per user every {F(Options.Interval.TotalSeconds, "0.##")} s to one of {Options.Neighbours} neighbours, {Options.BodySize}-character bodies |"
            : "| chat | none |");
        Line($"| generator | {Options.Processes} process(es), {(Options.Sources.Count == 0 ? "kernel-chosen source address" : $"{Options.Sources.Count} source addresses")}, fd limit {FileDescriptors.After} (hard {FileDescriptors.Hard}) |");
        Line("");
        Line("## Results");
        Line("");
        Line("| measure | value |");
        Line("|---|---|");
        Line($"| logins | {t.LoginsSucceeded:N0} succeeded, {t.LoginsFailed:N0} failed |");
        Line($"| login rate | {F(t.LoginRate)} /s (first start to last success) |");
        Line($"| login time (connect to bound + presence) p50 / p99 / max | {Ms(t.LoginTime, 50)} / {Ms(t.LoginTime, 99)} / {F(t.LoginTime.Max / 1000.0, "0.##")} ms |");
        Line($"| messages sent / received / delivered offline / dropped | {t.MessagesSent:N0} / {t.MessagesReceived:N0} / {t.MessagesOffline:N0} / {t.MessagesDropped:N0} |");
        Line($"| message latency p50 / p99 / p99.9 / max | {Ms(t.Latency, 50)} / {Ms(t.Latency, 99)} / {Ms(t.Latency, 99.9)} / {(t.Latency.Count == 0 ? "-" : F(t.Latency.Max / 1000.0, "0.##"))} ms |");
        if (steady is not null)
        {
            if (steady.ServerRssBytes >= 0)
                Line($"| server RSS at {F(steady.Seconds, "0")} s ({steady.LoggedIn:N0} online) | {F(steady.ServerRssBytes / MiB)} MiB, {F(ServerRssBaseline / MiB)} MiB before: **{F(ServerRssPerConnectionKiB)} KiB per connection** |");
            Line($"| kernel TCP buffers, whole box, at {F(steady.Seconds, "0")} s | {F(steady.TcpMemoryBytes / MiB, "0.00")} MiB, {F(Series[0].TcpMemoryBytes / MiB, "0.00")} MiB before (idle sockets hold none) |");
            Line($"| generator RSS at {F(steady.Seconds, "0")} s | {F(steady.GeneratorRssBytes / MiB)} MiB |");
        }
        Line($"| CPU, % of one core, ramp / hold | server {F(MeanCpu(RunPhase.Ramp, true), "0")} / {F(MeanCpu(RunPhase.Hold, true), "0")}, generator {F(MeanCpu(RunPhase.Ramp, false), "0")} / {F(MeanCpu(RunPhase.Hold, false), "0")} |");
        Line($"| errors | {t.TotalErrors:N0} |");
        if (t.TotalErrors > 0)
        {
            Line("");
            Line("## Errors");
            Line("");
            Line("| kind | count | first |");
            Line("|---|---|---|");
            foreach (var kind in Enum.GetValues<LoadError>())
            {
                if (t.ErrorCounts[(int)kind] > 0)
                    Line($"| {kind} | {t.ErrorCounts[(int)kind]:N0} | {t.ErrorTexts[(int)kind]?.Replace("|", "\\|", StringComparison.Ordinal)} |");
            }
        }
        Line("");
        Line("## Over time");
        Line("");
        foreach (var (title, file) in plots)
            Line($"![{title}]({file})");
        File.WriteAllText(path, md.ToString());
    }

    private List<(string Title, string File)> WritePlots(string directory, string stem)
    {
        var x = Series.Select(p => p.Seconds).ToArray();
        double[] Of(Func<TimePoint, double> f) => [.. Series.Select(f)];
        static double Mb(long bytes) => bytes < 0 ? double.NaN : bytes / MiB;

        var plots = new List<(string, string, Raster)>
        {
            ("connections", "Connections", LinePlot.Render($"Connections: {Options.Label}", "SECONDS", "CLIENTS",
            [
                new PlotSeries("connected", LinePlot.Blue, x, Of(p => p.Connected)),
                new PlotSeries("online", LinePlot.Green, x, Of(p => p.LoggedIn)),
                new PlotSeries("failed logins", LinePlot.Red, x, Of(p => p.LoginsFailed)),
            ])),
            ("memory", "Memory", LinePlot.Render($"Memory: {Options.Label}", "SECONDS", "MIB",
            [
                new PlotSeries("server rss", LinePlot.Blue, x, Of(p => Mb(p.ServerRssBytes))),
                new PlotSeries("generator rss", LinePlot.Orange, x, Of(p => Mb(p.GeneratorRssBytes))),
                new PlotSeries("kernel tcp", LinePlot.Purple, x, Of(p => Mb(p.TcpMemoryBytes))),
            ])),
            ("cpu", "CPU", LinePlot.Render($"CPU: {Options.Label}", "SECONDS", "% OF ONE CORE",
            [
                new PlotSeries("server", LinePlot.Blue, x, Of(p => p.ServerCpuPercent)),
                new PlotSeries("generator", LinePlot.Orange, x, Of(p => p.GeneratorCpuPercent)),
            ])),
            ("latency", "Message latency", LinePlot.Render($"Message latency: {Options.Label}", "SECONDS", "MS",
            [
                new PlotSeries("p99", LinePlot.Red, x, Of(p => p.LatencyP99Ms)),
                new PlotSeries("p50", LinePlot.Green, x, Of(p => p.LatencyP50Ms)),
            ])),
        };
        var written = new List<(string, string)>();
        foreach (var (suffix, title, raster) in plots)
        {
            var file = $"{stem}-{suffix}.png";
            File.WriteAllBytes(Path.Combine(directory, file), PngEncoder.Encode(raster.Width, raster.Height, raster.Pixels));
            written.Add((title, file));
        }
        return written;
    }
}
