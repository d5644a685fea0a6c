#!/usr/bin/env bash
# The boot test: the Debian package and the README's manual install, each in a booted minimal
# Debian container, on Debian 13 (trixie, systemd 257) and Debian 12 (bookworm, systemd 252),
# checked from inside by a oneshot unit that writes one line per check and powers off.
#
#   1. builds the .deb once with `cargo deb` (a release build) and repackages it as a newer
#      version with `cargo deb --no-build --deb-version ...` for the upgrade check;
#   2. makes a minimal Debian root of each release with debootstrap (--variant=minbase, plus
#      systemd, dbus, man-db, bash-completion and curl; no procps, as on a minimal host), kept in
#      target/boot-test/base-RELEASE and reused by later runs, and a local package repository
#      for it (ca-certificates and what it needs) in target/boot-test/debs-RELEASE;
#   3. container "package-RELEASE": tests/boot/package-checks.sh (dpkg -i, configure, enable,
#      metrics, reload, journal priorities, systemd-analyze security, a template instance,
#      upgrade, stop, purge);
#   4. container "manual-RELEASE": the README's manual install, the commands between its
#      "boot-test: manual install" markers, run as written, then tests/boot/manual-checks.sh.
#
# Every container runs with --private-network: only loopback, nothing reaches outside the
# machine (the ngrok API is the simulator, `ngrok-cert-watchdog simulate`, on 127.0.0.1 inside).
#
# Needs root, debootstrap, systemd-nspawn (package systemd-container), cargo-deb and a Debian
# mirror for the first debootstrap (the one apt uses here, or BOOT_TEST_MIRROR).
# BOOT_TEST_SUITES picks the releases (default "bookworm trixie").
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

# --- 2. the minimal Debian roots ---------------------------------------------------------------
# Each Debian release the checks boot: the current stable (13, trixie) and the one before (12,
# bookworm), whose systemd and base differ (systemd 257 and 252).
suites=${BOOT_TEST_SUITES:-bookworm trixie}
include=systemd,systemd-sysv,dbus,man-db,bash-completion,curl

# The mirror: BOOT_TEST_MIRROR, else the one apt uses on this machine (deb822 or one-line
# sources), else Debian's CDN. Looked up only when a root or a repository is made.
mirror=${BOOT_TEST_MIRROR:-}
find_mirror() {
    [ -z "$mirror" ] || return 0
    mirror=$({ cat /etc/apt/sources.list.d/*.sources 2>/dev/null || true; } \
        | awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /debian\/?$/) { print $i; exit } }')
    [ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $2 ~ /debian\/?$/ { print $2; exit }' \
        /etc/apt/sources.list 2>/dev/null || true)
    [ -n "$mirror" ] || mirror=http://deb.debian.org/debian
}

# make_base SUITE: the minimal root of SUITE in $work/base-SUITE, made once.
make_base() {
    local suite=$1 base="$work/base-$1" stamp="$1 minbase $include"
    if [ -f "$base/.boot-test-stamp" ] && [ "$(cat "$base/.boot-test-stamp")" = "$stamp" ]; then
        say "reusing the Debian root in $base"
        return
    fi
    find_mirror
    say "debootstrap $suite from $mirror (once; reused by later runs)"
    rm -rf "$base" "$base.tmp"
    debootstrap --variant=minbase --include="$include" "$suite" "$base.tmp" "$mirror" \
        >"$work/debootstrap-$suite.log" 2>&1 \
        || { tail -n 20 "$work/debootstrap-$suite.log" >&2; skip "debootstrap $suite failed (no Debian mirror reachable?)"; }
    # Package lists are not needed offline, and a smaller root copies faster.
    rm -rf "$base.tmp/var/cache/apt/archives/"*.deb
    echo "$stamp" >"$base.tmp/.boot-test-stamp"
    mv "$base.tmp" "$base"
}

# The containers have no network. What apt installs there besides our .deb comes from a local
# repository standing in for the Debian mirror: ca-certificates (the package depends on it; a
# minimal Debian has no TLS roots) and what it needs, fetched once from SUITE with an apt of
# its own (lists and cache in $work/apt-SUITE; this machine's apt is left alone).
make_debs() {
    local suite=$1 debs="$work/debs-$1" apt_dir="$work/apt-$1" extra
    case "$suite" in
        bookworm) extra="ca-certificates openssl libssl3" ;;
        *) extra="ca-certificates openssl libssl3t64" ;; # the 64-bit time_t names, from trixie on
    esac
    if [ -f "$debs/Packages" ] && [ "$(cat "$debs/.boot-test-stamp" 2>/dev/null)" = "$extra" ]; then
        return
    fi
    find_mirror
    say "apt-get download $extra from $suite (once; the containers' package repository)"
    rm -rf "$debs" "$debs.tmp" "$apt_dir"
    mkdir -p "$debs.tmp" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $suite main" >"$apt_dir/sources.list"
    local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/nonexistent
        -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
    # shellcheck disable=SC2086 # one package a word
    { apt-get "${apt_opts[@]}" update && (cd "$debs.tmp" && apt-get "${apt_opts[@]}" download $extra); } \
        >"$work/apt-download-$suite.log" 2>&1 \
        || { tail -n 20 "$work/apt-download-$suite.log" >&2; skip "apt-get download $extra from $suite failed (no Debian mirror reachable?)"; }
    rm -rf "$apt_dir" # 30 MB of lists, needed no more
    (cd "$debs.tmp" && dpkg-scanpackages . /dev/null >Packages 2>/dev/null)
    echo "$extra" >"$debs.tmp/.boot-test-stamp"
    mv "$debs.tmp" "$debs"
}

for suite in $suites; do
    make_base "$suite"
    make_debs "$suite"
done
# Roots of the layout before the per-release ones.
rm -rf "$work/base" "$work/debs"

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

# boot KIND SUITE CHECK-SCRIPT: a fresh copy of SUITE's root, the checks enabled as a oneshot
# unit, booted as container KIND-SUITE.
boot() {
    local name=$1-$2 suite=$2 checks=$3
    local root="$work/root-$name" out="$work/out-$name"
    rm -rf "$root" "$out"
    mkdir -p "$out"
    cp -a --reflink=auto "$work/base-$suite" "$root"
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
        --bind-ro="$work/share-$suite:/boot-test" --bind="$out:/boot-test-out"
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

names=()
for suite in $suites; do
    # What the containers see at /boot-test: the same files, and the release's repository.
    share="$work/share-$suite"
    rm -rf "$share"
    mkdir -p "$share"
    cp "$work/pkg-1.deb" "$work/pkg-2.deb" "$work/expected-share.txt" "$work/readme-manual-install.sh" \
        "$here/package-checks.sh" "$here/manual-checks.sh" "$here/lib.sh" config/demo-seed.toml "$share/"
    cp -r "$work/debs-$suite" "$share/debs"

    boot package "$suite" package-checks.sh
    boot manual "$suite" manual-checks.sh
    names+=("package-$suite" "manual-$suite")
done
rm -rf "$work/share" "$work/root-package" "$work/root-manual" "$work/out-package" "$work/out-manual"

echo
status=0
for name in "${names[@]}"; do
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
