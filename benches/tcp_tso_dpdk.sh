#!/usr/bin/env bash
# tpa's TCP on a DPDK port (a net_tap vdev) with and without TSO, same
# run, as root:
#   sudo bash benches/tcp_tso_dpdk.sh
#
# One namespace holds a multi-queue TAP `tpa0` (the kernel's side
# 10.80.0.1) that a net_tap vdev attaches to (tpa's side 10.80.0.2; the
# EAL without hugepages or PCI), and a kernel tperf server on
# 10.80.0.1:4040. A tpa client on the vdev runs `write` (tpa sends: bulk,
# 16 KiB writes) and `read` (tpa receives) in two variants:
#   off        TPA_TCP_TSO=false: one mbuf per segment, checksums left to
#              the device (net_tap computes them in software);
#   tso        TCP super-segments of up to 64 KiB, cut by net_tap's
#              librte_gso.
# Each round runs both variants (the order rotating); the figures are
# medians over ROUNDS (5) runs of DURATION (3) s: Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side), and each figure's ratio to `off`. Traffic stays in the namespace
# the script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=benches/tso_lib.sh
. benches/tso_lib.sh

tso_name=tcp_tso_dpdk.sh
tso_needs="a network namespace and a TAP"
tso_features="--features dpdk"
tso_label=net_tap
variants=(off tso)
ns="tpa-tsod-$$"
tso_server_ns=$ns
tso_server_addr=10.80.0.1:4040
tso_extra_cleanup=("/var/run/dpdk/$ns")
eal=(-l 0 --no-huge --no-pci --no-shconf -m 512 --log-level '*:error'
    --vdev net_tap0,iface=tpa0 --file-prefix "$ns")

tso_setup() {
    tso_netns=("$ns")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" tuntap add dev tpa0 mode tap multi_queue
    ip -n "$ns" addr add 10.80.0.1/24 dev tpa0
    ip -n "$ns" link set tpa0 up
}

tso_measure() {
    local tso=true
    [[ $1 == off ]] && tso=false
    TPA_TCP_TSO=$tso ip netns exec "$ns" "$bin" client --port dpdk:net_tap0 --ip 10.80.0.2/24 \
        -s "$tso_server_addr" -t "$2" -d "$duration" --json -- "${eal[@]}" >"$out" ||
        tso_client_failed "$1" "$2"
}

tso_title() {
    echo "$1 over DPDK net_tap against the kernel, medians of $rounds runs of ${duration} s:"
}

tso_main
