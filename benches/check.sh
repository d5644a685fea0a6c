#!/usr/bin/env bash
# Benchmark of `check` over a 10,000-certificate, 10,000-domain account on the simulator
# (rate limit off, client budget raised), with the official Python client doing the same listing
# side by side in the same run. Prints a Markdown table for BENCHMARKS.md.
#
#   benches/check.sh [RUNS]        (default 5; builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
KEY=bench-key
BIN=target/release/ngrok-cert-watchdog
PY=.venv/bin/python

cargo build --release --quiet
[ -x "$PY" ] || { echo "missing $PY: python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt" >&2; exit 1; }

work=$(mktemp -d)
trap 'kill $SIM 2>/dev/null || true; rm -rf "$work"' EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT"
# The seed's chains lead to the simulator's root, which check trusts (edge.trust_anchors) as a real
# account's certificates lead to public roots: every chain is verified, as it would be there.
RUST_LOG=warn "$BIN" simulate --listen "127.0.0.1:$PORT" --api-key "$KEY" --seed benches/bulk-10k.toml --rate-limit off --write-ca "$work/ca.pem" &
SIM=$!
for _ in $(seq 600); do
  curl -sf -H "Authorization: Bearer $KEY" "$URL/_sim/requests" >/dev/null && break
  sleep 0.1
done
printf '%s\n' "$KEY" > "$work/key"
cat > "$work/config.toml" <<TOML
[api]
url = "$URL"
key_file = "$work/key"
requests_per_minute = 100000
timeout = "60s"
[state]
dir = "$work/state"
[edge]
trust_anchors = "$work/ca.pem"
enabled = false
[dns]
enabled = false
TOML

requests() { curl -sf -H "Authorization: Bearer $KEY" "$URL/_sim/requests" | jq '[.requests[] | select(.method == "GET")] | length'; }
reset() { curl -sf -X DELETE -H "Authorization: Bearer $KEY" "$URL/_sim/requests" >/dev/null; }
measure() { # measure NAME CMD... → "wall_s rss_mib" on stdout
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || true
  read -r wall kb < <(tail -n1 "$work/time")
  echo "$wall $(( kb / 1024 ))"
}

echo "| run | check wall (s) | check peak RSS (MiB) | check GET requests | Python client wall (s) | Python peak RSS (MiB) | Python / check |"
echo "|---|---|---|---|---|---|---|"
for run in $(seq "$RUNS"); do
  reset
  read -r cw crss < <(measure "$BIN" --config "$work/config.toml" check --format json)
  creq=$(requests)
  counts=$(jq -r '.summary | "\(.certificates) \(.domains) \(.credentials)"' "$work/out")
  [ "$counts" = "10000 10000 5" ] || { echo "check saw $counts" >&2; cat "$work/err" >&2; exit 1; }
  reset
  read -r pw prss < <(measure "$PY" benches/python_list.py "$URL" "$KEY")
  [ "$(cat "$work/out")" = "10000 10000 5" ] || { echo "python saw $(cat "$work/out")" >&2; cat "$work/err" >&2; exit 1; }
  ratio=$(python3 -c "print(f'{$pw/$cw:.1f}x')")
  echo "| $run | $cw | $crss | $creq | $pw | $prss | $ratio |"
done
