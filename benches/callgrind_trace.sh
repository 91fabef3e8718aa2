#!/usr/bin/env bash
# The socket trace's cost: instructions per rr transaction (and per byte
# of bulk) between two tpa stacks over MemoryWire
# (benches/benches/tcp_memory.rs), every connection traced (TPA_TRACE=1)
# or not (TPA_TRACE=0), counted by callgrind. Each count is the difference
# of an N2 and an N1 run over the extra transactions (free of the setup).
#   bash benches/callgrind_trace.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=benches/callgrind_tcp_memory_lib.sh
. benches/callgrind_tcp_memory_lib.sh

echo "| workload | trace off | trace on | on / off |"
echo "|---|---:|---:|---:|"
for w in rr bulk; do
    if [[ $w == rr ]]; then
        var=TPA_TCP_RR_RUN n1=$RR_N1 n2=$RR_N2 unit=1
    else
        var=TPA_TCP_BULK_RUN n1=$BULK_N1 n2=$BULK_N2 unit=$((1 << 20))
    fi
    declare -A per=()
    for t in 0 1; do
        export TPA_TRACE=$t
        a=$(callgrind_total "$var" "tpa:$n1")
        b=$(callgrind_total "$var" "tpa:$n2")
        per[$t]=$(awk -v a="$a" -v b="$b" -v n=$(((n2 - n1) * unit)) 'BEGIN { x = (b - a) / n; printf "%.*f", (x < 100 ? 3 : 1), x }')
    done
    ratio=$(awk -v on="${per[1]}" -v off="${per[0]}" 'BEGIN { printf "%.3f", on / off }')
    echo "| $w (per $([[ $w == rr ]] && echo transaction || echo byte)) | ${per[0]} | ${per[1]} | $ratio |"
done
