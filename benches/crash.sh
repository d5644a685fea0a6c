#!/usr/bin/env bash
# Crash test with 20 kills: tests/crash.rs (SIGKILL at random moments of a 30-domain rotation
# under PATCH latency faults, restarts on the same state directory, then one upload, every domain
# on the new leaf, no safety violation, and the old certificate deleted), in release, both tests,
# one after the other.
#
#   benches/crash.sh [KILLS] [SEED]       (default 20 and a random seed, printed)
set -euo pipefail
cd "$(dirname "$0")/.."
export CRASH_KILLS=${1:-20}
[ -n "${2:-}" ] && export CRASH_SEED=$2
exec cargo test --release --test crash -- --nocapture --test-threads=1
