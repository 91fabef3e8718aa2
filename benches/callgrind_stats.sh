#!/usr/bin/env bash
# The stats' cost: instructions per rr transaction (and per byte of bulk)
# between two tpa stacks over MemoryWire (benches/benches/tcp_memory.rs),
# both hosts publishing their stats as tperf's workers do (TPA_STATS=1:
# the loop meter fed each iteration's start, which the pipeline reads
# anyway; a snapshot every TPA_STATS_INTERVAL_MS of the hosts' virtual
# time) or not (TPA_STATS=0), counted by callgrind. Each count is the
# difference of an N2 and an N1 run over the extra transactions (free of
# the setup). The snapshot run takes one every 10 ms of virtual time (rr:
# 20 us a transaction, so one every 500 transactions on each host, where
# tperf at full speed takes one every 100 ms of real time, some 90000
# transactions): its share is an upper bound.
#   bash benches/callgrind_stats.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=benches/callgrind_tcp_memory_lib.sh
. benches/callgrind_tcp_memory_lib.sh
export TPA_TRACE=0 TPA_ID=callgrind-stats

# Three runs: stats off; on with one snapshot (an interval of a minute:
# the per-iteration cost alone); on with snapshots every 10 ms (virtual).
echo "| workload | stats off | on, meter only | on, 10 ms snapshots | meter / off | 10 ms / off |"
echo "|---|---:|---:|---:|---:|---:|"
for w in rr bulk; do
    tcp_memory_workload "$w"
    declare -A per=()
    for t in off:0:100 meter:1:60000 snap:1:10; do
        IFS=: read -r name on interval <<<"$t"
        export TPA_STATS=$on TPA_STATS_INTERVAL_MS=$interval
        per[$name]=$(tcp_memory_per_unit)
    done
    r1=$(awk -v on="${per[meter]}" -v off="${per[off]}" 'BEGIN { printf "%.3f", on / off }')
    r2=$(awk -v on="${per[snap]}" -v off="${per[off]}" 'BEGIN { printf "%.3f", on / off }')
    echo "| $w (per $([[ $w == rr ]] && echo transaction || echo byte)) | ${per[off]} | ${per[meter]} | ${per[snap]} | $r1 | $r2 |"
done
