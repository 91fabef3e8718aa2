#!/usr/bin/env bash
# What tpa-redis-proxy's stats cost its datapath: redis-benchmark GET with
# -P 16 through the proxy on tpa's stack (TAP), its stats on (the default:
# each worker meters its loop and publishes a snapshot every 100 ms) and
# off (--no-stats), interleaved, as root:
#   sudo bash benches/redis_proxy_stats.sh
#
# The topology, cores and measurement are benches/redis_proxy.sh's
# (benches/redis_proxy_lib.sh): BACKENDS (4) redis-servers and
# redis-benchmark on core 0, the proxy on core 1, 50 clients, keys drawn
# from a million, REQUESTS (500000) GETs a run. Each of ROUNDS (9) rounds
# starts the proxy with its stats on, then off (the order swapped every
# other round), one run each; the figures are medians over the rounds:
# requests/s, p50 and p99 (ms, redis-benchmark's), the proxy's CPU time
# per request (µs, /proc/PID/task/*/schedstat), then the ratios on / off.
# Every round's figures go to standard error. TPA_ARGS adds flags to both
# (say "--idle spin").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "redis_proxy_stats.sh: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root: it creates network namespaces and a TAP"
for c in redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools taskset:util-linux; do
    command -v "${c%%:*}" >/dev/null || die "${c%%:*} not found (apt-get install ${c#*:})"
done
(($(nproc) >= 2)) || die "needs 2 cores: the proxy on one, the load and the backends on the other"
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/redis_proxy_lib.sh
. benches/redis_proxy_lib.sh

rounds="${ROUNDS:-9}"
requests="${REQUESTS:-500000}"
base_args="${TPA_ARGS:-}"

echo "==> cargo build --release -p tpa-redis-proxy" >&2
cargo build --release -q -p tpa-redis-proxy
bin="${CARGO_TARGET_DIR:-target}/release/tpa-redis-proxy"
rp_tpa_available "$bin" || die "$bin has no --port flag"

trap rp_cleanup EXIT
rp_setup "${BACKENDS:-4}"
# The instances' files go with the run.
export TPA_RUN_DIR="$rp_dir/run"
echo "==> load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

declare -A results
for round in $(seq "$rounds"); do
    order=(on off)
    ((round % 2)) || order=(off on)
    for v in "${order[@]}"; do
        TPA_ARGS="$base_args"
        [[ $v == off ]] && TPA_ARGS="$base_args --no-stats"
        TPA_ARGS="$TPA_ARGS" rp_start tpa "$bin"
        if [[ $v == on ]]; then
            [[ -n $(find "$TPA_RUN_DIR" -name 'worker-0.stats' 2>/dev/null) ]] || die "stats on, but no stats file under $TPA_RUN_DIR"
        fi
        line=$(rp_measure get 16 "$requests")
        echo "round $round stats $v: $line" >&2
        results[$v]+="$line;"
        rp_stop_proxy
    done
done
echo "==> load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# median COLUMN "a b c;a b c;…": the median of that column over the rounds.
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
echo "redis-benchmark GET -P 16, 50 clients, -r 1000000, $requests requests a run, medians of $rounds rounds (proxy on core 1, load and backends on core 0${base_args:+; $base_args}):"
echo "| stats | requests/s | p50 ms | p99 ms | proxy CPU µs/request |"
echo "|---|---:|---:|---:|---:|"
for v in on off; do
    awk -v v="$v" -v r="$(median 1 "${results[$v]}")" -v p50="$(median 2 "${results[$v]}")" \
        -v p99="$(median 3 "${results[$v]}")" -v cpu="$(median 4 "${results[$v]}")" \
        'BEGIN { printf "| %s | %.0f | %.3f | %.3f | %.3f |\n", v, r, p50, p99, cpu }'
done
awk -v r1="$(median 1 "${results[on]}")" -v r0="$(median 1 "${results[off]}")" \
    -v c1="$(median 4 "${results[on]}")" -v c0="$(median 4 "${results[off]}")" \
    -v p1="$(median 3 "${results[on]}")" -v p0="$(median 3 "${results[off]}")" \
    'BEGIN { printf "| on / off | %.3f | | %.3f | %.3f |\n", r1 / r0, p1 / p0, c1 / c0 }'
