#!/usr/bin/env bash
# Tests of benches/background.sh, as tests/run.sh runs them:
#   bash benches/background_test.sh
#
# The race they guard against (a wait reading the previous server's
# "listening" line before the new server's job has emptied the log) needs
# the job to run late. The tests make that certain instead of rare: they
# re-run themselves on one core at a real-time priority that their children
# do not inherit (`chrt --reset-on-fork`), so a job they start cannot run
# before they block. Emptying the log in the job, as echo_veth.sh did, fails
# the first test every time this way.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [[ -z ${BACKGROUND_TEST_PINNED:-} ]]; then
    export BACKGROUND_TEST_PINNED=1
    exec chrt --reset-on-fork --fifo 1 taskset --cpu-list 0 bash "$0" "$@"
fi

# shellcheck source=benches/background.sh
. benches/background.sh

log=$(mktemp)
pids=()
cleanup() {
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    rm -f "$log"
}
trap cleanup EXIT

failures=0
fail() {
    echo "FAIL: $*" >&2
    echo "--- log:" >&2
    cat "$log" >&2
    failures=$((failures + 1))
}

# A new server's wait ignores the previous server's "listening" line: it
# returns once the new one printed its own, and not before.
test_the_previous_servers_line_does_not_count() {
    printf 'listening on udp old\nfinal: received 5\n' >"$log"
    start_logged "$log" bash -c 'sleep 0.3; echo "listening on udp new"; exec sleep 30'
    pids+=("$started_pid")
    local first=
    read -r first <"$log" || true
    [[ -z $first ]] || fail "the log still held \"$first\" once the server was started"
    wait_for_line "$started_pid" "$log" "listening on udp" ||
        fail "no \"listening\" line from a server that prints one"
    grep -qx "listening on udp new" "$log" ||
        fail "the wait returned before the new server's line"
    ! grep -q "old\|final" "$log" || fail "the previous server's report is still in the log"
}

# Everything the server prints is kept, in order, from its first line.
test_the_whole_output_is_kept() {
    start_logged "$log" bash -c 'echo one; echo two >&2; echo "listening on udp x"; exec sleep 30'
    pids+=("$started_pid")
    wait_for_line "$started_pid" "$log" "listening on udp" || fail "no line"
    [[ $(head -n 2 "$log" | tr '\n' ' ') == "one two " ]] || fail "the first lines were lost"
}

# A server that ends without the line fails the wait (no 10 s hang, no
# success on an old line).
test_a_server_that_dies_fails_the_wait() {
    printf 'listening on udp old\n' >"$log"
    start_logged "$log" bash -c 'echo "bind: address in use"; exit 3'
    if wait_for_line "$started_pid" "$log" "listening on udp" 20; then
        fail "the wait succeeded for a server that never listened"
    fi
    grep -qx "bind: address in use" "$log" || fail "the server's error is not in the log"
}

for t in test_the_previous_servers_line_does_not_count test_the_whole_output_is_kept \
    test_a_server_that_dies_fails_the_wait; do
    before=$failures
    "$t"
    if ((failures == before)); then
        echo "ok: $t"
    fi
done
((failures == 0)) || {
    echo "background_test.sh: $failures failure(s)" >&2
    exit 1
}
echo "background_test.sh: all passed"
