#!/usr/bin/env bash
# The daemon under a 10,000-certificate, 10,000-domain account: /metrics scrape latency (median
# of 51 scrapes with curl), RSS, and CPU between syncs; then idle RSS after the first sync of the
# demo account. Prints Markdown for BENCHMARKS.md.
#
#   benches/daemon.sh              (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=bench-key
BIN=target/release/ngrok-cert-watchdog
cargo build --release --quiet

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
successes() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^ngrok_cert_watchdog_syncs_total\{result="success"\}/ { print $2 }'; }

# start_pair SEED → starts simulator + daemon; sets SIM_PID DAEMON_PID MPORT
start_pair() {
  local sport; sport=$(port); MPORT=$(port)
  RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$sport" --api-key "$KEY" --seed "$1" --rate-limit off &
  SIM_PID=$!; pids+=("$SIM_PID")
  for _ in $(seq 600); do curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$sport/_sim/requests" >/dev/null && break; sleep 0.1; done
  printf '%s\n' "$KEY" > "$work/key"
  cat > "$work/config.toml" <<TOML
[api]
url = "http://127.0.0.1:$sport"
key_file = "$work/key"
requests_per_minute = 100000
timeout = "60s"
[schedule]
sync = "0 0 * * * *"
[metrics]
listen = "127.0.0.1:$MPORT"
[state]
dir = "$work/state"
[dns]
enabled = false
TOML
  RUST_LOG=warn "$BIN" --config "$work/config.toml" run &
  DAEMON_PID=$!; pids+=("$DAEMON_PID")
  for _ in $(seq 600); do [ "$(successes "$MPORT" || true)" = "1" ] && break; sleep 0.1; done
  [ "$(successes "$MPORT")" = "1" ] || { echo "no successful sync" >&2; exit 1; }
}

start_pair benches/bulk-10k.toml
series=$(curl -sf "http://127.0.0.1:$MPORT/metrics" | grep -vc '^#')
for _ in $(seq 51); do curl -s -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$MPORT/metrics"; done | sort -n > "$work/scrapes"
median_ms=$(awk '{ a[NR] = $1 } END { printf "%.1f", a[int((NR + 1) / 2)] * 1000 }' "$work/scrapes")
p90_ms=$(awk '{ a[NR] = $1 } END { printf "%.1f", a[int(NR * 0.9)] * 1000 }' "$work/scrapes")
rss_big=$(rss_mib "$DAEMON_PID")
sleep 2
t0=$(cpu_ticks "$DAEMON_PID"); sleep 10; t1=$(cpu_ticks "$DAEMON_PID")
hz=$(getconf CLK_TCK)
cpu=$(python3 -c "print(f'{($t1 - $t0) / $hz / 10 * 100:.2f}')")
kill "$DAEMON_PID" "$SIM_PID"; wait "$DAEMON_PID" "$SIM_PID" 2>/dev/null || true

start_pair config/demo-seed.toml
sleep 2
rss_demo=$(rss_mib "$DAEMON_PID")
kill "$DAEMON_PID" "$SIM_PID"; wait "$DAEMON_PID" "$SIM_PID" 2>/dev/null || true

echo "| measure | result | goal |"
echo "|---|---|---|"
echo "| series in one scrape (10k certificates, 10k domains) | $series | ~45,000 |"
echo "| \`/metrics\` scrape, median of 51 (curl, loopback) | $median_ms ms (p90 $p90_ms ms) | ≤ 50 ms |"
echo "| daemon RSS after the first 10k sync | $rss_big MiB | — |"
echo "| CPU between syncs (10 s idle after the 10k sync) | $cpu % of one core | ≈ 0 |"
echo "| daemon RSS after the first sync of the demo account | $rss_demo MiB | ≤ 20 MiB |"
