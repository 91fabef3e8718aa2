#!/usr/bin/env bash
# UDP and TCP over tpa in one command, on any Linux machine, as root:
#   sudo apps/echo/run-demo.sh
#
# Builds tpa-echo, creates a network namespace with a TAP interface `tpa0`
# whose kernel side has 192.0.2.1/24 and 2001:db8::1/64, runs
# `tpa-echo server` on it for 192.0.2.2 and 2001:db8::2, UDP and TCP port 7,
# then runs `tpa-echo client --kernel` (the kernel's UDP socket) against tpa
# over IPv4 and IPv6: every datagram is echoed by tpa and checked byte for
# byte, and the client prints datagrams per second and round-trip times.
# Then the TCP round: the kernel's TCP (tests/src/tcp_peer.py, python's
# sockets) sends BYTES random bytes (default 4 MiB) on CONNS connections at
# once (default 4), IPv4 and IPv6, half-closes and reads the echo to the
# end; the sha256 of what each sent and got back must be equal. Then tpa is
# the client and the kernel the echo server (`tpa-echo server --kernel`): the
# first datagram waits for tpa's ARP request to be answered. Prints the
# server's counters and removes everything on exit. COUNT=<n> datagrams per
# run (default 1000).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=apps/demo_lib.sh
. apps/demo_lib.sh
# shellcheck source=benches/background.sh
. benches/background.sh
count="${COUNT:-1000}"
bytes="${BYTES:-4194304}"
conns="${CONNS:-4}"
demo_setup tpa-echo tpa-echodemo python3:python3

# wait_for PID TEXT: until the log has a line starting with TEXT.
wait_for() {
    wait_for_line "$1" "$log" "$2" && return
    cat "$log"
    echo "run-demo.sh: no \"$2\" from the server" >&2
    exit 1
}

echo "==> a TAP tpa0 in namespace $ns; its kernel side: 192.0.2.1/24 and 2001:db8::1/64"
# Persistent, so that it outlives the server for the client that follows.
ip -n "$ns" tuntap add dev tpa0 mode tap
ip -n "$ns" addr add 192.0.2.1/24 dev tpa0
ip -n "$ns" addr add 2001:db8::1/64 dev tpa0 nodad
ip -n "$ns" link set tpa0 up

echo "==> tpa-echo server --port tap:tpa0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --udp-port 7   (TCP on 7 too)"
start_logged "$log" ip netns exec "$ns" "$bin" server --port tap:tpa0 --ip 192.0.2.2/24 \
    --ip 2001:db8::2/64 --udp-port 7
pid=$started_pid
wait_for "$pid" "listening on udp"

for to in 192.0.2.2:7 '[2001:db8::2]:7'; do
    echo "==> tpa-echo client --kernel --to $to --count $count --size 100 --window 8   (the kernel's socket, tpa echoes)"
    ip netns exec "$ns" "$bin" client --kernel --to "$to" --count "$count" --size 100 --window 8
done

# tcp_echo ADDR: CONNS kernel clients at once (tcp_peer.py echo, each its
# own pattern seed), each checking that what came back is what it sent.
tcp_echo() {
    local addr=$1 i out failed=0 pids=()
    echo "==> $conns x tcp_peer.py --cc cubic echo $addr 7 $bytes   (the kernel's TCP, tpa echoes)"
    for ((i = 0; i < conns; i++)); do
        ip netns exec "$ns" python3 tests/src/tcp_peer.py --seed $((i + 1)) --cc cubic \
            echo "$addr" 7 "$bytes" >"$log.tcp$i" &
        pids+=($!)
    done
    for ((i = 0; i < conns; i++)); do
        wait "${pids[$i]}" || failed=1
        out=$(cat "$log.tcp$i")
        rm -f "$log.tcp$i"
        # one JSON line: sent, sent_sha256, received, received_sha256, ...
        if ! python3 -c '
import json, sys
r = json.loads(sys.argv[1]); n = int(sys.argv[2])
ok = r["sent"] == n and r["received"] == n and r["sent_sha256"] == r["received_sha256"]
print(r["received_sha256"][:16])
sys.exit(0 if ok else 1)' "$out" "$bytes" >"$log.sha" 2>/dev/null; then
            echo "run-demo.sh: connection $i: the echo differs: $out" >&2
            failed=1
        else
            echo "    connection $i: $bytes bytes echoed, sha256 $(cat "$log.sha")… equal"
        fi
        rm -f "$log.sha"
    done
    ((failed == 0)) || exit 1
}
tcp_echo 192.0.2.2
tcp_echo 2001:db8::2

kill -INT "$pid"
wait "$pid"
pid=
echo "==> the tpa server's report (final: is UDP's, tcp: is TCP's)"
cat "$log"

echo "==> tpa-echo server --kernel --ip 192.0.2.1 --udp-port 9   (the kernel echoes)"
# The log still holds the first server's report, "listening" included:
# start_logged empties it first, so the wait is for this server's line.
start_logged "$log" ip netns exec "$ns" "$bin" server --kernel --ip 192.0.2.1 --udp-port 9
pid=$started_pid
wait_for "$pid" "listening on udp"
echo "==> tpa-echo client --port tap:tpa0 --ip 192.0.2.2/24 --to 192.0.2.1:9 --count $count --size 100   (tpa sends first)"
ip netns exec "$ns" "$bin" client --port tap:tpa0 --ip 192.0.2.2/24 --to 192.0.2.1:9 \
    --count "$count" --size 100
