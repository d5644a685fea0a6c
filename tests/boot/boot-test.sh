#!/usr/bin/env bash
# The boot test: the Debian package and the README's manual install, each in a booted minimal
# Debian 12 (systemd 252) container, checked from inside by a oneshot unit that writes one line per
# check and powers off.
#
#   1. builds the .deb once with `cargo deb` (a release build) and repackages it as a newer
#      version with `cargo deb --no-build --deb-version ...` for the upgrade check;
#   2. makes a minimal Debian root with debootstrap (--variant=minbase, bookworm, plus systemd,
#      dbus, man-db, bash-completion and curl; no procps, as on a minimal host), kept in
#      target/boot-test/base and reused by later runs;
#   3. container "package": tests/boot/package-checks.sh (dpkg -i, configure, enable, metrics,
#      reload, journal priorities, systemd-analyze security, a template instance, upgrade, stop,
#      purge);
#   4. container "manual": the README's manual install, the commands between its
#      "boot-test: manual install" markers, run as written, then tests/boot/manual-checks.sh.
#
# Both containers run with --private-network: only loopback, nothing reaches outside the machine
# (the ngrok API is the simulator, `ngrok-cert-watchdog simulate`, on 127.0.0.1 inside).
#
# Needs root, debootstrap, systemd-nspawn (package systemd-container), cargo-deb and a Debian
# mirror for the first debootstrap (the one apt uses here, or BOOT_TEST_MIRROR).
# Exit: 0 every check passed; 1 a check failed; 77 cannot run here (skipped), unless
# BOOT_TEST_REQUIRED=1, which turns a skip into a failure (.ci/run sets it).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"

skip() {
    if [ "${BOOT_TEST_REQUIRED:-0}" = 1 ]; then
        echo "boot test: cannot run: $* (BOOT_TEST_REQUIRED=1: failing)" >&2
        exit 1
    fi
    echo "boot test: skipped: $*" >&2
    exit 77
}

[ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for tool in debootstrap systemd-nspawn dpkg-scanpackages cargo; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (apt-get install debootstrap systemd-container dpkg-dev)"
done
cargo deb --version >/dev/null 2>&1 || skip "cargo-deb is not installed (cargo install cargo-deb --locked)"

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
work="$target_dir/boot-test"
mkdir -p "$work"

t0=$SECONDS
say() { echo "boot test [$((SECONDS - t0)) s]: $*"; }

# --- 1. the packages ---------------------------------------------------------------------------
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
say "cargo deb (release build)"
cargo deb --locked --output "$work/pkg-1.deb" >"$work/cargo-deb.log" 2>&1 \
    || { cat "$work/cargo-deb.log" >&2; echo "boot test: cargo deb failed" >&2; exit 1; }
# The same build as a newer version (--fast: lighter compression, the content is the same).
cargo deb --no-build --fast --deb-version "$version-1+boot2" --output "$work/pkg-2.deb" >>"$work/cargo-deb.log" 2>&1 \
    || { cat "$work/cargo-deb.log" >&2; echo "boot test: cargo deb --no-build failed" >&2; exit 1; }

# --- 2. the minimal Debian root ----------------------------------------------------------------
include=systemd,systemd-sysv,dbus,man-db,bash-completion,curl
stamp="bookworm minbase $include"
base="$work/base"
if [ ! -f "$base/.boot-test-stamp" ] || [ "$(cat "$base/.boot-test-stamp")" != "$stamp" ]; then
    mirror=${BOOT_TEST_MIRROR:-}
    if [ -z "$mirror" ]; then
        # The mirror apt uses on this machine (deb822 or one-line sources), else Debian's CDN.
        mirror=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
            | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /debian\/?$/) { print $i; exit } }')
        [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $3 == "bookworm" { print $2; exit }' \
            /etc/apt/sources.list 2>/dev/null || true)
        [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
    fi
    say "debootstrap bookworm from $mirror (once; reused by later runs)"
    rm -rf "$base" "$base.tmp"
    debootstrap --variant=minbase --include="$include" bookworm "$base.tmp" "$mirror" \
        >"$work/debootstrap.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap.log" >&2; skip "debootstrap failed (no Debian mirror reachable?)"; }
    # Package lists are not needed offline, and a smaller root copies faster.
    rm -rf "$base.tmp/var/cache/apt/archives/"*.deb
    echo "$stamp" >"$base.tmp/.boot-test-stamp"
    mv "$base.tmp" "$base"
else
    say "reusing the Debian root in $base"
fi

# The containers have no network. What apt installs there besides our .deb comes from a local
# repository standing in for the Debian mirror: ca-certificates (the package depends on it; a
# minimal Debian has no TLS roots) and what it needs, fetched once with this machine's apt.
debs="$work/debs"
extra_debs="ca-certificates openssl libssl3"
if [ ! -f "$debs/Packages" ] || [ "$(cat "$debs/.boot-test-stamp" 2>/dev/null)" != "$extra_debs" ]; then
    say "apt-get download $extra_debs (once; the containers' package repository)"
    rm -rf "$debs" "$debs.tmp"
    mkdir -p "$debs.tmp"
    # shellcheck disable=SC2086 # one package a word
    (cd "$debs.tmp" && apt-get download $extra_debs) >"$work/apt-download.log" 2>&1 \
        || { cat "$work/apt-download.log" >&2; skip "apt-get download $extra_debs failed (apt-get update first?)"; }
    (cd "$debs.tmp" && dpkg-scanpackages . /dev/null >Packages 2>/dev/null)
    echo "$extra_debs" >"$debs.tmp/.boot-test-stamp"
    mv "$debs.tmp" "$debs"
fi

# --- 3 and 4. the containers -------------------------------------------------------------------
# What the package must ship under /usr/share/ngrok-cert-watchdog/, from the source tree.
{
    echo certbot-deploy-hook
    echo prometheus-alerts.yml
    if [ -f config/grafana-dashboard.json ]; then echo grafana-dashboard.json; fi
} | sort >"$work/expected-share.txt"

# The README's manual install, exactly as written between its markers.
awk '/<!-- boot-test: manual install begin -->/ { on = 1; next }
     /<!-- boot-test: manual install end -->/ { on = 0 }
     on && /^```/ { fence = !fence; next }
     on && fence { print }' README.md >"$work/readme-manual-install.sh"
[ -s "$work/readme-manual-install.sh" ] || { echo "boot test: no manual install block in README.md" >&2; exit 1; }

# Where PID 1 is not systemd (a container, a CI runner), nspawn must not register with machined
# nor make a scope (--register=no --keep-unit), and its /run/systemd/nspawn must be a tmpfs: it
# refuses to clean up its propagation directory on a disk file system. The tmpfs is mounted in a
# private mount namespace, so the host sees nothing of it. The container's cgroups go below a
# cgroup of its own, removed afterwards.
nspawn_opts=()
host_systemd=yes
if [ ! -d /run/systemd/system ]; then
    host_systemd=no
    nspawn_opts+=(--register=no --keep-unit)
fi

cgroup_dirs=()
cleanup_cgroups() {
    local d
    for d in "${cgroup_dirs[@]}"; do
        [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
}
trap cleanup_cgroups EXIT

# boot NAME CHECK-SCRIPT: a fresh copy of the root, the checks enabled as a oneshot unit, booted.
boot() {
    local name=$1 checks=$2 root="$work/root-$1" out="$work/out-$1"
    rm -rf "$root" "$out"
    mkdir -p "$out"
    cp -a --reflink=auto "$base" "$root"
    # apt's only source: the local repository (the mirror cannot be reached from inside).
    echo "deb [trusted=yes] file:/boot-test/debs ./" >"$root/etc/apt/sources.list"
    rm -f "$root/etc/apt/sources.list.d/"*
    install -m 0644 /dev/stdin "$root/etc/systemd/system/boot-test.service" <<EOF
[Unit]
Description=boot test checks ($name)
# Power off when done, whatever the outcome: the host reads the results file.
SuccessAction=poweroff-force
FailureAction=poweroff-force
After=basic.target dbus.service

[Service]
Type=oneshot
ExecStart=/bin/bash /boot-test/$checks /boot-test-out/results.txt
TimeoutStartSec=600
StandardOutput=journal+console

[Install]
WantedBy=multi-user.target
EOF
    mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
    ln -sf ../boot-test.service "$root/etc/systemd/system/multi-user.target.wants/boot-test.service"

    local cg="" cmd
    cmd=(systemd-nspawn --quiet --boot --directory="$root" --machine="ncw-$name"
        --private-network --console=pipe
        --bind-ro="$work/share:/boot-test" --bind="$out:/boot-test-out"
        --bind-ro="$repo:/src" "${nspawn_opts[@]}")
    if [ "$host_systemd" = no ]; then
        for h in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
            if [ -w "$h/cgroup.procs" ]; then
                mkdir -p "$h/ngrok-boot-test-$name"
                cgroup_dirs+=("$h/ngrok-boot-test-$name")
            fi
        done
    fi
    say "booting container '$name'"
    local started=$SECONDS rc=0
    # The subshell moves itself into the container's cgroups, then runs nspawn in a private
    # mount namespace with a tmpfs on /run/systemd/nspawn.
    (
        for d in "${cgroup_dirs[@]}"; do
            case "$d" in */ngrok-boot-test-"$name") echo "$BASHPID" >"$d/cgroup.procs" ;; esac
        done
        if [ "$host_systemd" = no ]; then
            exec timeout --kill-after=10 "${BOOT_TEST_TIMEOUT:-600}" unshare --mount --propagation private \
                sh -c 'mkdir -p /run/systemd/nspawn && mount -t tmpfs -o mode=0755 tmpfs /run/systemd/nspawn && exec "$@"' \
                sh "${cmd[@]}"
        else
            exec timeout --kill-after=10 "${BOOT_TEST_TIMEOUT:-600}" "${cmd[@]}"
        fi
    ) >"$work/console-$name.log" 2>&1 || rc=$?
    say "container '$name' powered off after $((SECONDS - started)) s (nspawn exit $rc)"
    if [ ! -s "$out/results.txt" ]; then
        echo "FAIL $name: the checks wrote no results (see $work/console-$name.log)" >"$out/results.txt"
        tail -n 40 "$work/console-$name.log" >&2 || true
    fi
}

# What the containers see at /boot-test.
rm -rf "$work/share"
mkdir -p "$work/share"
cp "$work/pkg-1.deb" "$work/pkg-2.deb" "$work/expected-share.txt" "$work/readme-manual-install.sh" \
    "$here/package-checks.sh" "$here/manual-checks.sh" "$here/lib.sh" config/demo-seed.toml "$work/share/"
cp -r "$debs" "$work/share/debs"

boot package package-checks.sh
boot manual manual-checks.sh

echo
status=0
for name in package manual; do
    echo "== $name"
    cat "$work/out-$name/results.txt"
    if [ -f "$work/out-$name/notes.txt" ]; then sed 's/^/  note: /' "$work/out-$name/notes.txt"; fi
    if grep -q '^FAIL' "$work/out-$name/results.txt" || ! grep -q '^DONE' "$work/out-$name/results.txt"; then
        status=1
        echo "(journal of the container: journalctl -D $work/root-$name/var/log/journal)"
    fi
done
say "$([ "$status" = 0 ] && echo passed || echo FAILED)"
exit "$status"
