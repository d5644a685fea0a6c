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

# shellcheck source=benches/lib.sh
. benches/lib.sh
rss_mib() { awk '/VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

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
