#!/usr/bin/env bash
# The TCP simulation over many seeds (issue 10, proof 1): runs
# tests/tests/tcp_sim.rs's `batch` over seeds FIRST..FIRST+SEEDS in parallel
# batches and prints how many passed, and every failing seed with what broke
# and its replay command.
#
#   bash tests/tcp_sim_long.sh [SEEDS (100000)] [FIRST (0)]
#
# Environment: JOBS (parallel batches, default nproc), BATCH (seeds per
# batch, default 1000), PROFILE=release (default: optimized, with debug
# assertions and overflow checks kept on) or PROFILE=test (the CI build).
# A seed's scenario is the same in both profiles: replay a failure with the
# command printed (the test profile).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seeds=${1:-100000}
first=${2:-0}
jobs=${JOBS:-$(nproc)}
batch=${BATCH:-1000}
profile=${PROFILE:-release}

build=(cargo test -p tpa-tests --test tcp_sim --no-run --message-format=json)
case $profile in
release)
    export CARGO_PROFILE_RELEASE_DEBUG_ASSERTIONS=true CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS=true
    build+=(--release)
    ;;
test) ;;
*)
    echo "tcp_sim_long.sh: PROFILE is release or test, not $profile" >&2
    exit 2
    ;;
esac
bin=$("${build[@]}" | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m["target"]["name"] == "tcp_sim":
        print(m["executable"])
')
[[ -x $bin ]] || { echo "tcp_sim_long.sh: no tcp_sim test binary built" >&2; exit 1; }

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
started=$(date +%s)
for ((start = first; start < first + seeds; start += batch)); do
    count=$((first + seeds - start < batch ? first + seeds - start : batch))
    echo "$start $count"
done | xargs -P "$jobs" -L 1 sh -c '
    TPA_SIM_FIRST=$3 TPA_SIM_COUNT=$4 RUST_BACKTRACE=0 "$1" batch --nocapture --test-threads 1 \
        >"$2/$3.log" 2>&1 || true' sh "$bin" "$logs"

passed=0
failed=0
healed=0
runs=0
for log in "$logs"/*.log; do
    # The summary follows the harness's "test batch ... " on its line.
    line=$(grep -oE 'seeds [0-9]+\.\.[0-9]+: passed [0-9]+ failed [0-9]+' "$log" || true)
    if [[ -z $line ]]; then
        echo "tcp_sim_long.sh: batch $(basename "$log" .log) printed no summary:" >&2
        tail -20 "$log" >&2
        exit 1
    fi
    healed=$((healed + $(grep -oE 'neighbor entries given up [0-9]+' "$log" | awk '{s += $NF} END {print s + 0}')))
    runs=$((runs + 1))
    passed=$((passed + $(sed -E 's/.*passed ([0-9]+).*/\1/' <<<"$line")))
    failed=$((failed + $(sed -E 's/.*failed ([0-9]+).*/\1/' <<<"$line")))
done
# A batch's first line follows the harness's "test batch ... ".
grep -h -A1 -oE 'FAILED seed [0-9]+: .*' "$logs"/*.log || true
echo "tcp_sim: seeds $first..$((first + seeds)) ($profile profile, $runs batches, $jobs jobs, $(($(date +%s) - started)) s): passed $passed, failed $failed; neighbor entries given up after unanswered probes $healed"
grep -hoE 'FAILED seed [0-9]+' "$logs"/*.log | awk '{print $3}' | sort -n | tr '\n' ' ' | sed 's/^./failing seeds: &/;s/ $/\n/' || true
[[ $failed -eq 0 ]]
