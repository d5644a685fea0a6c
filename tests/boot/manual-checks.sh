#!/bin/bash
# Inside the booted container "manual": the README's manual install, run as written from the
# source tree (/src, read-only, with the release binary in target/release), then checks that the
# service it installs runs. The container has loopback only: the shipped configuration points at
# api.ngrok.com, which cannot be reached from here, so syncs fail while the service stays up.
set -uo pipefail
# shellcheck source=tests/boot/lib.sh
. /boot-test/lib.sh "$@"

unit=ngrok-cert-watchdog.service

readme_commands() {
    # As root, in the source tree; every command must succeed.
    cd /src && bash -euo pipefail /boot-test/readme-manual-install.sh
}
check "the README's manual install runs as written on a minimal Debian" readme_commands

running() {
    [ "$(systemctl show -P ActiveState $unit)" = active ] || die "not active: $(systemctl status $unit)"
    [ "$(systemctl is-enabled $unit)" = enabled ] || die "not enabled"
    wait_for 20 has_metric 10742 '^ngrok_cert_watchdog_build_info' || die "no metrics on 10742"
}
check "the service it installs is enabled, active (READY=1) and serves /metrics" running

safe_config() {
    # The shipped configuration, with only the API key added: no watch, no webhook.
    ngrok-cert-watchdog --config /etc/ngrok-cert-watchdog/config.toml check-config >/dev/null 2>&1 \
        || NGROK_API_KEY=x ngrok-cert-watchdog --config /etc/ngrok-cert-watchdog/config.toml check-config
    ! grep -Eq '^\[\[(watch|webhook)\]\]' /etc/ngrok-cert-watchdog/config.toml \
        || die "an active [[watch]] or [[webhook]] in the installed configuration"
    ! journal_has $unit debug "webhook" || die "webhook activity in the journal"
}
check "the installed configuration is valid and has no active [[watch]] or [[webhook]]" safe_config

reload() {
    local pid
    pid=$(systemctl show -P MainPID $unit)
    systemctl reload $unit || die "systemctl reload failed: $(systemctl status $unit)"
    wait_for 10 journal_has $unit info "reload: configuration applied" \
        || die "no reload in the journal"
    [ "$(systemctl show -P MainPID $unit)" = "$pid" ] || die "the process was replaced"
}
check "systemctl reload works without procps" reload

check "systemctl stop exits 0" sh -c "systemctl stop $unit && [ \"\$(systemctl show -P ExecMainStatus $unit)\" = 0 ]"

finish
