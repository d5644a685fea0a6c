#!/usr/bin/env bash
# The status page at 10,000 certificates and 10,000 domains: `GET /` served (median time_total of
# 21 curl requests for the whole body) and interactive in Debian's headless Chromium (median of 5:
# from navigation start until typing in the domain filter has updated the table). Prints Markdown
# for BENCHMARKS.md.
#
#   benches/status_page.sh         (builds the release binary; needs /usr/bin/chromium and
#                                   `npm ci` in tests/browser, as .ci/run does)
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=bench-key
BIN=target/release/ngrok-cert-watchdog
cargo build --release --quiet
[ -d tests/browser/node_modules/playwright-core ] || (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

# shellcheck source=benches/lib.sh
. benches/lib.sh
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

start_pair benches/bulk-10k.toml

url="http://127.0.0.1:$MPORT/"
bytes=$(curl -s -o /dev/null -w '%{size_download}' "$url")
for _ in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "$url"; done > "$work/served"
served_ms=$(median < "$work/served" | awk '{ printf "%.1f", $1 * 1000 }')
api_bytes=$(curl -s -o /dev/null -w '%{size_download}' "${url}api/v1/status")
for _ in $(seq 21); do curl -s -o /dev/null -w '%{time_total}\n' "${url}api/v1/status"; done > "$work/api"
api_ms=$(median < "$work/api" | awk '{ printf "%.1f", $1 * 1000 }')
interactive=$(cd tests/browser && node status_page.mjs bench "$url" h9999.example.test 5)
interactive_ms=$(python3 -c "import json,sys,statistics; v=json.loads(sys.argv[1])['interactive_ms']; print(f'{statistics.median(v):.0f} (runs: {\", \".join(f\"{x:.0f}\" for x in v)})')" "$interactive")

echo "| measure | result | goal |"
echo "|---|---|---|"
echo "| load average when done | $(cut -d' ' -f1-3 /proc/loadavg) (2 cores) | — |"
echo "| \`/\` size (10k certificates, 10k domains) | $((bytes / 1024)) KiB | — |"
echo "| \`/\` served, median \`time_total\` of 21 curl requests | $served_ms ms | ≤ 100 ms |"
echo "| \`/api/v1/status\` ($((api_bytes / 1024)) KiB), median of 21 | $api_ms ms | — |"
echo "| interactive in Chromium: navigation start → filter typed and table updated, median of 5 | $interactive_ms ms | ≤ 1000 ms |"
