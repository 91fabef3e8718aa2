#!/usr/bin/env bash
# tpa's TCP over a TAP device with and without the TAP's offloads, same
# run, as root:
#   sudo bash benches/tcp_tso_tap.sh
#
# One namespace holds a TAP `tk` (the kernel's side 10.79.0.1, tpa's
# 10.79.0.2) and a kernel tperf server on 10.79.0.1:4040. A tpa client on
# the TAP runs `write` (tpa sends: bulk, 16 KiB writes) and `read` (tpa
# receives) in three variants:
#   plain      the TAP without a virtio_net_hdr: tpa computes every
#              checksum and writes one frame per segment;
#   csum       --offloads with TPA_TCP_TSO=false: the kernel finishes the
#              checksums both ways, one frame per segment still;
#   tso        --offloads: TCP super-segments of up to 64 KiB as well.
# Each round runs every variant (the order rotating); the figures are
# medians over ROUNDS (5) runs of DURATION (3) s: Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side), and each figure's ratio to the plain TAP's. Traffic stays in the
# namespace the script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=benches/tso_lib.sh
. benches/tso_lib.sh

tso_name=tcp_tso_tap.sh
tso_needs="a network namespace and a TAP"
tso_features=
tso_label=TAP
variants=(plain csum tso)
ns="tpa-tso-$$"
tso_server_ns=$ns
tso_server_addr=10.79.0.1:4040

tso_setup() {
    tso_netns=("$ns")
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" tuntap add dev tk mode tap
    ip -n "$ns" addr add 10.79.0.1/24 dev tk
    ip -n "$ns" link set tk up
}

tso_measure() {
    local args=(--port tap:tk --ip 10.79.0.2/24) tso=true
    case $1 in
    plain) ;;
    csum) args+=(--offloads) tso=false ;;
    tso) args+=(--offloads) ;;
    esac
    TPA_TCP_TSO=$tso ip netns exec "$ns" "$bin" client "${args[@]}" -s "$tso_server_addr" \
        -t "$2" -d "$duration" --json >"$out" || tso_client_failed "$1" "$2"
}

tso_title() {
    echo "$1 over TAP against the kernel, medians of $rounds runs of ${duration} s:"
}

tso_main
