#!/usr/bin/env bash
# tpa-redis-proxy against nutcracker (twemproxy 0.5.0, Debian's) and redis
# direct, redis-benchmark through each, same topology, same run, as root:
#   sudo bash benches/redis_proxy.sh
#
# BACKENDS (4) redis-servers in a network namespace, redis-benchmark in the
# same namespace; the proxy on tpa's stack over a TAP device there
# (variant `tpa`), or on the kernel's sockets in a second namespace across
# a veth pair (`kernel`: tpa-redis-proxy; `nutcracker`): the topology is
# described in benches/redis_proxy_lib.sh. Every proxy reads the same
# nutcracker YAML pool (fnv1a_64, ketama, one connection per backend).
# `direct` runs redis-benchmark against one of the redis-servers.
#
# Cores: the proxy is pinned to core 1, the redis-servers and
# redis-benchmark to core 0 (`taskset`), so the proxy's core is its own as
# far as the benchmark goes; the proxy's CPU% over a run says whether that
# core was saturated. The kernel-socket proxies block in epoll_wait when
# they have nothing to do; tpa's runs with TPA_ARGS (its --idle policy,
# none given: its default).
#
# Tests: SET and GET, 50 clients, keys drawn from a million (`-r 1000000`,
# so they spread over the backends), one request in flight per client
# (REQUESTS requests, 100000) and 16 (`-P 16`, REQUESTS_P16, 500000);
# redis-benchmark's `-e` makes an error reply fail the run. Each round
# starts every variant in turn (the order rotating from round to round) and
# runs every test against it; the figures are medians over ROUNDS (5):
# requests/s, p50 and p99 latency (redis-benchmark's own, ms), the proxy's
# CPU time per request (µs: every thread's time on a CPU, from
# /proc/PID/task/*/schedstat, before and after the run) and the share of it
# spent in the kernel (system time, /proc/PID/stat), its time on a CPU
# and its time runnable but waiting for one (summed over its threads),
# each as a percentage of the run's wall time (on CPU near 100: its core is saturated; on CPU plus
# waiting near 100: it had work all along and shared its core with other
# processes), and how idle each core was; then the ratios of
# tpa-redis-proxy to nutcracker. Every round's figures go to standard error.
#
# STACK picks tpa-redis-proxy's stack: tpa (on TAP; the default when the
# binary has tpa's --port flag), kernel (the default otherwise), both, or
# ports: tpa's stack on every port it runs on here, each a variant of its
# own (`tpa` on the TAP, `af_packet` and `dpdk`, DPDK's net_af_packet vdev,
# on a veth, `af_xdp` on a veth beside the kernel: benches/redis_proxy_lib.sh;
# the binary is then built with the `dpdk` feature, which needs
# libdpdk-dev). VARIANTS overrides the whole list (say "af_xdp nutcracker";
# "af_xdp af_xdp+spin" adds tpa on AF_XDP with `--idle spin`).
# THREADS (1) is redis-benchmark's --threads. NICE (unset) runs every
# process of the benchmark at that nice value (benches/redis_proxy_lib.sh).
# TPA_ARGS adds flags to the tpa variant (say "--idle spin").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "redis_proxy.sh: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root: it creates network namespaces, a TAP and a veth pair"
for c in redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools nutcracker:nutcracker taskset:util-linux; do
    command -v "${c%%:*}" >/dev/null || die "${c%%:*} not found (apt-get install ${c#*:})"
done
(($(nproc) >= 2)) || die "needs 2 cores: the proxy on one, the load and the backends on the other"
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/redis_proxy_lib.sh
. benches/redis_proxy_lib.sh

rounds="${ROUNDS:-5}"
backends="${BACKENDS:-4}"
requests="${REQUESTS:-100000}"
requests_p16="${REQUESTS_P16:-500000}"

stack="${STACK:-}"
case ${stack:-default} in
default | tpa | kernel) variants="$stack nutcracker direct" ;;
both) variants="tpa kernel nutcracker direct" ;;
ports) variants="tpa af_packet af_xdp dpdk nutcracker direct" ;;
*) die "STACK takes tpa, kernel, both or ports, not $stack" ;;
esac
variants="${VARIANTS:-$variants}"
features=()
if [[ " $variants " =~ \ dpdk[+\ ] ]]; then
    pkg-config --atleast-version=22.11 libdpdk || die "the dpdk variant needs libdpdk-dev >= 22.11"
    features=(--features dpdk)
fi
echo "==> cargo build --release -p tpa-redis-proxy ${features[*]}" >&2
cargo build --release -q -p tpa-redis-proxy "${features[@]}"
bin="${CARGO_TARGET_DIR:-target}/release/tpa-redis-proxy"
if [[ -z $stack ]]; then
    if rp_tpa_available "$bin"; then stack=tpa; else stack=kernel; fi
    variants="${VARIANTS:-$stack nutcracker direct}"
fi
if [[ " $variants " =~ \ (tpa|af_packet|af_xdp|dpdk)[+\ ] ]] && ! rp_tpa_available "$bin"; then
    die "this tpa-redis-proxy has no --port flag: it runs on the kernel's sockets only (STACK=kernel)"
fi
read -ra variant_list <<<"$variants"

trap rp_cleanup EXIT
rp_setup "$backends"
echo "==> $backends redis-servers in $rp_nb on core 0; variants: $variants; load average: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

tests=(set:1 get:1 set:16 get:16)
declare -A results
for round in $(seq "$rounds"); do
    first=$(((round - 1) % ${#variant_list[@]}))
    order=("${variant_list[@]:first}" "${variant_list[@]:0:first}")
    for v in "${order[@]}"; do
        rp_start "$v" "$bin"
        for t in "${tests[@]}"; do
            p=${t#*:}
            n=$requests
            ((p > 1)) && n=$requests_p16
            line=$(rp_measure "${t%:*}" "$p" "$n")
            echo "round $round $v ${t%:*} -P $p: $line" >&2
            results[$v,$t]+="$line;"
        done
        rp_stop_proxy
    done
done
echo "==> load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

# median COLUMN "a b c;a b c;…": the median of that column over the rounds
# ("-" when the column has none).
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF && $c != "-" { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

label() {
    if [[ $1 == *+* ]]; then
        echo "$(label "${1%%+*}" | sed 's/)$//'), --idle ${1#*+})"
        return
    fi
    case $1 in
    tpa) echo "tpa-redis-proxy (tpa, TAP)" ;;
    af_packet) echo "tpa-redis-proxy (tpa, AF_PACKET, veth)" ;;
    af_xdp) echo "tpa-redis-proxy (tpa, AF_XDP, veth)" ;;
    dpdk) echo "tpa-redis-proxy (tpa, DPDK net_af_packet, veth)" ;;
    kernel) echo "tpa-redis-proxy (kernel sockets)" ;;
    nutcracker) echo "nutcracker 0.5.0" ;;
    direct) echo "redis direct" ;;
    esac
}

echo
echo "redis-benchmark, 50 clients, -r 1000000, $backends backends, medians of $rounds rounds (proxy on core 1; load and backends on core 0${NICE:+; nice $NICE}${TPA_ARGS:+; tpa: $TPA_ARGS}):"
echo "| test | variant | requests/s | p50 ms | p99 ms | proxy CPU µs/request | of which system % | proxy on CPU % | proxy waiting % | core 1 idle % | core 0 idle % |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for t in "${tests[@]}"; do
    name="${t%:*}"
    name="${name^^}"
    [[ ${t#*:} == 1 ]] || name="$name -P ${t#*:}"
    for v in "${variant_list[@]}"; do
        row=()
        for c in 1 2 3 4 5 6 7 8 9; do
            row+=("$(median "$c" "${results[$v,$t]}")")
        done
        awk -v t="$name" -v v="$(label "$v")" -v r="${row[0]}" -v p50="${row[1]}" -v p99="${row[2]}" \
            -v cpu="${row[3]}" -v pct="${row[4]}" -v wait="${row[5]}" -v idle1="${row[6]}" -v idle0="${row[7]}" \
            -v sys="${row[8]}" 'BEGIN {
                if (cpu == "-") printf "| %s | %s | %.0f | %.3f | %.3f | - | - | - | - | %.0f | %.0f |\n", t, v, r, p50, p99, idle1, idle0
                else printf "| %s | %s | %.0f | %.3f | %.3f | %.2f | %.0f | %.0f | %.0f | %.0f | %.0f |\n", t, v, r, p50, p99, cpu, sys, pct, wait, idle1, idle0
            }'
    done
done

if [[ " $variants " == *" nutcracker "* ]]; then
    for v in "${variant_list[@]}"; do
        [[ $v == nutcracker || $v == direct ]] && continue
        echo
        echo "$(label "$v") / nutcracker, ratios of the medians above (goal: throughput >= 1.5, CPU per request <= 0.33, p99 < 1):"
        echo "| test | throughput | CPU per request | p99 |"
        echo "|---|---:|---:|---:|"
        for t in "${tests[@]}"; do
            name="${t%:*}"
            name="${name^^}"
            [[ ${t#*:} == 1 ]] || name="$name -P ${t#*:}"
            awk -v t="$name" -v r="$(median 1 "${results[$v,$t]}")" -v rn="$(median 1 "${results[nutcracker,$t]}")" \
                -v p="$(median 3 "${results[$v,$t]}")" -v pn="$(median 3 "${results[nutcracker,$t]}")" \
                -v c="$(median 4 "${results[$v,$t]}")" -v cn="$(median 4 "${results[nutcracker,$t]}")" \
                'BEGIN { printf "| %s | %.2f | %.2f | %.2f |\n", t, r / rn, c / cn, p / pn }'
        done
    done
fi
