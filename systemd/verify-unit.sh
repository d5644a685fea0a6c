#!/usr/bin/env bash
# Checks systemd/ngrok-cert-watchdog.service and the template ngrok-cert-watchdog@.service
# without installing anything on the host:
#   1. systemd-analyze verify of both (the template as instance "example"), in a throw-away root
#      that holds the units, the binary at its ExecStart path, /bin/sh (ExecReload) and a stub
#      sysinit.target (pulled in by the default dependencies; without it verify fails with
#      "Unit sysinit.target not found");
#   2. the template is the service with only its instance lines changed (Description=,
#      ExecStart=, LoadCredential=, StateDirectory=), comments aside;
#   3. systemd-sysusers on sysusers.d/ngrok-cert-watchdog.conf, into the same root;
#   4. systemd-analyze security --offline=true of both, failing above an exposure of MAX_EXPOSURE.
#
# Usage: systemd/verify-unit.sh [BINARY]     (default: target/release/ngrok-cert-watchdog, else a stub)
# Env:   MAX_EXPOSURE   highest acceptable exposure, one decimal (default 1.5)
# Exit:  0 both pass; 1 a check failed; 77 systemd-analyze is not installed (skip).
# Needs systemd-analyze 250 or newer (--offline, --root with verify); measured with 252.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
unit="$here/ngrok-cert-watchdog.service"
template="$here/ngrok-cert-watchdog@.service"
binary="${1:-$here/../target/release/ngrok-cert-watchdog}"
max="${MAX_EXPOSURE:-1.5}"

command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: skipped" >&2; exit 77; }
[ -f "$unit" ] || { echo "no unit file at $unit" >&2; exit 1; }
[ -f "$template" ] || { echo "no unit file at $template" >&2; exit 1; }

root=$(mktemp -d)
trap 'rm -rf -- "$root"' EXIT
mkdir -p "$root/etc/systemd/system" "$root/usr/lib/systemd/system" "$root/usr/bin"
ln -s usr/bin "$root/bin"        # merged /usr: /bin/sh resolves inside the root
install -m 0644 "$unit" "$root/etc/systemd/system/ngrok-cert-watchdog.service"
install -m 0644 "$template" "$root/etc/systemd/system/ngrok-cert-watchdog@.service"
if [ -x "$binary" ]; then
    install -m 0755 "$binary" "$root/usr/bin/ngrok-cert-watchdog"
else
    echo "note: no binary at $binary; verifying against a stub executable" >&2
    printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/ngrok-cert-watchdog"
    chmod 0755 "$root/usr/bin/ngrok-cert-watchdog"
fi
# Only its existence matters to verify; an empty file would count as masked.
printf '#!/bin/sh\nexit 0\n' > "$root/usr/bin/sh"
chmod 0755 "$root/usr/bin/sh"
printf '[Unit]\nDescription=stub for systemd-analyze verify\n' > "$root/usr/lib/systemd/system/sysinit.target"

status=0
# verify exits 0 on warnings such as "Unknown key ..., ignoring": any output is a failure too.
for name in ngrok-cert-watchdog.service ngrok-cert-watchdog@example.service; do
    if ! out=$(systemd-analyze verify --man=no --root="$root" "$name" 2>&1) || [ -n "$out" ]; then
        echo "systemd-analyze verify $name failed:" >&2
        printf '%s\n' "$out" >&2
        status=1
    else
        echo "systemd-analyze verify $name: OK"
    fi
done

# The template: the service with the instance's paths, nothing else (comments and blank lines aside).
settings() { grep -v -e '^#' -e '^$' "$1"; }
expected=$(settings "$unit" | sed \
    -e 's|^Description=\(.*\)$|Description=\1 (%i)|' \
    -e 's|/etc/ngrok-cert-watchdog/config.toml|/etc/ngrok-cert-watchdog/%i.toml|' \
    -e 's|^LoadCredential=ngrok-api-key:/etc/ngrok-cert-watchdog/api-key$|LoadCredential=ngrok-api-key:/etc/ngrok-cert-watchdog/%i.api-key|' \
    -e 's|^StateDirectory=ngrok-cert-watchdog$|StateDirectory=ngrok-cert-watchdog-%i|')
if out=$(diff <(printf '%s\n' "$expected") <(settings "$template")); then
    echo "template ngrok-cert-watchdog@.service matches the service: OK"
else
    echo "ngrok-cert-watchdog@.service differs from the service in more than its instance lines" \
        "(< expected from the service, > the template):" >&2
    printf '%s\n' "$out" >&2
    status=1
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
for name in ngrok-cert-watchdog.service ngrok-cert-watchdog@example.service; do
    if out=$(systemd-analyze security --offline=true --root="$root" --threshold="$threshold" \
            "$name" 2>&1); then
        printf '%s\n' "$out" | grep 'Overall exposure level' || true
    else
        printf '%s\n' "$out" | grep -E '✗|Overall' >&2 || printf '%s\n' "$out" >&2
        echo "systemd-analyze security $name: exposure above $max" >&2
        status=1
    fi
done
exit "$status"
