#!/usr/bin/env bash
# The TCP soak: 10^6 connect-request-response-close cycles between the
# Linux kernel's sockets (tpa-tperf's kernel client, `-t crr`) and tpa's
# TCP (tpa-tperf's tpa server) over a TAP device in a network namespace,
# built with optimizations. Run as root:
#   sudo bash tests/tcp_soak.sh [CYCLES]
# The server closes first (tperf's crr, as an HTTP/1.0 server does), so
# TIME_WAIT is on tpa's side, bounded by TPA_TCP_TIME_WAIT_MAX (default
# here 4096: fewer than the kernel client's ephemeral ports, so a reused
# port never meets its old connection still in TIME_WAIT). The client runs
# in rounds of ROUND_S seconds (default 20) until CYCLES (default 10^6)
# transactions passed; every byte of every cycle is checked by both ends
# (tperf's pattern), and a round that finds a problem fails the soak.
#
# It prints the cycles per second of each round, the tpa server's RSS
# (VmRSS) at the start, after every round and at the end, and the server's
# counters at its end: the TCP table's (TIME_WAIT entered and evicted over
# the bound), the sockets still open and in TIME_WAIT. The server exits
# non-zero when buffers did not come back to its pool (a leak), and so does
# this script. Knobs: CONNS (connections at once, default 8), ROUND_S,
# TPA_TCP_TIME_WAIT_MAX, TPA_TCP_TIME_WAIT_DURATION (tpa's own TCP knobs).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(id -u) -eq 0 ]] || {
    echo "tests/tcp_soak.sh: run as root (a namespace and a TAP device)" >&2
    exit 1
}
cycles=${1:-1000000}
conns=${CONNS:-8}
round_s=${ROUND_S:-20}
export TPA_TCP_TIME_WAIT_MAX="${TPA_TCP_TIME_WAIT_MAX:-4096}"
export TPA_TPERF_COUNTERS=1

cargo build --release -q -p tpa-tperf
target="${CARGO_TARGET_DIR:-target}"
tperf="$target/release/tpa-tperf"
[[ -x $tperf ]] || {
    echo "tests/tcp_soak.sh: $tperf not built" >&2
    exit 1
}

ns="tpa-soak-$$-0"
work=$(mktemp -d)
server_pid=
cleanup() {
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ip netns add "$ns"
in_ns() { ip netns exec "$ns" "$@"; }
in_ns ip link set lo up
in_ns ip tuntap add dev tpa0 mode tap
in_ns ip addr add 192.0.2.1/24 dev tpa0
in_ns ip link set tpa0 up

ip netns exec "$ns" "$tperf" server --port tap:tpa0 --ip 192.0.2.2/24 -l 192.0.2.2:4040 \
    >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 100); do
    grep -q . "$work/server.out" "$work/server.err" 2>/dev/null && break
    sleep 0.1
done
sleep 0.5
kill -0 "$server_pid" 2>/dev/null || {
    cat "$work/server.err" >&2
    echo "tests/tcp_soak.sh: the tpa server did not start" >&2
    exit 1
}
rss() { awk '/^VmRSS/ {print $2 " " $3}' "/proc/$server_pid/status"; }
echo "tcp_soak: $cycles cycles, $conns connections at once, rounds of $round_s s, TIME_WAIT max $TPA_TCP_TIME_WAIT_MAX"
echo "tcp_soak: server RSS at start: $(rss)"

done_cycles=0
round=0
start=$(date +%s)
while ((done_cycles < cycles)); do
    round=$((round + 1))
    if ! in_ns "$tperf" client --kernel -s 192.0.2.2:4040 -t crr -c "$conns" \
        -d "$round_s" --json >"$work/round.json" 2>"$work/round.err"; then
        cat "$work/round.json" "$work/round.err" >&2
        echo "tcp_soak: round $round failed" >&2
        exit 1
    fi
    read -r n rate <<<"$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["ok"] and not r["problems"], r["problems"]
assert r["integrity_errors"] == 0 and r["failed_connections"] == 0, r
assert r["connections_completed"] == r["connections_opened"], r
print(r["transactions"], round(r["transactions_per_s"]))
' "$work/round.json")"
    done_cycles=$((done_cycles + n))
    echo "tcp_soak: round $round: $n cycles at $rate/s (total $done_cycles), server RSS $(rss)"
done
elapsed=$(($(date +%s) - start))
echo "tcp_soak: server RSS at end: $(rss)"
kill -INT "$server_pid"
status=0
wait "$server_pid" || status=$?
server_pid=
cat "$work/server.err"
echo "tcp_soak: $done_cycles cycles in $elapsed s ($((done_cycles / (elapsed > 0 ? elapsed : 1)))/s over the rounds)"
if ((status != 0)); then
    echo "tcp_soak: the tpa server exited with $status (a leak or an error above)" >&2
    exit 1
fi
tw=$(sed -n 's/^tcp sockets: open \([0-9]*\) time_wait \([0-9]*\) time_wait_max \([0-9]*\)$/\2 \3/p' "$work/server.err")
read -r tw_now tw_max <<<"$tw"
[[ -n $tw_now && $tw_now -le $tw_max ]] || {
    echo "tcp_soak: TIME_WAIT $tw_now over its bound $tw_max" >&2
    exit 1
}
echo "tcp_soak: TIME_WAIT at the end $tw_now (bound $tw_max); the server's pool whole (it exits non-zero on a missing buffer)"
echo "tcp_soak: passed"
