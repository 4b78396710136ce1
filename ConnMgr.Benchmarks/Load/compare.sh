#!/usr/bin/env bash
# Side by side: the same load generator, the same users, the same TLS certificate and the same settings
# against Debian's Prosody and against ConnMgr, one after the other in one run, then a table of both with
# the ratios written into ConnMgr.Benchmarks/BENCHMARKS.md (between markers named by --tag, so the
# hand-written parts of that file and the other runs' sections stay).
#
#   compare.sh [--clients N] [--rate R] [--hold DUR] [--interval DUR] [--servers "prosody connmgr"]
#              [--edges E] [--processes K] [--warmup W] [--tag NAME] [--dir DIR] [--no-build]
#              [-- EXTRA GENERATOR ARGS]
#
#   --clients N     clients (2000)                 --rate R        login attempts started per second (400)
#   --hold DUR      hold after the ramp (60s)      --interval DUR  one message per user per DUR (20s)
#   --servers LIST  which servers, in order ("prosody connmgr"; "connmgr" alone for sizes Prosody cannot hold)
#   --edges E       ConnMgr as one core process (Edge:Enabled=false) and E edge processes
#                   (Core:Enabled=false) on ports 5422, 5432, ...; the clients are spread over the edges.
#                   E=1 (default) runs the all-in-one daemon on 5422.
#   --processes K   generator processes (default: enough for 19,000 clients each)
#   --warmup W      before the measured run, W other users (numbers N+1..N+W) log in at the same rate, chat for
#                   10 s and leave (default: min(N, 2000); 0 = none), in the measured generator process(es)
#                   (load --warmup). The clock then starts with the server and the generator in their steady
#                   state, as a daemon that has been up for a while is: fresh, either .NET process spends a
#                   third of its CPU for its first few thousand logins in the JIT's tier-1 recompilation (perf),
#                   which a long-running process pays once. Both servers get the same warm-up.
#   --tag NAME      section name in BENCHMARKS.md and prefix of the plots in ConnMgr.Benchmarks/plots/
#                   (default: <clients>-<servers>)
#   --dir DIR       scratch: Prosody's data, ConnMgr's data, users, JSON results (/tmp/connmgr-compare)
#
# Both servers listen on loopback ports clear of the defaults (Prosody 5322, ConnMgr 5422, 5432, ..., core link
# 5412, below the edges), log warnings only, and are stopped by process id when the run ends or fails. Users are
# user1..userN with password "pass"; accounts already present are kept, so a second run starts at once.
# SCRAM-SHA-1 with clients that remember their SaltedPassword (RFC 5802 section 5.1): ConnMgr's salts
# are read from its store and derived before the ramp (--salts); Prosody's accounts share one salt
# (setup.sh), which the generator derives once. Neither server runs PBKDF2 at login.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bench="$(cd "$here/.." && pwd)"
repo="$(cd "$bench/.." && pwd)"

clients=2000 rate=400 hold=60s interval=20s servers="prosody connmgr" edges=1 processes="" tag="" build=1 warmup=""
dir=/tmp/connmgr-compare
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --clients) clients="$2"; shift 2 ;;
    --rate) rate="$2"; shift 2 ;;
    --hold) hold="$2"; shift 2 ;;
    --interval) interval="$2"; shift 2 ;;
    --servers) servers="$2"; shift 2 ;;
    --edges) edges="$2"; shift 2 ;;
    --processes) processes="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ "$clients" =~ ^[0-9]+$ && "$edges" =~ ^[0-9]+$ && "$edges" -ge 1 ]] || { echo "compare.sh: --clients and --edges take whole numbers" >&2; exit 2; }
# 19,000 clients per generator process leaves room under the 20,000-fd cap of this box.
[ -n "$processes" ] || processes=$(( (clients + 18999) / 19000 ))
[ -n "$warmup" ] || warmup=$(( clients < 2000 ? clients : 2000 ))
accounts=$(( clients + warmup ))
# One source address per 20,000 clients keeps each under its 28,232 ephemeral ports towards one port.
last_source=$(( 2 + clients / 20000 ))
sources="127.0.0.2-127.0.0.$last_source"
[ -n "$tag" ] || tag="$clients-${servers// /-}$([ "$edges" -gt 1 ] && echo "-$edges-edges" || true)"

domain=localhost
prosody_dir="$dir/prosody"
cert="$prosody_dir/certs/$domain.crt"
key="$prosody_dir/certs/$domain.key"
cm_dir="$dir/connmgr"
results="$dir/results"
plots="$bench/plots"
mkdir -p "$dir" "$cm_dir" "$results" "$plots" "$prosody_dir/certs"
export PROSODY_LOAD_DIR="$prosody_dir" PROSODY_LOAD_DOMAIN="$domain"

daemon_pids=()
stop_connmgr() {
  local pid
  for pid in "${daemon_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${daemon_pids[@]}"; do
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  daemon_pids=()
}
cleanup() {
  stop_connmgr
  if [[ " $servers " == *" prosody "* ]]; then "$here/prosody/setup.sh" stop >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

if [ "$build" = 1 ]; then
  echo "== building Release" >&2
  dotnet build "$bench/ConnMgr.Benchmarks.csproj" -c Release -v q -nologo 2>&1 | tail -n 3 >&2
fi
out_dir="$bench/bin/Release/net10.0"
connmgr=(dotnet "$out_dir/connmgr.dll")
generator=(dotnet "$out_dir/ConnMgr.Benchmarks.dll" load)

# One certificate for both servers: P-256, self-signed for the domain (setup.sh keeps an existing one).
if [ ! -s "$cert" ] || [ ! -s "$key" ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain" -keyout "$key" -out "$cert" 2>/dev/null
  chmod 600 "$key"
fi

echo "== users user1..user$accounts" >&2
users_file="$dir/users-$accounts.txt"
[ -s "$users_file" ] || for i in $(seq 1 "$accounts"); do echo "user$i:pass"; done > "$users_file"
if [[ " $servers " == *" prosody "* ]]; then "$here/prosody/setup.sh" register "$accounts" >&2; fi
salts="$dir/salts-$accounts.txt"
if [[ " $servers " == *" connmgr "* ]]; then
  # Existing users are skipped, so only the missing ones pay for their PBKDF2.
  "${connmgr[@]}" user import "$users_file" --DataDirectory="$cm_dir/core" >&2
  python3 - "$cm_dir/core/connmgr.db" "$salts" <<'PY'
import base64, sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
with open(sys.argv[2], "w") as out:
    for name, salt, iterations in db.execute("SELECT name, sha1_salt, sha1_iterations FROM users"):
        out.write(f"{name} {base64.b64encode(salt).decode()} {iterations} pass\n")
PY
fi

common=(--clients "$clients" --rate "$rate" --hold "$hold" --interval "$interval" --login-timeout 120s --warmup "$warmup"
        --processes "$processes" --sources "$sources" --domain "$domain" --mech SCRAM-SHA-1 "${extra[@]}")

# RSS of the server processes before any client, summed: what a fresh daemon costs with no connection.
fresh_rss() {
  local total=0 pid kb
  for pid in "$@"; do kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"; total=$((total + kb)); done
  echo $((total * 1024))
}

wait_port() {
  for _ in $(seq 1 300); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "compare.sh: nothing listens on 127.0.0.1:$1 after 30 s" >&2; return 1
}

run_prosody() {
  "$here/prosody/setup.sh" start >&2
  local pid; pid="$("$here/prosody/setup.sh" pid)"
  sleep 2
  fresh_rss "$pid" > "$results/$tag-prosody.fresh-rss"
  "${generator[@]}" "${common[@]}" --port 5322 --server-pid "$pid" --label prosody \
    --out "$results/$tag-prosody.json" --md "$plots/$tag-prosody.md"
  "$here/prosody/setup.sh" stop >&2
}

run_connmgr() {
  # Settings every ConnMgr process shares: warnings only, TLS with the shared certificate, no per-IP
  # cap on unauthenticated clients (the generator's few source addresses are not an attack).
  local settings=(--Logging:Level=Warning --Xmpp:Domain="$domain" --Tls:CertificatePath="$cert" --Tls:KeyPath="$key"
                  --Edge:DirectTlsPort=0 --Edge:HttpPort=0 --Edge:MaxUnauthenticatedPerIp=0
                  --Edge:MaxConnections=100000 --Core:Port=5412 --Upstream:Port=5412)
  local ports=() pids=()
  if [ "$edges" = 1 ]; then
    setsid "${connmgr[@]}" "${settings[@]}" --DataDirectory="$cm_dir/core" --Edge:ClientPort=5422 \
      >"$results/$tag-connmgr.log" 2>&1 </dev/null &
    daemon_pids+=("$!")
    ports=(5422)
  else
    local secret; secret="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    setsid "${connmgr[@]}" "${settings[@]}" --DataDirectory="$cm_dir/core" --Edge:Enabled=false \
      --Upstream:Secret="$secret" >"$results/$tag-core.log" 2>&1 </dev/null &
    daemon_pids+=("$!")
    wait_port 5412
    for i in $(seq 0 $((edges - 1))); do
      local port=$((5422 + 10 * i))
      mkdir -p "$cm_dir/edge-$i"
      setsid "${connmgr[@]}" "${settings[@]}" --DataDirectory="$cm_dir/edge-$i" --Core:Enabled=false \
        --Edge:Name="edge-$i" --Edge:ClientPort="$port" --Upstream:Host=127.0.0.1 --Upstream:Secret="$secret" \
        >"$results/$tag-edge-$i.log" 2>&1 </dev/null &
      daemon_pids+=("$!")
      ports+=("$port")
    done
  fi
  for port in "${ports[@]}"; do wait_port "$port"; done
  sleep 2
  local pid_list port_list
  pid_list="$(IFS=,; echo "${daemon_pids[*]}")"
  port_list="$(IFS=,; echo "${ports[*]}")"
  fresh_rss "${daemon_pids[@]}" > "$results/$tag-connmgr.fresh-rss"
  "${generator[@]}" "${common[@]}" --port "$port_list" --server-pid "$pid_list" --salts "$salts" --label connmgr \
    --out "$results/$tag-connmgr.json" --md "$plots/$tag-connmgr.md"
  stop_connmgr
}

for server in $servers; do
  echo "== $server: $clients clients, rate $rate/s, hold $hold, chat every $interval, $processes generator process(es)" >&2
  case "$server" in
    prosody) run_prosody ;;
    connmgr) run_connmgr ;;
    *) echo "compare.sh: unknown server $server" >&2; exit 2 ;;
  esac
  sleep 5
done

jsons=()
for server in $servers; do jsons+=("$results/$tag-$server.json"); done
python3 "$here/compare_report.py" --tag "$tag" --edges "$edges" --benchmarks "$bench/BENCHMARKS.md" "${jsons[@]}"
echo "== wrote section '$tag' of $bench/BENCHMARKS.md" >&2
