#!/usr/bin/env bash
# tpa in one command, on any Linux machine, as root:
#   sudo apps/responder/run-demo.sh
#
# Builds tpa-responder, creates a network namespace, runs the responder in it
# on a TAP interface `tpa0` answering for 192.0.2.2, gives the kernel's side of
# the TAP 192.0.2.1/24, then pings 192.0.2.2 from the kernel and prints the
# replies (answered by tpa, not by the kernel), the neighbor entry the kernel
# learnt from tpa's ARP reply, and the responder's counters. Everything it
# created is removed on exit. COUNT=<n> changes the number of pings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

# shellcheck source=apps/demo_lib.sh
. apps/demo_lib.sh
tap=tpa0
tpa_ip=192.0.2.2
kernel_ip=192.0.2.1
count="${COUNT:-4}"
demo_setup tpa-responder tpa-demo ping:iputils-ping

echo "==> tpa-responder --port tap:$tap --ip $tpa_ip/24   (in namespace $ns)"
ip netns exec "$ns" "$bin" --port "tap:$tap" --ip "$tpa_ip/24" --interval 0 >"$log" 2>&1 &
pid=$!
for _ in $(seq 100); do
    ip -n "$ns" link show "$tap" >/dev/null 2>&1 && break
    kill -0 "$pid" 2>/dev/null || {
        cat "$log"
        echo "run-demo.sh: tpa-responder exited early" >&2
        exit 1
    }
    sleep 0.1
done
ip -n "$ns" link show "$tap" >/dev/null || {
    cat "$log"
    echo "run-demo.sh: TAP $tap did not appear" >&2
    exit 1
}

echo "==> kernel side of the TAP: $kernel_ip/24 on $tap"
ip -n "$ns" addr add "$kernel_ip/24" dev "$tap"
ip -n "$ns" link set "$tap" up

echo "==> ping -c $count $tpa_ip   (the kernel pings tpa through the TAP)"
ip netns exec "$ns" ping -c "$count" -i 0.2 -W 2 "$tpa_ip"

echo "==> the kernel learnt tpa's MAC from tpa's ARP reply"
ip -n "$ns" neigh show "$tpa_ip" dev "$tap"

kill -INT "$pid"
wait "$pid"
pid=
echo "==> tpa-responder output"
cat "$log"
