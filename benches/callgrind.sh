#!/usr/bin/env bash
# Instructions per packet of the pipeline bench's shapes, generated loop
# against the hand-written one, counted by callgrind (exact and repeatable,
# unlike time on a shared machine):
#   bash benches/callgrind.sh            # every shape
#   bash benches/callgrind.sh chain/8    # the shapes whose name starts so
# Each variant of benches/benches/pipeline.rs runs alone (TPA_PIPELINE_RUN)
# for N1 and then N2 iterations; the difference of the two totals divided by
# the packets of the extra iterations is the per-packet count, free of the
# setup (pool, clock calibration, process start) both runs share.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N1=${N1:-1000}
N2=${N2:-3000}
# Packets per iteration: the forwarding port's frames, each counted once.
BURST=32

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build pipeline

# Total instructions of one run of variant $1 for $2 iterations.
count() { callgrind_total TPA_PIPELINE_RUN "$1:$2"; }

# Instructions per packet of variant $1.
per_packet() {
    local a b
    a=$(count "$1" "$N1")
    b=$(count "$1" "$N2")
    awk -v a="$a" -v b="$b" -v n=$(((N2 - N1) * BURST)) 'BEGIN { printf "%.1f", (b - a) / n }'
}

shapes=(chain/1 chain/4 chain/8 l2fwd/hot)
# One record for benches/report.py (table `pipeline-instructions`).
record() {
    records_add "$(printf '{"group": "instructions/%s", "function": "%s", "instructions_per_iter": %s, "elements": %d, "samples": 1}' \
        "$1" "$2" "$(awk -v x="$3" -v n="$BURST" 'BEGIN { printf "%.1f", x * n }')" "$BURST")"
}
echo "instructions per packet, callgrind, ($N2 - $N1 iterations) x $BURST packets"
echo "| shape | pipeline | hand | pipeline / hand |"
echo "|---|---:|---:|---:|"
for shape in "${shapes[@]}"; do
    [[ $# -eq 0 || $shape == "$1"* ]] || continue
    p=$(per_packet "$shape/pipeline")
    h=$(per_packet "$shape/hand")
    record "$shape" pipeline "$p"
    record "$shape" hand "$h"
    awk -v s="$shape" -v p="$p" -v h="$h" 'BEGIN { printf "| %s | %.1f | %.1f | %.3f |\n", s, p, h, p / h }'
    if [[ $shape == l2fwd/* ]]; then
        # The generator, the sink and the wires, with a forwarder that only
        # moves bursts across: subtracted, what is left is the forwarder's.
        m=$(per_packet "$shape/move")
        record "$shape" move "$m"
        awk -v s="$shape" -v p="$p" -v h="$h" -v m="$m" 'BEGIN {
            printf "| %s, forwarding logic only (minus `move`, %.1f) | %.1f | %.1f | %.3f |\n", s, m, p - m, h - m, (p - m) / (h - m) }'
    fi
done

# Only a run over every shape replaces the file the report reads.
if [[ $# -eq 0 ]]; then
    records_write pipeline-instructions
fi
