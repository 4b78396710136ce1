#!/usr/bin/env bash
# Debian's Prosody on loopback, for load tests that compare it with ConnMgr under the same generator.
#
#   setup.sh start                 install if needed, write config and certificate, start Prosody
#   setup.sh register N [FIRST]    create accounts user{FIRST..FIRST+N-1} (default FIRST=1), password "pass"
#   setup.sh reset                 stop Prosody and delete its accounts and data (keeps the certificate)
#   setup.sh stop                  stop Prosody (and wait until it has exited)
#   setup.sh pid                   print Prosody's process id (for the generator's --server-pid)
#   setup.sh status                say whether it runs
#
# Idempotent: start with Prosody running, register with accounts present, stop with nothing running are
# all fine. Everything lives in $PROSODY_LOAD_DIR (default /tmp/connmgr-prosody).
# Environment: PROSODY_LOAD_DIR, PROSODY_LOAD_PORT (c2s port, default 5322: clear of ConnMgr's 5222),
# PROSODY_LOAD_DOMAIN (default localhost), PROSODY_LOAD_USERS (default user%d),
# PROSODY_LOAD_PASSWORD (default pass), PROSODY_LOAD_SALT (shared: one salt for all accounts, so the
# generator runs PBKDF2 once rather than per user while Prosody's per-login work is unchanged -- see
# register.lua; random: a salt per account, as real registrations get; default shared).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="${PROSODY_LOAD_DIR:-/tmp/connmgr-prosody}"
port="${PROSODY_LOAD_PORT:-5322}"
domain="${PROSODY_LOAD_DOMAIN:-localhost}"
users="${PROSODY_LOAD_USERS:-user%d}"
password="${PROSODY_LOAD_PASSWORD:-pass}"
salt="${PROSODY_LOAD_SALT:-shared}"
config="$dir/prosody.cfg.lua"
pidfile="$dir/prosody.pid"

die() { echo "setup.sh: $*" >&2; exit 1; }

running_pid() {
  [ -f "$pidfile" ] || return 1
  local pid
  pid="$(cat "$pidfile" 2>/dev/null)" || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && grep -q prosody "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

install() {
  command -v prosody >/dev/null && command -v lua5.4 >/dev/null && return
  [ "$(id -u)" = 0 ] || die "prosody is not installed and installing it needs root"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prosody lua5.4 openssl >/dev/null
  # The package starts a system-wide Prosody on the standard ports; the load tests use their own.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prosody 2>/dev/null; then
    systemctl stop prosody || true
  fi
  if [ -x /etc/init.d/prosody ]; then /etc/init.d/prosody stop >/dev/null 2>&1 || true; fi
}

configure() {
  mkdir -p "$dir/data" "$dir/certs"
  if [ ! -s "$dir/certs/$domain.key" ] || [ ! -s "$dir/certs/$domain.crt" ]; then
    # Self-signed P-256 certificate for the domain; the generator does not verify it.
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
      -subj "/CN=$domain" -addext "subjectAltName=DNS:$domain" \
      -keyout "$dir/certs/$domain.key" -out "$dir/certs/$domain.crt" 2>/dev/null
    chmod 600 "$dir/certs/$domain.key"
  fi
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" -e "s|@DOMAIN@|$domain|g" "$here/prosody.cfg.lua.in" > "$config"
}

start() {
  install
  if pid="$(running_pid)"; then echo "Prosody already running (pid $pid, port $port)"; return; fi
  configure
  rm -f "$pidfile"
  # Foreground Prosody in its own session, so it outlives this script but never a terminal's job control.
  setsid prosody -F --config "$config" >>"$dir/prosody.out" 2>&1 < /dev/null &
  for _ in $(seq 1 100); do
    if running_pid >/dev/null && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "Prosody running (pid $(running_pid), 127.0.0.1:$port, domain $domain, data in $dir)"
      return
    fi
    sleep 0.1
  done
  tail -n 20 "$dir/prosody.out" "$dir/prosody.log" 2>/dev/null >&2 || true
  die "Prosody did not start listening on 127.0.0.1:$port"
}

stop() {
  local pid
  if ! pid="$(running_pid)"; then echo "Prosody not running"; rm -f "$pidfile"; return; fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { echo "Prosody stopped"; rm -f "$pidfile"; return; }
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  echo "Prosody killed after 10 s"
}

register() {
  local count="${1:-}" first="${2:-1}"
  [[ "$count" =~ ^[0-9]+$ && "$first" =~ ^[0-9]+$ ]] || die "usage: setup.sh register N [FIRST]"
  install
  [ -f "$config" ] || configure
  lua5.4 "$here/register.lua" --config "$config" "$domain" "$first" "$count" "$users" "$password" "$salt"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  register) shift; register "$@" ;;
  reset) stop; rm -rf "$dir/data" ;;
  pid) running_pid || die "Prosody not running" ;;
  status) if pid="$(running_pid)"; then echo "running (pid $pid, port $port)"; else echo "not running"; exit 3; fi ;;
  *) die "usage: setup.sh start | stop | register N [FIRST] | reset | pid | status" ;;
esac
