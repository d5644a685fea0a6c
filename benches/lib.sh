# Shared by the benchmark scripts: sourced after `cd` to the project root and with KEY and BIN
# set. Sets up a work directory and kills what was started on exit.
# shellcheck shell=bash

work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
successes() { curl -sf "http://127.0.0.1:$1/metrics" | awk '/^ngrok_cert_watchdog_syncs_total\{result="success"\}/ { print $2 }'; }

# start_pair SEED → starts the simulator on SEED and the daemon against it (an hourly schedule,
# edge probes and DNS off: nothing leaves the machine), waits for its first successful sync;
# sets SIM_PID DAEMON_PID MPORT.
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
[edge]
enabled = false
[dns]
enabled = false
TOML
  RUST_LOG=warn "$BIN" --config "$work/config.toml" run &
  DAEMON_PID=$!; pids+=("$DAEMON_PID")
  for _ in $(seq 600); do [ "$(successes "$MPORT" || true)" = "1" ] && break; sleep 0.1; done
  [ "$(successes "$MPORT")" = "1" ] || { echo "no successful sync" >&2; exit 1; }
}
