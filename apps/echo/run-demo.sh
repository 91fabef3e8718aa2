#!/usr/bin/env bash
# UDP over tpa in one command, on any Linux machine, as root:
#   sudo apps/echo/run-demo.sh
#
# Builds tpa-echo, creates a network namespace with a TAP interface `tpa0`
# whose kernel side has 192.0.2.1/24 and 2001:db8::1/64, runs
# `tpa-echo server` on it for 192.0.2.2 and 2001:db8::2, UDP port 7, then runs
# `tpa-echo client --kernel` (the kernel's UDP socket) against tpa over IPv4
# and IPv6: every datagram is echoed by tpa and checked byte for byte, and
# the client prints datagrams per second and round-trip times. Then tpa is
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
demo_setup tpa-echo tpa-echodemo

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

echo "==> tpa-echo server --port tap:tpa0 --ip 192.0.2.2/24 --ip 2001:db8::2/64 --udp-port 7"
start_logged "$log" ip netns exec "$ns" "$bin" server --port tap:tpa0 --ip 192.0.2.2/24 \
    --ip 2001:db8::2/64 --udp-port 7
pid=$started_pid
wait_for "$pid" "listening on udp"

for to in 192.0.2.2:7 '[2001:db8::2]:7'; do
    echo "==> tpa-echo client --kernel --to $to --count $count --size 100 --window 8   (the kernel's socket, tpa echoes)"
    ip netns exec "$ns" "$bin" client --kernel --to "$to" --count "$count" --size 100 --window 8
done

kill -INT "$pid"
wait "$pid"
pid=
echo "==> the tpa server's report"
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
