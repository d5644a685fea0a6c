#!/usr/bin/env bash
# Issue 14 at scale, side by side in one run: the daemon's memory after and during its first sync
# at 10,000 and 100,000 certificates + domains (this build against a baseline binary), `check` at
# 100,000 (JSON and text) against the official Python client listing the same account, and /metrics at 100,000
# with and without gzip. Prints Markdown for BENCHMARKS.md.
#
#   [SIZES="10000 100000"] benches/scale.sh [BASELINE_BINARY]
#
# BASELINE_BINARY: the release binary of the commit before issue 14's first commit (bef5571):
#   git worktree add --detach /tmp/base bef5571 && (cd /tmp/base && cargo build --release)
#   benches/scale.sh /tmp/base/target/release/ngrok-cert-watchdog
# Without it, only this build is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
KEY=bench-key
NEW=target/release/ngrok-cert-watchdog
BASE=${1:-}
cargo build --release --quiet
PY=.venv/bin/python
[ -x "$PY" ] || { python3 -m venv .venv && .venv/bin/pip install -q -r tests/python/requirements.txt; }

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
status_mib() { awk -v k="$2:" '$1 == k { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
successes() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^ngrok_cert_watchdog_syncs_total\{result="success"\}/ { print $2 }'; }

# seed N → a seed file of N uploaded certificates, each serving one of N domains.
seed() {
  cat > "$work/seed-$1.toml" <<TOML
dev_domain = false
[bulk]
certificates = $1
domains = $1
credentials = 5
TOML
  echo "$work/seed-$1.toml"
}

# simulator N → starts the simulator on a seed of N; sets SPORT, SIM_PID.
simulator() {
  SPORT=$(port)
  RUST_LOG=warn "$NEW" simulate --listen "127.0.0.1:$SPORT" --api-key "$KEY" --seed "$(seed "$1")" --rate-limit off --write-ca "$work/ca.pem" &
  SIM_PID=$!; pids+=("$SIM_PID")
  for _ in $(seq 3000); do curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$SPORT/_sim/requests" >/dev/null && break; sleep 0.1; done
}

# config BIN MPORT → a config for BIN against the simulator (edge and DNS off where BIN knows them).
config() {
  printf '%s\n' "$KEY" > "$work/key"
  cat > "$work/config.toml" <<TOML
[api]
url = "http://127.0.0.1:$SPORT"
key_file = "$work/key"
requests_per_minute = 100000
timeout = "120s"
[schedule]
sync = "0 0 0 1 1 *"
[metrics]
listen = "127.0.0.1:$2"
[state]
dir = "$work/state-$RANDOM"
TOML
  # This build: probes off, the simulator's CA trusted (as a user trusts their CA), the status
  # page as STATUS_PAGE says (default on). The baseline knows none of these keys.
  if "$1" check --help 2>/dev/null | grep -q -- --no-edge; then
    printf '[edge]\nenabled = false\ntrust_anchors = "%s"\n[dns]\nenabled = false\n' "$work/ca.pem" >> "$work/config.toml"
    sed -i "s/^listen = .*/&\nstatus_page = ${STATUS_PAGE:-true}/" "$work/config.toml"
  fi
  echo "$work/config.toml"
}

# daemon BIN → "rss_after_mib hwm_mib sync_s": VmRSS 5 s after the first sync, VmHWM then.
daemon() {
  local mport; mport=$(port)
  local cfg; cfg=$(config "$1" "$mport")
  local t0; t0=$(date +%s.%N)
  RUST_LOG=warn "$1" --config "$cfg" run &
  local pid=$!; pids+=("$pid")
  for _ in $(seq 6000); do [ "$(successes "$mport" 2>/dev/null || true)" = "1" ] && break; sleep 0.1; done
  [ "$(successes "$mport")" = "1" ] || { echo "no successful sync" >&2; exit 1; }
  local t1; t1=$(date +%s.%N)
  sleep 5
  echo "$(status_mib "$pid" VmRSS) $(status_mib "$pid" VmHWM) $(python3 -c "print(f'{$t1 - $t0:.1f}')")"
  if [ "${SCRAPE:-}" = 1 ]; then scrapes "$mport"; fi
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

# scrapes MPORT → lines "plain|gzip median_ms bytes" over 11 scrapes each.
scrapes() {
  for mode in plain gzip; do
    local flag=(); [ "$mode" = gzip ] && flag=(-H 'Accept-Encoding: gzip')
    for _ in $(seq 11); do curl -s "${flag[@]}" -o /dev/null -w '%{time_total} %{size_download}\n' "http://127.0.0.1:$1/metrics"; done \
      | sort -n | awk -v m="$mode" '{ t[NR] = $1; b = $2 } END { printf "SCRAPE %s %.1f %d\n", m, t[int((NR + 1) / 2)] * 1000, b }'
  done
}

# timed CMD... → "wall_s peak_mib" of the command (whole process), its output discarded.
timed() {
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>"$work/err" || true
  tail -1 "$work/time" | awk '{ printf "%s %.0f", $1, $2 / 1024 }'
}
sim_gets() { curl -sf -H "Authorization: Bearer $KEY" "http://127.0.0.1:$SPORT/_sim/requests" | python3 -c 'import json,sys; print(sum(1 for r in json.load(sys.stdin)["requests"] if r["method"] == "GET"))'; }
sim_reset() { curl -sf -X DELETE -H "Authorization: Bearer $KEY" "http://127.0.0.1:$SPORT/_sim/requests" >/dev/null; }

echo "| account | binary | first sync (s) | VmRSS 5 s after (MiB) | VmHWM (MiB) |"
echo "|---|---|---|---|---|"
for n in ${SIZES:-10000 100000}; do
  simulator "$n"
  for bin in "$BASE" "$NEW"; do
    [ -n "$bin" ] || continue
    name=$([ "$bin" = "$NEW" ] && echo "this build" || echo "baseline")
    if [ "$bin" = "$NEW" ] && [ "$n" = 100000 ]; then
      out=$(SCRAPE=1 daemon "$bin")
      grep '^SCRAPE' <<<"$out" > "$work/scrapes"
      read -r rss hwm sync_s <<<"$(grep -v '^SCRAPE' <<<"$out")"
    else
      read -r rss hwm sync_s <<<"$(daemon "$bin")"
    fi
    echo "| $n + $n | $name | $sync_s | $rss | $hwm |"
  done
  if [ "$n" = 100000 ]; then
    cfg=$(config "$NEW" "$(port)")
    no_edge=(); "$NEW" check --help | grep -q -- --no-edge && no_edge=(--no-edge)
    sim_reset
    read -r cw cp <<<"$(timed "$NEW" --config "$cfg" check --format json "${no_edge[@]}")"
    creq=$(sim_gets); sim_reset
    read -r tw tp <<<"$(timed "$NEW" --config "$cfg" check "${no_edge[@]}")"
    treq=$(sim_gets); sim_reset
    read -r pw pp <<<"$(timed "$PY" benches/python_list.py "http://127.0.0.1:$SPORT" "$KEY")"
    preq=$(sim_gets)
  fi
  kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
done
[ -n "${cw:-}" ] || exit 0
echo
echo "| 100,000 + 100,000 | wall (s) | peak RSS (MiB) | GET requests |"
echo "|---|---|---|---|"
echo "| \`check --format json\` (this build) | $cw | $cp | $creq |"
echo "| \`check\` (text, the default; this build) | $tw | $tp | $treq |"
echo "| official Python client, same listing | $pw | $pp | $preq |"
echo
echo "| /metrics at 100,000 + 100,000 | median of 11 (ms) | bytes |"
echo "|---|---|---|"
awk '{ printf "| %s | %s | %s |\n", $2, $3, $4 }' "$work/scrapes"
