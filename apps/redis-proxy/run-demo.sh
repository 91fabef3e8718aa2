#!/usr/bin/env bash
# tpa-redis-proxy in one command, as root on Debian 12:
#   sudo bash apps/redis-proxy/run-demo.sh
#
# Starts 4 redis-servers in a network namespace and tpa-redis-proxy in
# front of them (on tpa's stack over a TAP device when the binary has it,
# else on the kernel's sockets across a veth pair: the topology of
# benches/redis_proxy_lib.sh), reading a nutcracker YAML pool. Through the
# proxy, an MSET of 1000 keys (split over the backends) and an MGET that
# must read every value back; the keys per backend must be where
# nutcracker (twemproxy, started the same way) puts them. Then
# redis-benchmark SET and GET (50 clients, -r 1000000, with and without
# -P 16) through tpa-redis-proxy, through nutcracker and against one
# redis-server directly, one run each, and a few lines comparing them. For
# figures to quote, use benches/redis_proxy.sh (rounds, medians, CPU).
# Removes everything on exit.
#
# Needs Rust (stable >= 1.91, via rustup) and 2 cores; installs
# redis-server, redis-tools, nutcracker and iproute2 when missing.
# REQUESTS (50000) and REQUESTS_P16 (200000) set the run lengths; QUICK=1
# is the short run tests/run.sh makes (a debug build, few requests: it
# checks that this script works, its figures mean nothing). DEMO_BUILD
# replaces cargo build's `-p tpa-redis-proxy`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

die() {
    echo "run-demo.sh: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root (sudo $0): it creates network namespaces, a TAP and a veth pair"
(($(nproc) >= 2)) || die "needs 2 cores: the proxy on one, the load and the backends on the other"
need=()
for spec in ip:iproute2 redis-server:redis-server redis-cli:redis-tools redis-benchmark:redis-tools nutcracker:nutcracker; do
    command -v "${spec%%:*}" >/dev/null || need+=("${spec#*:}")
done
if ((${#need[@]})); then
    echo "==> installing ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
fi
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (stable >= 1.91) with rustup"
# shellcheck source=benches/redis_proxy_lib.sh
. benches/redis_proxy_lib.sh

quick="${QUICK:-0}"
requests="${REQUESTS:-50000}"
requests_p16="${REQUESTS_P16:-200000}"
profile=release
if [[ $quick == 1 ]]; then
    requests="${REQUESTS:-2000}" requests_p16="${REQUESTS_P16:-8000}" profile=debug
fi

# DEMO_BUILD: what cargo builds (tests/run.sh names the features its
# `cargo test --workspace --all-features` built with, so nothing rebuilds).
read -ra build <<<"${DEMO_BUILD:--p tpa-redis-proxy}"
echo "==> building tpa-redis-proxy ($profile)"
if [[ $profile == release ]]; then
    cargo build --release -q "${build[@]}"
else
    cargo build -q "${build[@]}"
fi
target_dir="$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
bin="$target_dir/$profile/tpa-redis-proxy"
if rp_tpa_available "$bin"; then
    stack=tpa how="on tpa's stack over the TAP rpt0 (10.80.0.2)"
else
    stack=kernel how="on the kernel's sockets across a veth (10.81.0.2)"
fi

trap rp_cleanup EXIT
rp_setup 4
echo "==> 4 redis-servers in namespace $rp_nb (10.80.0.1 and 10.81.0.1, ports 6380-6383), on core 0"

# backend_keys: the number of keys in each backend, space-separated.
backend_keys() {
    local i counts=()
    for ((i = 0; i < 4; i++)); do
        counts+=("$(ip netns exec "$rp_nb" redis-cli -p $((rp_first_backend + i)) dbsize)")
    done
    echo "${counts[*]}"
}
flush_backends() {
    local i
    for ((i = 0; i < 4; i++)); do
        ip netns exec "$rp_nb" redis-cli -p $((rp_first_backend + i)) flushall >/dev/null
    done
}
# through_proxy ARGS…: redis-cli against the proxy started last.
through_proxy() {
    ip netns exec "$rp_nb" redis-cli -h "$rp_host" -p "$rp_target_port" "$@"
}

mset=(mset) mget=(mget) expected=""
for i in $(seq 1000); do
    mset+=("key:$i" "value-$i")
    mget+=("key:$i")
    expected+="value-$i"$'\n'
done
declare -A placement
for v in "$stack" nutcracker; do
    flush_backends
    rp_start "$v" "$bin"
    [[ $(through_proxy "${mset[@]}") == OK ]] || die "MSET of 1000 keys through $v did not answer OK"
    [[ $(through_proxy "${mget[@]}")$'\n' == "$expected" ]] || die "MGET of 1000 keys through $v did not read every value back"
    placement[$v]=$(backend_keys)
    rp_stop_proxy
done
echo "==> tpa-redis-proxy $how: MSET and MGET of 1000 keys: every value read back"
echo "    keys per backend: ${placement[$stack]} (nutcracker: ${placement[nutcracker]})"
[[ ${placement[$stack]} == "${placement[nutcracker]}" ]] || die "the keys are not where nutcracker puts them"
for c in ${placement[$stack]}; do
    ((c > 0)) || die "a backend got no key: ${placement[$stack]}"
done

echo "==> redis-benchmark -c 50 -r 1000000 ($requests requests; $requests_p16 with -P 16), one run each, proxy on core 1:"
tests=(set:1 get:1 set:16 get:16)
declare -A figures
for v in "$stack" nutcracker direct; do
    rp_start "$v" "$bin"
    for t in "${tests[@]}"; do
        n=$requests
        ((${t#*:} > 1)) && n=$requests_p16
        figures[$v,$t]=$(rp_measure "${t%:*}" "${t#*:}" "$n")
    done
    rp_stop_proxy
done

# One line per test: requests/s, p99 ms and the proxy's CPU µs per request
# for tpa-redis-proxy, nutcracker and direct, then tpa-redis-proxy's
# throughput and CPU per request over nutcracker's.
row='    %-9s | %8s %7s %7s | %8s %7s %7s | %8s %7s | %6s %6s\n'
printf '    %-9s | %-24s | %-24s | %-16s | %s\n' "" "tpa-redis-proxy ($stack)" "nutcracker 0.5.0" "redis direct" "/ nutcracker"
# shellcheck disable=SC2059
printf "$row" test req/s "p99 ms" "CPU us" req/s "p99 ms" "CPU us" req/s "p99 ms" req/s "CPU"
for t in "${tests[@]}"; do
    name="${t%:*}"
    name="${name^^}"
    [[ ${t#*:} == 1 ]] || name="$name -P16"
    read -r r _ p c _ <<<"${figures[$stack,$t]}"
    read -r rn _ pn cn _ <<<"${figures[nutcracker,$t]}"
    read -r rd _ pd _ <<<"${figures[direct,$t]}"
    # shellcheck disable=SC2059
    printf "$row" "$name" "${r%.*}" "$p" "$c" "${rn%.*}" "$pn" "$cn" "${rd%.*}" "$pd" \
        "$(awk -v a="$r" -v b="$rn" 'BEGIN { printf "%.2f", a / b }')" \
        "$(awk -v a="$c" -v b="$cn" 'BEGIN { printf "%.2f", a / b }')"
done
if [[ $quick == 1 ]]; then
    echo "(QUICK=1: a debug build and short runs; the figures only show that the script works)"
fi
