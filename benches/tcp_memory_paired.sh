#!/usr/bin/env bash
# tpa's time against smoltcp's over the in-memory wire, paired: for each
# workload, both stacks' hosts in one process run alternating blocks of
# iterations, each block timed in thread CPU time
# (benches/benches/tcp_memory/paired.rs). Criterion's rounds time one
# stack for seconds, then the other, so a machine whose speed drifts
# moves their ratio; here each round's two blocks run within a few
# milliseconds of each other and the median of the rounds' ratios is
# the ratio of the stacks' costs. The same workloads, settings and checks
# as `cargo bench -p tpa-benches --bench tcp_memory`.
#   bash benches/tcp_memory_paired.sh        # ROUNDS=200, blocks of BULK=8 MiB, RR=4000, CRR=1000
#   WORKLOADS=rr ROUNDS=400 bash benches/tcp_memory_paired.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck disable=SC2206 # a list of words
WORKLOADS=(${WORKLOADS:-bulk rr crr})
ROUNDS=${ROUNDS:-200}
BULK=${BULK:-8}
RR=${RR:-4000}
CRR=${CRR:-1000}

bin=$(cargo bench -p tpa-benches --bench tcp_memory --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*tcp_memory-[^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$bin" ]] || {
    echo "$0: could not build the tcp_memory bench" >&2
    exit 1
}

echo "tpa and smoltcp in alternating blocks in one process (order swapped every round),"
echo "thread CPU time per iteration: a MiB in bulk, a transaction in rr and crr"
echo "| workload | rounds x block | tpa ns | smoltcp ns | ratio of medians | median ratio in a round | lowest, highest |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for w in "${WORKLOADS[@]}"; do
    case $w in
    bulk) block=$BULK ;;
    rr) block=$RR ;;
    crr) block=$CRR ;;
    *)
        echo "$0: no workload $w (bulk, rr, crr)" >&2
        exit 1
        ;;
    esac
    TPA_TCP_PAIRED="$w:$ROUNDS:$block" "$bin" 2>/dev/null
done
