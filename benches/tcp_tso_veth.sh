#!/usr/bin/env bash
# tpa's TCP over AF_PACKET on a veth with and without the port's offloads
# (PACKET_VNET_HDR), same run, as root:
#   sudo bash benches/tcp_tso_veth.sh
#
# Two namespaces joined by a veth pair: the kernel's end `vk` (10.80.0.1,
# a kernel tperf server on 10.80.0.1:4040; TSO and GSO off, `ethtool -K`,
# so that the kernel sends tpa segments it can take, not 64 KiB GSO units:
# `gso_max_segs 1`, which the tests use, does that too but cuts the
# kernel's sending rate several times over) and tpa's
# end `vt` (no kernel address; the veth's own offloads left on: tx
# checksumming, scatter-gather, TSO). A tpa client on `vt` (10.80.0.2,
# AF_PACKET, the default TPACKET_V2 rings; TX_PATH=sendmmsg for the other
# transmit path) runs `write` (tpa sends: bulk, 16 KiB writes) and `read`
# (tpa receives) in three variants:
#   plain      no virtio_net_hdr: tpa computes every checksum and hands
#              the kernel one frame per segment;
#   csum       --offloads with TPA_TCP_TSO=false: the kernel finishes the
#              checksums both ways, one frame per segment still;
#   tso        --offloads: TCP super-segments of up to 64 KiB as well,
#              which the veth passes to the kernel's stack whole.
# Each round runs every variant (the order rotating); the figures are
# medians over ROUNDS (5) runs of DURATION (3) s: Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side), and each figure's ratio to the plain port's. Traffic stays in the
# namespaces the script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v ethtool >/dev/null || {
    echo "tcp_tso_veth.sh: ethtool not found (apt-get install ethtool): the kernel's veth end must send segments" >&2
    exit 1
}
# shellcheck source=benches/tso_lib.sh
. benches/tso_lib.sh

tso_name=tcp_tso_veth.sh
tso_needs="network namespaces and a veth pair"
tso_features=
tso_label=AF_PACKET
variants=(plain csum tso)
ns="tpa-tsov-k-$$"
nt="tpa-tsov-t-$$"
tx_path="${TX_PATH:-ring}"
tso_server_ns=$ns
tso_server_addr=10.80.0.1:4040

tso_setup() {
    tso_netns=("$ns" "$nt")
    ip netns add "$ns"
    ip netns add "$nt"
    ip -n "$ns" link set lo up
    ip -n "$nt" link set lo up
    ip -n "$ns" link add vk type veth peer name vt
    ip -n "$ns" link set vt netns "$nt"
    ip netns exec "$ns" ethtool -K vk tso off gso off >/dev/null
    ip -n "$ns" addr add 10.80.0.1/24 dev vk
    ip -n "$ns" link set vk up
    ip -n "$nt" link set vt up
}

tso_measure() {
    local args=(--port af_packet:vt --ip 10.80.0.2/24 --tx-path "$tx_path") tso=true
    case $1 in
    plain) ;;
    csum) args+=(--offloads) tso=false ;;
    tso) args+=(--offloads) ;;
    esac
    TPA_TCP_TSO=$tso ip netns exec "$nt" "$bin" client "${args[@]}" -s "$tso_server_addr" \
        -t "$2" -d "$duration" --json >"$out" || tso_client_failed "$1" "$2"
}

tso_title() {
    echo "$1 over veth (AF_PACKET, tx path $tx_path) against the kernel, medians of $rounds runs of ${duration} s:"
}

tso_main
