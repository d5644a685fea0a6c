#!/usr/bin/env bash
# certbot deploy hook for ngrok-cert-watchdog.
#
# certbot keeps private keys root-only (0600 in 0700 directories), so the service user cannot
# read /etc/letsencrypt/live/... nor watch it. After every renewal this hook copies the lineage's
# fullchain.pem and privkey.pem into a directory that user's group can read:
#
#     $NGROK_CERT_WATCHDOG_CERT_DIR/<lineage>/fullchain.pem   0640 root:ngrok-cert-watchdog
#     $NGROK_CERT_WATCHDOG_CERT_DIR/<lineage>/privkey.pem     0640 root:ngrok-cert-watchdog
#
# and a [[watch]] entry points there. Each file is replaced atomically (temporary file in the same
# directory, fsync, rename), the key first and the certificate last, so the change that starts a
# rotation comes last. (The daemon checks that key and certificate match and waits while they
# don't, so a reader seeing the new key beside the old certificate for a moment is harmless.)
#
# Install:   install -m 0755 certbot-deploy-hook.sh /etc/letsencrypt/renewal-hooks/deploy/ngrok-cert-watchdog
# certbot runs it as root with RENEWED_LINEAGE=/etc/letsencrypt/live/<name> (and RENEWED_DOMAINS).
# First copy, by hand:   /etc/letsencrypt/renewal-hooks/deploy/ngrok-cert-watchdog /etc/letsencrypt/live/<name>
#
# Settings: from the environment, else the defaults below (edit them in the installed copy).
#   NGROK_CERT_WATCHDOG_CERT_DIR     where the copies go          (default /etc/ngrok-cert-watchdog/certs)
#   NGROK_CERT_WATCHDOG_CERT_GROUP   group that may read them     (default ngrok-cert-watchdog;
#                                    empty: leave the group alone, for tests only)
#   NGROK_CERT_WATCHDOG_LINEAGES     space-separated lineage names to copy (default empty: every
#                                    lineage certbot renews; set it to keep other keys out)
#
# Exit status: 0 copied, unchanged, or nothing to do (no lineage, lineage not selected);
# 1 on any failure, with the reason on stderr (certbot logs it and carries on).

set -euo pipefail

: "${NGROK_CERT_WATCHDOG_CERT_DIR:=/etc/ngrok-cert-watchdog/certs}"
: "${NGROK_CERT_WATCHDOG_CERT_GROUP=ngrok-cert-watchdog}"
: "${NGROK_CERT_WATCHDOG_LINEAGES:=}"

prog="ngrok-cert-watchdog deploy hook"
say() { printf '%s: %s\n' "$prog" "$*"; }
die() { printf '%s: error: %s\n' "$prog" "$*" >&2; exit 1; }

# Temporary files are private from the moment they exist; permissions are widened explicitly.
umask 077

if [ $# -gt 1 ]; then
    die "usage: $0 [/etc/letsencrypt/live/NAME]  (or set RENEWED_LINEAGE, as certbot does)"
fi
lineage="${1:-${RENEWED_LINEAGE:-}}"
if [ -z "$lineage" ]; then
    say "RENEWED_LINEAGE is not set and no lineage was given: nothing to do"
    say "usage: $0 /etc/letsencrypt/live/NAME   (certbot sets RENEWED_LINEAGE itself)"
    exit 0
fi

lineage="${lineage%/}"
name="${lineage##*/}"
case "$name" in
    "" | . | .. | .*) die "cannot take a lineage name from '$lineage'" ;;
esac

if [ -n "$NGROK_CERT_WATCHDOG_LINEAGES" ]; then
    selected=no
    for wanted in $NGROK_CERT_WATCHDOG_LINEAGES; do
        if [ "$wanted" = "$name" ]; then selected=yes; fi
    done
    if [ "$selected" = no ]; then
        say "lineage '$name' is not in NGROK_CERT_WATCHDOG_LINEAGES ($NGROK_CERT_WATCHDOG_LINEAGES): skipped"
        exit 0
    fi
fi

[ -d "$lineage" ] || die "lineage directory '$lineage' does not exist"
for f in fullchain.pem privkey.pem; do
    # -r follows certbot's symlinks into archive/; a dangling link fails here, not half-way.
    [ -r "$lineage/$f" ] || die "cannot read '$lineage/$f' (missing, dangling symlink, or not root?)"
    [ -s "$lineage/$f" ] || die "'$lineage/$f' is empty"
    grep -q -e '-----BEGIN ' "$lineage/$f" || die "'$lineage/$f' is not PEM"
done

# Ownership: root:GROUP when run as root (certbot); only the group when run by an ordinary user
# (tests), which works if that user belongs to the group.
group="$NGROK_CERT_WATCHDOG_CERT_GROUP"
if [ -n "$group" ]; then
    getent group "$group" >/dev/null 2>&1 \
        || die "group '$group' does not exist: create it first (systemd-sysusers /etc/sysusers.d/ngrok-cert-watchdog.conf) or set NGROK_CERT_WATCHDOG_CERT_GROUP"
    if [ "$(id -u)" -eq 0 ]; then owner="root:$group"; else owner=":$group"; fi
else
    owner=""
fi

# Gives PATH the hook's ownership and MODE.
set_owner_mode() {
    local mode="$1" path="$2"
    if [ -n "$owner" ]; then
        chown -- "$owner" "$path" || die "cannot chown '$path' to '$owner'"
    fi
    chmod -- "$mode" "$path" || die "cannot chmod '$path' to $mode"
}

# fsync FILE (or directory); coreutils' sync takes arguments since 8.24, else sync everything.
flush() {
    sync -- "$@" 2>/dev/null || sync
}

# The base directory and the lineage's directory: 0750 root:GROUP (the service lists and watches
# the lineage directory; the watch is on the parent directory of the files).
for d in "$NGROK_CERT_WATCHDOG_CERT_DIR" "$NGROK_CERT_WATCHDOG_CERT_DIR/$name"; do
    if [ ! -d "$d" ]; then
        mkdir -p -- "$d" || die "cannot create directory '$d'"
    fi
    set_owner_mode 0750 "$d"
done
target="$NGROK_CERT_WATCHDOG_CERT_DIR/$name"

# Nothing changed (a hand-run repeat, or certbot --force-renewal reusing the key is still a change):
# leave the files alone so the daemon sees no event.
if cmp -s -- "$lineage/fullchain.pem" "$target/fullchain.pem" 2>/dev/null \
    && cmp -s -- "$lineage/privkey.pem" "$target/privkey.pem" 2>/dev/null; then
    # Still repair ownership and modes, in case the group was created after the first copy.
    set_owner_mode 0640 "$target/privkey.pem"
    set_owner_mode 0640 "$target/fullchain.pem"
    say "$name: unchanged in $target"
    exit 0
fi

tmp_key=""
tmp_cert=""
cleanup() {
    # Only temporary files that were not renamed into place are still set.
    [ -n "$tmp_key" ] && rm -f -- "$tmp_key"
    [ -n "$tmp_cert" ] && rm -f -- "$tmp_cert"
    return 0
}
trap cleanup EXIT

# Temporary files in the same directory, so rename(2) is atomic; dot-names so that a glob does not
# pick them up. mktemp creates them 0600, so the key is never readable by others, even briefly.
tmp_key=$(mktemp -- "$target/.privkey.pem.XXXXXX") || die "cannot create a temporary file in '$target'"
tmp_cert=$(mktemp -- "$target/.fullchain.pem.XXXXXX") || die "cannot create a temporary file in '$target'"

# cat, not cp: copies the content through the symlinks, into the file mktemp made (keeping its mode).
cat -- "$lineage/privkey.pem" > "$tmp_key" || die "cannot copy '$lineage/privkey.pem' to '$tmp_key'"
cat -- "$lineage/fullchain.pem" > "$tmp_cert" || die "cannot copy '$lineage/fullchain.pem' to '$tmp_cert'"
set_owner_mode 0640 "$tmp_key"
set_owner_mode 0640 "$tmp_cert"
# Data on disk before the rename makes it visible: after a crash the name points at a whole file.
flush "$tmp_key" "$tmp_cert"

# The key first, the certificate last: the certificate's change is what triggers the rotation.
mv -f -T -- "$tmp_key" "$target/privkey.pem" || die "cannot rename '$tmp_key' to '$target/privkey.pem'"
tmp_key=""
mv -f -T -- "$tmp_cert" "$target/fullchain.pem" || die "cannot rename '$tmp_cert' to '$target/fullchain.pem'"
tmp_cert=""
# The renames themselves on disk.
flush "$target"

say "$name: copied fullchain.pem and privkey.pem to $target${RENEWED_DOMAINS:+ (domains: $RENEWED_DOMAINS)}"
