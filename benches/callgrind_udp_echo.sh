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

count() { callgrind_total TPA_UDP_ECHO_RUN "$1:$2"; }

records=()
echo "instructions per datagram, callgrind, ($N2 - $N1 bursts) x $BURST datagrams"
echo "| variant | instructions |"
echo "|---|---:|"
for v in pipeline hand minimal; do
    a=$(count "$v" "$N1")
    b=$(count "$v" "$N2")
    per=$(awk -v a="$a" -v b="$b" -v n=$(((N2 - N1) * BURST)) 'BEGIN { printf "%.1f", (b - a) / n }')
    records+=("{\"group\": \"instructions/udp_echo\", \"function\": \"$v\", \"instructions_per_iter\": $(awk -v x="$per" -v n="$BURST" 'BEGIN { printf "%.1f", x * n }'), \"elements\": $BURST, \"samples\": 1}")
    echo "| $v | $per |"
done

dir="${CARGO_TARGET_DIR:-target}/bench-results"
mkdir -p "$dir"
{
    echo "["
    for i in "${!records[@]}"; do
        sep=","
        ((i == ${#records[@]} - 1)) && sep=""
        echo "  ${records[$i]}$sep"
    done
    echo "]"
} >"$dir/udp-echo-instructions.json"
echo "(written to $dir/udp-echo-instructions.json)"
