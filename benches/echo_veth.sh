#!/usr/bin/env bash
# tpa-echo over veth + AF_PACKET against the kernel's UDP echo, same veth,
# same client, same run, as root:
#   sudo bash benches/echo_veth.sh
#
# Two namespaces joined by a veth pair: the client's (10.77.0.1 on vc) and
# the server's (vs). On vs, `tpa-echo server` serves 10.77.0.2 through
# AF_PACKET (the interface's MAC), spinning when idle (`tpa`) or backing
# off to 50 µs sleeps (`tpa_backoff`, the default idle policy), and
# `tpa-echo server --kernel` serves 10.77.0.3, an address of the kernel's
# on the same vs (`kernel`); `tpa_xdp` is tpa-echo through AF_XDP beside
# the kernel on that same address 10.77.0.3 (tpa's XDP program hands it
# port 7; spinning), so AF_XDP and AF_PACKET meet on the same veth. The
# client's veth end computes its checksums itself (`ethtool -K vc tx
# off`: AF_XDP frames carry no checksum state), for every server alike. One client, `tpa-echo client --kernel`,
# measures each: datagrams per second and the p50/p99 round-trip times, for
# each window (datagrams out at once). Each round runs the four servers in
# turn (the order rotating from round to round), one at a time, each after
# a warm-up of 200 datagrams (ARP included); the figures are the medians
# over the rounds. Prints a table and writes
# target/bench-results/echo-veth.json for benches/report.py (tables
# `echo-veth-rate` and `echo-veth-rtt`).
#
# ROUNDS (9), COUNT datagrams per measurement (20000), SIZE bytes (64),
# WINDOWS ("1 32") change the run. Traffic stays inside the namespaces the
# script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ $(id -u) -eq 0 ]] || {
    echo "echo_veth.sh: run as root: it creates network namespaces and a veth pair" >&2
    exit 1
}
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/background.sh
. benches/background.sh

rounds="${ROUNDS:-9}"
count="${COUNT:-20000}"
size="${SIZE:-64}"
windows="${WINDOWS:-1 32}"

echo "==> cargo build --release -p tpa-echo" >&2
cargo build --release -q -p tpa-echo
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/tpa-echo"

nc="tpa-ebc-$$-0"
ns="tpa-ebs-$$-1"
log="$(mktemp)"
server_pid=
cleanup() {
    stop_server
    ip netns del "$nc" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$log"
}
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -INT "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
    if ((${dropped:-0})); then
        echo "the server's report, after datagrams were lost:" >&2
        cat "$log" >&2
        echo "the veth's counters and the client's neighbor table:" >&2
        ip -s -n "$nc" link show vc >&2
        ip -s -n "$ns" link show vs >&2
        ip -s -n "$nc" neigh show dev vc >&2
    fi
    dropped=0
}
trap cleanup EXIT

ip netns add "$nc"
ip netns add "$ns"
ip -n "$nc" link set lo up
ip -n "$ns" link set lo up
ip -n "$nc" link add vc type veth peer name vs
ip -n "$nc" link set vs netns "$ns"
ip -n "$nc" addr add 10.77.0.1/24 dev vc
ip -n "$ns" addr add 10.77.0.3/24 dev vs
ip -n "$nc" link set vc up
ip -n "$ns" link set vs up
ip netns exec "$nc" ethtool -K vc tx off >/dev/null

servers=(tpa tpa_backoff tpa_xdp kernel)

# start_server tpa|tpa_backoff|kernel: runs it in the server namespace
# until stop_server.
start_server() {
    local args
    case $1 in
    tpa) args=(server --port af_packet:vs --ip 10.77.0.2/24 --udp-port 7 --spin) ;;
    tpa_backoff) args=(server --port af_packet:vs --ip 10.77.0.2/24 --udp-port 7) ;;
    tpa_xdp) args=(server --port af_xdp:vs --ip 10.77.0.3/24 --udp-port 7 --spin) ;;
    kernel) args=(server --kernel --ip 10.77.0.3/24 --udp-port 7) ;;
    esac
    # The log still holds the previous server's report: start_logged
    # empties it before the fork, so only this server's line counts.
    start_logged "$log" ip netns exec "$ns" "$bin" "${args[@]}"
    server_pid=$started_pid
    wait_for_line "$server_pid" "$log" "listening on udp" && return
    cat "$log" >&2
    echo "echo_veth.sh: the $1 server did not start" >&2
    exit 1
}

# measure ADDR WINDOW N: the client's final line (the client exits 1 when
# a datagram was lost: the line says how many, and the run goes on).
measure() {
    { ip netns exec "$nc" "$bin" client --kernel --to "$1:7" --count "$3" --size "$size" \
        --window "$2" || true; } | sed -n 's/^final: //p'
}

# field NAME LINE: the value after NAME in a final line.
field() { awk -v k="$1" '{ for (i = 1; i < NF; i += 2) if ($i == k) print $(i + 1) }' <<<"$2"; }

declare -A results lost
for round in $(seq "$rounds"); do
    first=$(((round - 1) % ${#servers[@]}))
    order=("${servers[@]:first}" "${servers[@]:0:first}")
    for server in "${order[@]}"; do
        start_server "$server"
        addr=10.77.0.2
        [[ $server == kernel || $server == tpa_xdp ]] && addr=10.77.0.3
        line=$(measure "$addr" 1 200)
        echo "round $round $server warm-up: $line" >&2
        dropped=$(field lost "$line")
        for w in $windows; do
            line=$(measure "$addr" "$w" "$count")
            [[ -n $line ]] || {
                echo "echo_veth.sh: the client printed no report" >&2
                exit 1
            }
            echo "round $round $server window $w: $line" >&2
            lost[$server]=$((${lost[$server]:-0} + $(field lost "$line")))
            dropped=$((dropped + $(field lost "$line")))
            results[$server,$w]+="$(field datagrams_per_s "$line") $(field p50_us "$line") $(field p99_us "$line");"
        done
        stop_server
    done
done

# median COLUMN "a b c;a b c;…": the median of that column over the rounds.
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# shellcheck source=benches/records_lib.sh
. benches/records_lib.sh
# record GROUP SERVER NS: one record for benches/report.py.
record() {
    records_add "{\"group\": \"$1\", \"function\": \"$2\", \"ns_per_iter\": $3, \"elements\": 1, \"samples\": $rounds}"
}
echo
echo "| window | server | datagrams/s | / kernel | p50 µs | p99 µs | p99 / kernel |"
echo "|---:|---|---:|---:|---:|---:|---:|"
for w in $windows; do
    rate_k=$(median 1 "${results[kernel,$w]}")
    p99_k=$(median 3 "${results[kernel,$w]}")
    for server in "${servers[@]}"; do
        rate=$(median 1 "${results[$server,$w]}")
        p50=$(median 2 "${results[$server,$w]}")
        p99=$(median 3 "${results[$server,$w]}")
        record "echo_veth/window_$w" "$server" "$(awk -v r="$rate" 'BEGIN { printf "%.1f", 1e9 / r }')"
        record "echo_rtt/p50/window_$w" "$server" "$(awk -v u="$p50" 'BEGIN { printf "%.1f", u * 1000 }')"
        record "echo_rtt/p99/window_$w" "$server" "$(awk -v u="$p99" 'BEGIN { printf "%.1f", u * 1000 }')"
        awk -v w="$w" -v s="$server" -v r="$rate" -v rk="$rate_k" -v p50="$p50" -v p99="$p99" -v pk="$p99_k" \
            'BEGIN { printf "| %d | %s | %.0f | %.2f | %.1f | %.1f | %.2f |\n", w, s, r, r / rk, p50, p99, p99 / pk }'
    done
done

CARGO_TARGET_DIR="$target_dir" records_write echo-veth
echo "(medians of $rounds rounds of $count datagrams of $size bytes)"
for server in "${servers[@]}"; do
    echo "$server: ${lost[$server]:-0} datagrams lost in the measured runs"
done
