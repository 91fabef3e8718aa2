#!/usr/bin/env bash
# Frames through the link per request for each proxy, as root:
#   sudo bash benches/redis_proxy_frames.sh [target/release/tpa-redis-proxy]
#
# The topology of benches/redis_proxy.sh (benches/redis_proxy_lib.sh): the
# load and four redis-servers in one namespace, the proxy on tpa's stack
# over a TAP there (`tpa`) or on the kernel's sockets across a veth
# (`nutcracker`). For GET with and without -P 16 it reads the link's
# packet counters on the load's side before and after redis-benchmark and
# prints the frames that left the proxy and that reached it, per request.
# Every request and every reply crosses that link, so these frames are the
# kernel work a port that goes through the kernel (TAP, veth) pays per
# request whatever the proxy does in user space. VARIANTS ("tpa
# nutcracker") picks the proxies; the binary is built when not given.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
[[ $(id -u) -eq 0 ]] || {
    echo "redis_proxy_frames.sh: run as root: it creates network namespaces and a TAP" >&2
    exit 1
}
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/redis_proxy_lib.sh
. benches/redis_proxy_lib.sh

bin=${1:-}
if [[ -z $bin ]]; then
    cargo build --release -q -p tpa-redis-proxy
    bin="${CARGO_TARGET_DIR:-target}/release/tpa-redis-proxy"
fi

# counters DEV: "rx_packets tx_packets" of DEV in the load's namespace.
counters() {
    ip -n "$rp_nb" -s -j link show "$1" |
        python3 -c 'import json, sys; s = json.load(sys.stdin)[0]["stats64"]; print(s["rx"]["packets"], s["tx"]["packets"])'
}

trap rp_cleanup EXIT
rp_setup 4
for v in ${VARIANTS:-tpa nutcracker}; do
    rp_start "$v" "$bin"
    dev=rpt0
    [[ $v == tpa ]] || dev=rpv0
    for p in 1 16; do
        n=100000
        ((p > 1)) && n=500000
        read -r rx0 tx0 < <(counters "$dev")
        ip netns exec "$rp_nb" "${rp_pre[@]}" -c 0 redis-benchmark -h "$rp_host" -p "$rp_target_port" \
            -c 50 -n "$n" -r 1000000 -t get -P "$p" -q >/dev/null
        read -r rx1 tx1 < <(counters "$dev")
        awk -v v="$v" -v p="$p" -v n="$n" -v from=$((rx1 - rx0)) -v to=$((tx1 - tx0)) \
            'BEGIN { printf "%s GET -P %d: %.2f frames from the proxy, %.2f to it, per request\n", v, p, from / n, to / n }'
    done
    rp_stop_proxy
done
