#!/usr/bin/env bash
# Instructions per request of tpa-redis-proxy's engine alone (sans IO: no
# socket, no stack), counted by callgrind: GET and SET, single and in
# pipelines of 16, one client over four servers played in memory
# (apps/redis-proxy/benches/engine.rs). Only the engine's calls are counted
# (--toggle-collect on each Engine method the driver calls, none of which
# calls another: a nested match would toggle collection off), not the
# driver's answering and checking.
#   bash benches/callgrind_proxy_engine.sh
# Each variant runs for N1 and then N2 batches after the same warm-up; the
# difference of the two totals divided by the extra requests is the count
# per request. Writes target/bench-results/proxy-engine-instructions.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

N1=${N1:-500}
N2=${N2:-1500}

# shellcheck source=benches/records_lib.sh
. benches/records_lib.sh

command -v valgrind >/dev/null || {
    echo "$0: valgrind not found (apt-get install valgrind)" >&2
    exit 1
}
bin=$(cargo bench -p tpa-redis-proxy --bench engine --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*engine-[^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$bin" ]] || {
    echo "$0: could not build the engine bench" >&2
    exit 1
}

toggles=()
for f in client_data client_output client_wrote server_output server_wrote server_data poll_action; do
    toggles+=("--toggle-collect=tpa_redis_proxy::proxy::engine::Engine::$f")
done

total() {
    local out
    out=$(TPA_PROXY_ENGINE_RUN=$1 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
        "${toggles[@]}" "$bin" 2>&1) || {
        echo "$out" >&2
        echo "$0: $1 failed under valgrind" >&2
        exit 1
    }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out"
}

echo "engine instructions per request, callgrind, ($N2 - $N1) batches"
echo "| variant | instructions |"
echo "|---|---:|"
for v in get1 set1 get16 set16; do
    pipeline=${v//[a-z]/}
    a=$(total "$v:$N1")
    b=$(total "$v:$N2")
    n=$(((N2 - N1) * pipeline))
    per=$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.1f", (b - a) / n }')
    records_add "$(printf '{"group": "instructions/proxy_engine", "function": "%s", "instructions_per_iter": %s, "elements": 1, "samples": 1}' "$v" "$per")"
    echo "| $v | $per |"
done
records_write proxy-engine-instructions
