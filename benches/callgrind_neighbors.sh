#!/usr/bin/env bash
# Instructions per neighbor lookup (a hit), tpa's neighbor cache against
# the linear table it replaced, counted by callgrind (exact and repeatable,
# unlike time on a shared machine):
#   bash benches/callgrind_neighbors.sh
# Each variant of benches/benches/neighbors.rs runs alone
# (TPA_NEIGHBORS_RUN=<variant>:<n>:<lookups>) for N1 and then N2 lookups;
# the difference of the two totals divided by N2 - N1 is the count per
# lookup (the bench loop's few instructions included), free of the setup.
# Writes target/bench-results/neighbors-instructions.json for
# benches/report.py (table `neighbors-instructions`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build neighbors

count() { callgrind_total TPA_NEIGHBORS_RUN "$1"; }

echo "| neighbors | cache | linear | linear / cache |"
echo "|---:|---:|---:|---:|"
for n in 16 1024 65536; do
    # The linear scan of 65536 costs ~200k instructions a lookup: fewer.
    if ((n == 65536)); then l1=100 l2=300; else l1=100000 l2=300000; fi
    c=$(awk -v a="$(count "cache:$n:100000")" -v b="$(count "cache:$n:300000")" 'BEGIN { printf "%.1f", (b - a) / 200000 }')
    l=$(awk -v a="$(count "linear:$n:$l1")" -v b="$(count "linear:$n:$l2")" -v k=$((l2 - l1)) 'BEGIN { printf "%.1f", (b - a) / k }')
    records_add "{\"group\": \"instructions/neighbors/$n\", \"function\": \"cache\", \"instructions_per_iter\": $c, \"elements\": 1, \"samples\": 1}"
    records_add "{\"group\": \"instructions/neighbors/$n\", \"function\": \"linear\", \"instructions_per_iter\": $l, \"elements\": 1, \"samples\": 1}"
    awk -v n="$n" -v c="$c" -v l="$l" 'BEGIN { printf "| %d | %.1f | %.1f | %.1f |\n", n, c, l, l / c }'
done

records_write neighbors-instructions
