#!/usr/bin/env bash
# tpa's TCP over AF_PACKET on a veth with and without the port's offloads
# (PACKET_VNET_HDR), same run, as root:
#   sudo bash benches/tcp_tso_veth.sh
#
# Two namespaces joined by a veth pair: the kernel's end `vk` (10.80.0.1,
# a kernel tperf server on 10.80.0.1:4040; TSO and GSO off, `ethtool -K`,
# so that the kernel sends tpa segments it can take, not 64 KiB GSO units:
# `gso_max_segs 1`, which the tests use, does that too but cuts the
# kernel's sending rate several times over) and tpa's
# end `vt` (no kernel address; the veth's own offloads left on: tx
# checksumming, scatter-gather, TSO). A tpa client on `vt` (10.80.0.2,
# AF_PACKET, the default TPACKET_V2 rings; TX_PATH=sendmmsg for the other
# transmit path) runs `write` (tpa sends: bulk, 16 KiB writes) and `read`
# (tpa receives) in three variants:
#   plain      no virtio_net_hdr: tpa computes every checksum and hands
#              the kernel one frame per segment;
#   csum       --offloads with TPA_TCP_TSO=false: the kernel finishes the
#              checksums both ways, one frame per segment still;
#   tso        --offloads: TCP super-segments of up to 64 KiB as well,
#              which the veth passes to the kernel's stack whole.
# Each round runs every variant (the order rotating); the figures are
# medians over ROUNDS (5) runs of DURATION (3) s: Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side), and each figure's ratio to the plain port's. Traffic stays in the
# namespaces the script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ $(id -u) -eq 0 ]] || {
    echo "tcp_tso_veth.sh: run as root: it creates network namespaces and a veth pair" >&2
    exit 1
}
command -v ethtool >/dev/null || {
    echo "tcp_tso_veth.sh: ethtool not found (apt-get install ethtool): the kernel's veth end must send segments" >&2
    exit 1
}
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/background.sh
. benches/background.sh

rounds="${ROUNDS:-5}"
duration="${DURATION:-3}"
tests="${TESTS:-write read}"

echo "==> cargo build --release -p tpa-tperf" >&2
cargo build --release -q -p tpa-tperf
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/tpa-tperf"

ns="tpa-tsov-k-$$"
nt="tpa-tsov-t-$$"
tx_path="${TX_PATH:-ring}"
log="$(mktemp)"
out="$(mktemp)"
server_pid=
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
cleanup() {
    stop_server
    ip netns del "$ns" 2>/dev/null || true
    ip netns del "$nt" 2>/dev/null || true
    rm -f "$log" "$out"
}
trap cleanup EXIT

ip netns add "$ns"
ip netns add "$nt"
ip -n "$ns" link set lo up
ip -n "$nt" link set lo up
ip -n "$ns" link add vk type veth peer name vt
ip -n "$ns" link set vt netns "$nt"
ip netns exec "$ns" ethtool -K vk tso off gso off >/dev/null
ip -n "$ns" addr add 10.80.0.1/24 dev vk
ip -n "$ns" link set vk up
ip -n "$nt" link set vt up

start_logged "$log" ip netns exec "$ns" "$bin" server --kernel -l 10.80.0.1:4040
server_pid=$started_pid
wait_for_line "$server_pid" "$log" "tpa-tperf server: listening" || {
    cat "$log" >&2
    echo "tcp_tso_veth.sh: the kernel server did not start" >&2
    exit 1
}

variants=(plain csum tso)
# measure VARIANT TEST: the client's JSON report in $out.
measure() {
    local args=(--port af_packet:vt --ip 10.80.0.2/24 --tx-path "$tx_path") tso=true
    case $1 in
    plain) ;;
    csum) args+=(--offloads) tso=false ;;
    tso) args+=(--offloads) ;;
    esac
    TPA_TCP_TSO=$tso ip netns exec "$nt" "$bin" client "${args[@]}" -s 10.80.0.1:4040 \
        -t "$2" -d "$duration" --json >"$out" || {
        cat "$out" >&2
        echo "tcp_tso_veth.sh: $1 $2 failed; the server's output:" >&2
        cat "$log" >&2
        exit 1
    }
}

# figures TEST: Gbit/s (of the test's direction) and CPU ns per byte.
figures() {
    python3 - "$1" "$out" <<'PY'
import json, sys
test, path = sys.argv[1], sys.argv[2]
r = json.load(open(path))
s = r.get("server_view") or {}
cpu = r["cpu_user_s"] + r["cpu_system_s"] + s.get("cpu_user_s", 0) + s.get("cpu_system_s", 0)
if test == "write":
    print(r["send_gbit_s"], cpu * 1e9 / r["bytes_sent"])
else:
    print(r["receive_gbit_s"], cpu * 1e9 / r["bytes_received"])
PY
}

declare -A results
for round in $(seq "$rounds"); do
    first=$(((round - 1) % ${#variants[@]}))
    order=("${variants[@]:first}" "${variants[@]:0:first}")
    for v in "${order[@]}"; do
        for t in $tests; do
            measure "$v" "$t"
            line=$(figures "$t")
            echo "round $round $v $t: $line" >&2
            results[$v,$t]+="$line;"
        done
    done
done

# median COLUMN "a b;a b;…": the median of that column over the rounds.
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

echo
for t in $tests; do
    echo "$t over veth (AF_PACKET, tx path $tx_path) against the kernel, medians of $rounds runs of ${duration} s:"
    echo "| AF_PACKET | Gbit/s | / plain | CPU ns/byte | / plain |"
    echo "|---|---:|---:|---:|---:|"
    g0=$(median 1 "${results[plain,$t]}")
    c0=$(median 2 "${results[plain,$t]}")
    for v in "${variants[@]}"; do
        g=$(median 1 "${results[$v,$t]}")
        c=$(median 2 "${results[$v,$t]}")
        awk -v v="$v" -v g="$g" -v c="$c" -v g0="$g0" -v c0="$c0" \
            'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", v, g, g / g0, c, c / c0 }'
    done
    echo
done
