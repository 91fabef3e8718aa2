#!/usr/bin/env bash
# The stats' cost: instructions per rr transaction (and per byte of bulk)
# between two tpa stacks over MemoryWire (benches/benches/tcp_memory.rs),
# both hosts publishing their stats as tperf's workers do (TPA_STATS=1: a
# clock read and the loop meter per iteration, a snapshot every
# TPA_STATS_INTERVAL_MS of real time) or not (TPA_STATS=0), counted by
# callgrind. Each count is the difference of an N2 and an N1 run over the
# extra transactions (free of the setup). Under valgrind the program runs
# some 50 times slower, so a snapshot falls due about 50 times as often
# per transaction as at full speed: the figure for the snapshots is an
# upper bound.
#   bash benches/callgrind_stats.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RR_N1=${RR_N1:-1000}
RR_N2=${RR_N2:-3000}
BULK_N1=${BULK_N1:-4}   # MiB
BULK_N2=${BULK_N2:-12}

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build tcp_memory

TPA_RUN_DIR=$(mktemp -d)
export TPA_RUN_DIR TPA_TRACE=0 TPA_ID=callgrind-stats
trap 'rm -rf "$TPA_RUN_DIR"' EXIT

# Three runs: stats off; on with one snapshot (an interval of a minute:
# the per-iteration cost alone); on with snapshots every 100 ms (real time).
echo "| workload | stats off | on, meter only | on, 100 ms snapshots | meter / off | 100 ms / off |"
echo "|---|---:|---:|---:|---:|---:|"
for w in rr bulk; do
    if [[ $w == rr ]]; then
        var=TPA_TCP_RR_RUN n1=$RR_N1 n2=$RR_N2 unit=1
    else
        var=TPA_TCP_BULK_RUN n1=$BULK_N1 n2=$BULK_N2 unit=$((1 << 20))
    fi
    declare -A per=()
    for t in off:0:100 meter:1:60000 snap:1:100; do
        IFS=: read -r name on interval <<<"$t"
        export TPA_STATS=$on TPA_STATS_INTERVAL_MS=$interval
        a=$(callgrind_total "$var" "tpa:$n1")
        b=$(callgrind_total "$var" "tpa:$n2")
        per[$name]=$(awk -v a="$a" -v b="$b" -v n=$(((n2 - n1) * unit)) 'BEGIN { x = (b - a) / n; printf "%.*f", (x < 100 ? 3 : 1), x }')
    done
    r1=$(awk -v on="${per[meter]}" -v off="${per[off]}" 'BEGIN { printf "%.3f", on / off }')
    r2=$(awk -v on="${per[snap]}" -v off="${per[off]}" 'BEGIN { printf "%.3f", on / off }')
    echo "| $w (per $([[ $w == rr ]] && echo transaction || echo byte)) | ${per[off]} | ${per[meter]} | ${per[snap]} | $r1 | $r2 |"
done
