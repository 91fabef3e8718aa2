#!/usr/bin/env bash
# The long run of tests/tests/tcp_interop.rs: tpa's TCP against the Linux
# kernel's over TAP and veth+AF_PACKET, IPv4 and IPv6, clean and through a
# 1% loss each way, 1 GiB each way per transfer (CI moves 64 MiB), built
# with optimizations. Run as root:
#   sudo bash tests/tcp_interop_long.sh [TEST-NAME-FILTER]
# TPA_INTEROP_BYTES overrides the size. The tests run one at a time (their
# figures — the kernel's nstat counters, both ends' retransmissions — are
# printed, and one at a time they do not compete for the CPU).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(id -u) -eq 0 ]] || {
    echo "tests/tcp_interop_long.sh: run as root (namespaces, TAP, veth, a bridge, nft)" >&2
    exit 1
}
export TPA_INTEROP_BYTES="${TPA_INTEROP_BYTES:-$((1 << 30))}"
start=$(date +%s)
cargo test --release -p tpa-tests --test tcp_interop -- --nocapture --test-threads 1 "$@"
echo "tests/tcp_interop_long.sh: ${TPA_INTEROP_BYTES} bytes each way per transfer, passed in $(($(date +%s) - start)) s"
