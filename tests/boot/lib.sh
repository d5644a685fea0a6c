# Helpers for the checks that run inside the booted containers (sourced; bash).
# Every check writes one line to $results: "ok   NAME" or "FAIL NAME: why"; the last line is
# "DONE" once every check ran (the host fails a run without it).

results=${1:?usage: CHECKS RESULTS-FILE}
: >"$results"
export SYSTEMD_PAGER= PAGER=cat MANPAGER=cat LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive

# check NAME COMMAND...: runs COMMAND in a subshell with errexit (a failing command ends it; the
# assignment below is not a condition, so errexit holds inside); its exit status decides, its
# last output lines say why.
check() {
    local name=$1 out rc
    shift
    out=$(set -e; "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 0 ]; then
        echo "ok   $name" >>"$results"
    else
        echo "FAIL $name: $(printf '%s' "$out" | tail -n 6 | tr '\n' '|')" >>"$results"
    fi
}

# Prints ARGS to stderr (the reason a check fails) and ends the check.
die() { echo "$*" >&2; exit 1; }

# wait_for SECONDS COMMAND...: until COMMAND succeeds, at most SECONDS.
wait_for() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || { "$@" || true; return 1; }
        sleep 0.2
    done
}

# The metrics of the daemon at 127.0.0.1:PORT.
metrics() { curl -fsS --max-time 5 "http://127.0.0.1:$1/metrics"; }

# Whether the daemon at PORT reports metric line PATTERN (an extended regex).
has_metric() {
    local m
    m=$(metrics "$1") && grep -Eq "$2" <<<"$m"
}

# Whether the journal of UNIT at PRIORITY (and above) has a line matching PATTERN (fixed string).
journal_has() {
    local lines
    lines=$(journalctl -q -u "$1" -p "$2") && grep -qF -- "$3" <<<"$lines"
}

finish() { echo "DONE" >>"$results"; }
