#!/usr/bin/env bash
# Soak: the release daemon on a 1 s schedule against the simulator under random faults, with a
# json webhook receiver and a real Alertmanager, for 1,000 syncs (about 20-35 minutes; stops
# after MAX_MINUTES either way). Loopback only. Prints a Markdown table (stderr) and the JSON
# report (stdout). See benches/soak.py for what is counted.
#
#   benches/soak.sh [SYNCS] [SEED]        (default 1000 and a random seed, printed)
set -euo pipefail
cd "$(dirname "$0")/.."
SYNCS=${1:-1000}
MAX_MINUTES=${MAX_MINUTES:-60}
cargo build --release --quiet
args=(--bin target/release/ngrok-cert-watchdog --syncs "$SYNCS" --max-minutes "$MAX_MINUTES")
[ -n "${2:-}" ] && args+=(--seed "$2")
exec python3 benches/soak.py "${args[@]}"
