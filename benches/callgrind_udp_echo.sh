#!/usr/bin/env bash
# Instructions per echoed datagram of the UDP echo bench
# (benches/benches/udp_echo.rs): the generated pipeline with UdpInput, the
# socket table, the echo App and egress (`pipeline`), the same logic
# written by hand around the same building blocks (`hand`), and the
# minimal echo that rewrites each frame in place (`minimal`), counted by
# callgrind (exact and repeatable, unlike time on a shared machine).
#   bash benches/callgrind_udp_echo.sh
# Each variant runs alone (TPA_UDP_ECHO_RUN=<variant>:<bursts>) for N1 and
# then N2 bursts of 32; the difference of the two totals divided by the
# extra datagrams is the count per datagram, free of the setup. Writes
# target/bench-results/udp-echo-instructions.json for benches/report.py
# (table `udp-echo-instructions`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N1=${N1:-1000}
N2=${N2:-3000}
BURST=32

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build udp_echo

callgrind_variants TPA_UDP_ECHO_RUN instructions/udp_echo datagram "$N1" "$N2" "$BURST" pipeline hand minimal
records_write udp-echo-instructions
