#!/usr/bin/env bash
# tpa's TCP on a DPDK port (a net_tap vdev) with and without TSO, same
# run, as root:
#   sudo bash benches/tcp_tso_dpdk.sh
#
# One namespace holds a multi-queue TAP `tpa0` (the kernel's side
# 10.80.0.1) that a net_tap vdev attaches to (tpa's side 10.80.0.2; the
# EAL without hugepages or PCI), and a kernel tperf server on
# 10.80.0.1:4040. A tpa client on the vdev runs `write` (tpa sends: bulk,
# 16 KiB writes) and `read` (tpa receives) in two variants:
#   off        TPA_TCP_TSO=false: one mbuf per segment, checksums left to
#              the device (net_tap computes them in software);
#   tso        TCP super-segments of up to 64 KiB, cut by net_tap's
#              librte_gso.
# Each round runs both variants (the order rotating); the figures are
# medians over ROUNDS (5) runs of DURATION (3) s: Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side), and each figure's ratio to `off`. Traffic stays in the namespace
# the script creates, which it removes on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ $(id -u) -eq 0 ]] || {
    echo "tcp_tso_dpdk.sh: run as root: it creates a network namespace and a TAP" >&2
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

echo "==> cargo build --release -p tpa-tperf --features dpdk" >&2
cargo build --release -q -p tpa-tperf --features dpdk
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/tpa-tperf"

ns="tpa-tsod-$$"
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
    rm -rf "$log" "$out" "/var/run/dpdk/$ns"
}
trap cleanup EXIT

ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" tuntap add dev tpa0 mode tap multi_queue
ip -n "$ns" addr add 10.80.0.1/24 dev tpa0
ip -n "$ns" link set tpa0 up

start_logged "$log" ip netns exec "$ns" "$bin" server --kernel -l 10.80.0.1:4040
server_pid=$started_pid
wait_for_line "$server_pid" "$log" "tpa-tperf server: listening" || {
    cat "$log" >&2
    echo "tcp_tso_dpdk.sh: the kernel server did not start" >&2
    exit 1
}

variants=(off tso)
eal=(-l 0 --no-huge --no-pci --no-shconf -m 512 --log-level '*:error'
    --vdev net_tap0,iface=tpa0 --file-prefix "$ns")
# measure VARIANT TEST: the client's JSON report in $out.
measure() {
    local tso=true
    [[ $1 == off ]] && tso=false
    TPA_TCP_TSO=$tso ip netns exec "$ns" "$bin" client --port dpdk:net_tap0 --ip 10.80.0.2/24 \
        -s 10.80.0.1:4040 -t "$2" -d "$duration" --json -- "${eal[@]}" >"$out" || {
        cat "$out" >&2
        echo "tcp_tso_dpdk.sh: $1 $2 failed; the server's output:" >&2
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
    echo "$t over DPDK net_tap against the kernel, medians of $rounds runs of ${duration} s:"
    echo "| net_tap | Gbit/s | / off | CPU ns/byte | / off |"
    echo "|---|---:|---:|---:|---:|"
    g0=$(median 1 "${results[off,$t]}")
    c0=$(median 2 "${results[off,$t]}")
    for v in "${variants[@]}"; do
        g=$(median 1 "${results[$v,$t]}")
        c=$(median 2 "${results[$v,$t]}")
        awk -v v="$v" -v g="$g" -v c="$c" -v g0="$g0" -v c0="$c0" \
            'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", v, g, g / g0, c, c / c0 }'
    done
    echo
done
