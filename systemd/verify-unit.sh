#!/usr/bin/env bash
# Checks systemd/ngrok-cert-watchdog.service without installing anything on the host:
#   1. systemd-analyze verify, in a throw-away root that holds the unit, the binary at its
#      ExecStart path, /bin/kill (ExecReload) and a stub sysinit.target (pulled in by the default
#      dependencies; without it verify fails with "Unit sysinit.target not found");
#   2. systemd-sysusers on sysusers.d/ngrok-cert-watchdog.conf, into the same root;
#   3. systemd-analyze security --offline=true, failing above an exposure of MAX_EXPOSURE.
#
# Usage: systemd/verify-unit.sh [BINARY]     (default: target/release/ngrok-cert-watchdog, else a stub)
# Env:   MAX_EXPOSURE   highest acceptable exposure, one decimal (default 1.5)
# Exit:  0 both pass; 1 a check failed; 77 systemd-analyze is not installed (skip).
# Needs systemd-analyze 250 or newer (--offline, --root with verify); measured with 252.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
unit="$here/ngrok-cert-watchdog.service"
binary="${1:-$here/../target/release/ngrok-cert-watchdog}"
max="${MAX_EXPOSURE:-1.5}"

command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: skipped" >&2; exit 77; }
[ -f "$unit" ] || { echo "no unit file at $unit" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf -- "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd/system" "$root/usr/bin"
ln -s usr/bin "$root/bin"        # merged /usr: /bin/kill resolves inside the root
install -m 0644 "$unit" "$root/etc/systemd/system/ngrok-cert-watchdog.service"
if [ -x "$binary" ]; then
    install -m 0755 "$binary" "$root/usr/bin/ngrok-cert-watchdog"
else
    echo "note: no binary at $binary; verifying against a stub executable" >&2
    printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/ngrok-cert-watchdog"
    chmod 0755 "$root/usr/bin/ngrok-cert-watchdog"
fi
# Only its existence matters to verify; an empty file would count as masked.
printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/kill"
chmod 0755 "$root/usr/bin/kill"
printf '[Unit]\nDescription=stub for systemd-analyze verify\n' > "$root/usr/lib/systemd/system/sysinit.target"

status=0
# verify exits 0 on warnings such as "Unknown key ..., ignoring": any output is a failure too.
if ! out=$(systemd-analyze verify --man=no --root="$root" ngrok-cert-watchdog.service 2>&1) || [ -n "$out" ]; then
    echo "systemd-analyze verify failed:" >&2
    printf '%s\n' "$out" >&2
    status=1
else
    echo "systemd-analyze verify: OK"
fi

# The sysusers file creates the user and group the unit runs as (needs root for the chown of
# the files it writes: skipped for an ordinary user).
if [ "$(id -u)" -eq 0 ] && command -v systemd-sysusers >/dev/null; then
    if out=$(systemd-sysusers --root="$root" "$here/sysusers.d/ngrok-cert-watchdog.conf" 2>&1) \
        && grep -q '^ngrok-cert-watchdog:x:[0-9]*:[0-9]*:.*:/var/lib/ngrok-cert-watchdog:' "$root/etc/passwd" \
        && grep -q '^ngrok-cert-watchdog:x:' "$root/etc/group"; then
        echo "systemd-sysusers: OK"
    else
        echo "systemd-sysusers failed:" >&2
        printf '%s\n' "$out" >&2
        status=1
    fi
fi

# --threshold takes the exposure times ten (1.5 -> 15).
threshold=$(awk -v m="$max" 'BEGIN { printf "%d", m * 10 + 0.5 }')
if out=$(systemd-analyze security --offline=true --root="$root" --threshold="$threshold" \
        ngrok-cert-watchdog.service 2>&1); then
    printf '%s\n' "$out" | grep 'Overall exposure level' || true
else
    printf '%s\n' "$out" | grep -E '✗|Overall' >&2 || printf '%s\n' "$out" >&2
    echo "systemd-analyze security: exposure above $max" >&2
    status=1
fi
exit "$status"
