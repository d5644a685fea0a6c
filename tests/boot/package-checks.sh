#!/bin/bash
# Inside the booted container "package": installs, configures, runs, reloads, upgrades, stops and
# purges the Debian package, one line per check (tests/boot/boot-test.sh runs it).
set -uo pipefail
# shellcheck source=tests/boot/lib.sh
. /boot-test/lib.sh "$@"

unit=ngrok-cert-watchdog.service
conf=/etc/ngrok-cert-watchdog/config.toml
sim_port=18080

# --- install ---------------------------------------------------------------------------------
install_v1() {
    # As the README says: apt installs the .deb and what it depends on (ca-certificates, from
    # the container's only package source: a local repository standing in for the mirror).
    apt-get update -qq >/dev/null
    apt-get install -y /boot-test/pkg-1.deb >/tmp/dpkg-1.log 2>&1 || { cat /tmp/dpkg-1.log; return 1; }
    dpkg-query -W -f='${Status}' ca-certificates | grep -q "install ok installed" || die "ca-certificates not pulled in"
    grep -q "installed but not enabled" /tmp/dpkg-1.log || die "postinst did not say how to enable"
    getent passwd ngrok-cert-watchdog >/dev/null || die "no user ngrok-cert-watchdog"
    getent group ngrok-cert-watchdog >/dev/null || die "no group ngrok-cert-watchdog"
    [ "$(systemctl is-enabled $unit)" = disabled ] || die "enabled by the install"
    ! systemctl is-active --quiet $unit || die "started by the install"
    systemctl cat ngrok-cert-watchdog@x.service >/dev/null || die "the template unit is not known to systemd"
}
check "apt-get install ./the.deb installs (with ca-certificates); user and group made; service left disabled and stopped" install_v1

man_page() {
    local page
    page=$(man ngrok-cert-watchdog 2>&1) || { echo "$page"; return 1; }
    grep -Eq "ngrok-cert-watchdog +- +Keeps" <<<"$page" || die "no NAME section: $page"
    grep -q "EXIT STATUS" <<<"$page" || die "no EXIT STATUS section"
    man ngrok-cert-watchdog-check >/dev/null 2>&1 || die "no page for the check command"
}
check "man ngrok-cert-watchdog shows the page" man_page

bash_completion() {
    # As an interactive bash would: bash-completion loads the file on the first <Tab>.
    bash -c '
        . /usr/share/bash-completion/bash_completion
        _completion_loader ngrok-cert-watchdog
        fn=$(complete -p ngrok-cert-watchdog | sed -n "s/.*-F \([^ ]*\) .*/\1/p")
        [ -n "$fn" ] || { echo "no completion function registered"; exit 1; }
        COMP_WORDS=(ngrok-cert-watchdog check-c); COMP_CWORD=1
        COMP_LINE="ngrok-cert-watchdog check-c"; COMP_POINT=${#COMP_LINE}
        "$fn" ngrok-cert-watchdog check-c ngrok-cert-watchdog
        [[ " ${COMPREPLY[*]} " == *" check-config "* ]] || { echo "completions: ${COMPREPLY[*]}"; exit 1; }
        COMP_WORDS=(ngrok-cert-watchdog rotate --d); COMP_CWORD=2
        COMP_LINE="ngrok-cert-watchdog rotate --d"; COMP_POINT=${#COMP_LINE}
        "$fn" ngrok-cert-watchdog --d rotate
        [[ " ${COMPREPLY[*]} " == *" --dry-run "* ]] || { echo "completions: ${COMPREPLY[*]}"; exit 1; }'
    [ -s /usr/share/zsh/vendor-completions/_ngrok-cert-watchdog ] || die "no zsh completions"
    [ -s /usr/share/fish/vendor_completions.d/ngrok-cert-watchdog.fish ] || die "no fish completions"
}
check "bash completions load (check-c<Tab>, rotate --d<Tab>); zsh and fish files present" bash_completion

shared_files() {
    diff /boot-test/expected-share.txt <(ls /usr/share/ngrok-cert-watchdog | sort) || return 1
    [ -x /usr/share/ngrok-cert-watchdog/certbot-deploy-hook ] || die "the deploy hook is not executable"
    local conffiles
    conffiles=$(dpkg-query -W -f='${Conffiles}\n' ngrok-cert-watchdog)
    grep -q "^ $conf " <<<"$conffiles" || die "$conf is not a conffile"
}
check "/usr/share/ngrok-cert-watchdog/ holds $(tr '\n' ' ' </boot-test/expected-share.txt)and the config is a conffile" shared_files

# --- the simulator and the configured service --------------------------------------------------
start_simulator() {
    cat >/etc/systemd/system/boot-sim.service <<EOF
[Unit]
Description=ngrok API simulator for the boot test
[Service]
ExecStart=/usr/bin/ngrok-cert-watchdog simulate --listen 127.0.0.1:$sim_port --api-key sim-key --seed /boot-test/demo-seed.toml
EOF
    systemctl daemon-reload && systemctl start boot-sim.service || return 1
    wait_for 20 curl -s -o /dev/null "http://127.0.0.1:$sim_port/" || die "the simulator does not answer"
}
check "the simulator runs as a second unit (boot-sim.service)" start_simulator

# section_off NAME: "enabled = false" in [NAME] of the configuration, whether the shipped file
# has that section (then its own "enabled" line goes) or not (then it is appended).
section_off() {
    if grep -q "^\[$1\]" "$conf"; then
        awk -v s="[$1]" '$0 == s { print; print "enabled = false"; on = 1; next }
            /^\[/ { on = 0 }
            !(on && /^enabled *=/) { print }' "$conf" >"$conf.new" && mv "$conf.new" "$conf"
    else
        printf '\n[%s]\nenabled = false\n' "$1" >>"$conf"
    fi
}

# The configuration as a user would edit it: the shipped file with the API pointed at the
# simulator. Everything stays on loopback (the container has no other network either).
configure() {
    sed -i -e "s|^url = \"https://api.ngrok.com\"|url = \"http://127.0.0.1:$sim_port\"|" \
        -e 's|^warning = .*|warning = "30d"|' "$conf"
    grep -q "^url = \"http://127.0.0.1:$sim_port\"" "$conf" || die "could not point api.url at the simulator"
    # [edge] and [dns] probe by default (TLS handshakes, DNS queries): off, so that nothing tries
    # to leave the machine (the container has no network either).
    section_off edge
    section_off dns
    NGROK_API_KEY=sim-key ngrok-cert-watchdog --config "$conf" check-config
    install -m 0600 /dev/stdin /etc/ngrok-cert-watchdog/api-key <<<"sim-key"
    # A bad watch for later (garbage where a certificate belongs), readable by the service.
    install -d -m 0750 -g ngrok-cert-watchdog /etc/ngrok-cert-watchdog/certs/bad
    echo "not a certificate" | install -m 0640 -g ngrok-cert-watchdog /dev/stdin /etc/ngrok-cert-watchdog/certs/bad/fullchain.pem
    echo "not a key" | install -m 0640 -g ngrok-cert-watchdog /dev/stdin /etc/ngrok-cert-watchdog/certs/bad/privkey.pem
    touch -d '-1 hour' /etc/ngrok-cert-watchdog/certs/bad/*.pem
}
check "configured: api.url -> the simulator, the API key in /etc/ngrok-cert-watchdog/api-key" configure

enable_start() {
    systemctl enable --now $unit || return 1
    # Type=notify: "active" only after READY=1.
    [ "$(systemctl show -P ActiveState $unit)" = active ] || die "not active: $(systemctl status $unit)"
    wait_for 30 sh -c "systemctl show -P StatusText $unit | grep certificates" \
        || die "no STATUS line after the first sync: $(systemctl status $unit)"
    echo "STATUS: $(systemctl show -P StatusText $unit)" >>/boot-test-out/notes.txt
}
check "systemctl enable --now: active after READY=1, with a STATUS line" enable_start

check "/metrics answers with the account's certificates" \
    has_metric 10742 '^ngrok_tls_certificate_not_after_timestamp_seconds\{'

reload() {
    local pid
    pid=$(systemctl show -P MainPID $unit)
    has_metric 10742 '^ngrok_cert_watchdog_expiry_threshold_seconds\{severity="warning"\} 2592000$' \
        || die "warning threshold before the reload is not 30d: $(metrics 10742 | grep threshold)"
    sed -i 's|^warning = "30d"|warning = "45d"|' "$conf"
    cat >>"$conf" <<'EOF'

[[watch]]
name = "bad"
certificate = "/etc/ngrok-cert-watchdog/certs/bad/fullchain.pem"
private_key = "/etc/ngrok-cert-watchdog/certs/bad/privkey.pem"
domains = ["www.example.com"]
settle_timeout = "1s"
EOF
    systemctl reload $unit || die "systemctl reload failed: $(systemctl status $unit)"
    wait_for 20 has_metric 10742 '^ngrok_cert_watchdog_expiry_threshold_seconds\{severity="warning"\} 3888000$' \
        || die "the new threshold (45d) did not apply: $(metrics 10742 | grep threshold)"
    [ "$(systemctl show -P MainPID $unit)" = "$pid" ] || die "the process was replaced, not reloaded"
}
check "systemctl reload (no /bin/kill here) applies a changed threshold in the same process" reload

journal_priorities() {
    wait_for 30 journal_has $unit warning "watch bad:" \
        || die "no warning about the bad watch: $(journalctl -q -u $unit -p warning | tail -n 5)"
    journal_has $unit info "reload: configuration applied" || die "info lines are missing from the journal"
    ! journal_has $unit warning "reload: configuration applied" || die "an info line shows at -p warning"
}
check "journalctl -p warning shows the bad watch, and no info line" journal_priorities

security() {
    local out level
    out=$(systemd-analyze security $unit 2>&1) || { echo "$out"; return 1; }
    level=$(sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p' <<<"$out")
    echo "systemd-analyze security (booted, systemd $(systemctl --version | sed -n '1s/systemd \([0-9]*\).*/\1/p')): $level" >>/boot-test-out/notes.txt
    awk -v l="$level" 'BEGIN { exit !(l != "" && l <= 1.5) }' || die "exposure $level > 1.5"
}
check "systemd-analyze security scores <= 1.5" security

template() {
    sed -e 's|^listen = .*|listen = "127.0.0.1:10743"|' -e '/^\[\[watch\]\]/,$d' "$conf" \
        >/etc/ngrok-cert-watchdog/second.toml
    install -m 0600 /dev/stdin /etc/ngrok-cert-watchdog/second.api-key <<<"sim-key"
    systemctl start ngrok-cert-watchdog@second.service \
        || die "$(systemctl status ngrok-cert-watchdog@second.service)"
    wait_for 20 has_metric 10743 '^ngrok_tls_certificate_not_after_timestamp_seconds\{' \
        || die "no metrics on 10743"
    [ "$(stat -c %U /var/lib/ngrok-cert-watchdog-second)" = ngrok-cert-watchdog ] \
        || die "no state directory of its own"
    systemctl is-active --quiet $unit || die "the main instance stopped"
}
check "template instance @second runs beside the main one, on its own port and state directory" template

upgrade() {
    local sum pid1 pid2
    sum=$(sha256sum "$conf")
    pid1=$(systemctl show -P MainPID $unit)
    pid2=$(systemctl show -P MainPID ngrok-cert-watchdog@second.service)
    apt-get install -y /boot-test/pkg-2.deb </dev/null >/tmp/dpkg-2.log 2>&1 || { cat /tmp/dpkg-2.log; return 1; }
    [[ "$(dpkg-query -W -f='${Version}' ngrok-cert-watchdog)" == *+boot2 ]] || die "not upgraded"
    [ "$(sha256sum "$conf")" = "$sum" ] || die "the edited configuration was replaced"
    systemctl is-active --quiet $unit || die "main not running after the upgrade"
    systemctl is-active --quiet ngrok-cert-watchdog@second.service || die "@second not running after the upgrade"
    [ "$(systemctl show -P MainPID $unit)" != "$pid1" ] || die "main was not restarted onto the new binary"
    [ "$(systemctl show -P MainPID ngrok-cert-watchdog@second.service)" != "$pid2" ] || die "@second was not restarted"
    wait_for 20 has_metric 10742 '^ngrok_cert_watchdog_build_info' || die "no metrics after the upgrade"
}
check "installing a newer build keeps the edited config and restarts both instances" upgrade

stop() {
    local started=$SECONDS
    systemctl stop $unit ngrok-cert-watchdog@second.service || return 1
    [ $((SECONDS - started)) -lt 10 ] || die "stopping took $((SECONDS - started)) s"
    for u in $unit ngrok-cert-watchdog@second.service; do
        [ "$(systemctl show -P Result "$u")" = success ] || die "$u: Result=$(systemctl show -P Result "$u")"
        [ "$(systemctl show -P ExecMainStatus "$u")" = 0 ] || die "$u: exit status $(systemctl show -P ExecMainStatus "$u")"
    done
}
check "systemctl stop: both exit 0 within TimeoutStopSec" stop

purge() {
    systemctl stop boot-sim.service
    rm -f /etc/systemd/system/boot-sim.service
    apt-get purge -y ngrok-cert-watchdog >/tmp/purge.log 2>&1 || { cat /tmp/purge.log; return 1; }
    local left
    left=$(find / \( -path /proc -o -path /sys -o -path /dev -o -path /run -o -path /tmp \
        -o -path /boot-test -o -path /boot-test-out -o -path /src \) -prune -o \
        -name '*ngrok-cert-watchdog*' -print)
    [ -z "$left" ] || die "left behind: $left"
    [ ! -e /etc/ngrok-cert-watchdog ] || die "/etc/ngrok-cert-watchdog left behind"
    getent passwd ngrok-cert-watchdog >/dev/null || die "the system user should stay (Debian policy)"
}
check "apt-get purge leaves no file behind (the system user stays)" purge

finish
