#!/usr/bin/env bash
# Instructions per answered request of the responder's pipeline (Ethernet
# front, IPv4/IPv6 input, ARP, NDP and ICMP echo stages over a replay port),
# counted by callgrind (exact and repeatable, unlike time on a shared
# machine): the figure that tells whether a framework change made the
# responder path cheaper or dearer.
#   bash benches/callgrind_responder.sh
# Each variant of benches/benches/responder.rs runs alone
# (TPA_RESPONDER_RUN=<variant>:<bursts>) for N1 and then N2 bursts of 32;
# the difference of the two totals divided by the extra requests is the
# count per request, free of the setup. Writes
# target/bench-results/responder-instructions.json for benches/report.py
# (table `responder-instructions`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N1=${N1:-1000}
N2=${N2:-3000}
BURST=32

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build responder

callgrind_variants TPA_RESPONDER_RUN instructions/responder request "$N1" "$N2" "$BURST" icmpv4_echo arp_request icmpv6_echo
records_write responder-instructions
