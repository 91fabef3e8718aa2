#!/usr/bin/env bash
# tpa's TCP against the kernel's, with tpa-tperf on both ends, same links,
# same run, as root:
#   sudo bash benches/tcp_vs_kernel.sh
#
# Two namespaces joined by a veth pair, every offload that changes segment
# sizes or checksums off on both ends (ethtool -K: GSO, GRO, TSO, and the
# checksum offloads, since tpa computes every checksum in software): the
# client's namespace (the kernel's 10.78.0.1 and tpa's 10.78.0.4 on vc,
# tpa through AF_PACKET) and the server's (the kernel's 10.78.0.3 and
# tpa's 10.78.0.2 on vs). Both MTUs are 1500, so every stack sends
# segments of the same size (MSS 1460, less the timestamps' 12 bytes).
# Pairs, client-server: kernel-kernel (the baseline), kernel-tpa,
# tpa-kernel and tpa-tpa over the veth; with TAP in TRANSPORTS, also
# kernel-tpa and tpa-kernel over a TAP device in the server's namespace
# (tpa on the TAP, the kernel on its other side, 10.79.0.1; tpa 10.79.0.2).
#
# Each pair runs three tests: `write` (bulk, 16 KiB writes), `rr` and `crr`
# (64-byte requests and responses), one connection, DURATION seconds each;
# each round runs every pair (the order rotating from round to round); the
# figures are medians over the rounds: Gbit/s and CPU nanoseconds per byte
# for bulk (and "paired": the median of each round's CPU per byte over
# kernel-kernel's in the same round, steadier on a machine whose speed
# drifts), transactions/s, p50/p99/p999 latency and CPU microseconds per
# transaction for rr and crr (CPU of both processes: tperf's own
# getrusage on each side), and each figure's ratio to kernel-kernel.
# A second CPU figure, "machine", is every CPU's busy time over the
# client's run (/proc/stat: all but idle and iowait) per byte or
# transaction: over a veth the receiving side's softirq work runs in
# whichever context the frame happens to find (the sender's transmit
# call, the receiver's own calls, ksoftirqd), so getrusage charges it to
# either end or to neither, run by run; the machine figure counts it
# once wherever it ran, and holds only on an otherwise idle machine (it
# counts everything else that runs too: the script prints the load
# average at the start).
# tpa polls while it has work, then, after an adaptive spin of 50 µs at
# most, blocks on its port until a frame or its next timer; after a
# stream's busy turns it sleeps 50 µs instead, letting the frames gather
# (tperf's default, `--idle wait:~50,coalesce:50`).
#
# ROUNDS (5), DURATION (3), TESTS ("write rr crr"), TRANSPORTS ("veth tap")
# change the run; IDLES ("wait:~50,coalesce:50") lists the `--idle` modes
# of tpa's ends (wait; wait:N, polling N µs after the last work before it
# blocks; wait:~N, an adaptive spin of N µs at most; any of these with
# ,coalesce:N, sleeping N µs when the port runs dry after a stream's busy
# turns; sleep: 50 µs sleeps after 1024 idle turns; spin: never idle):
# with several, every pair with a tpa end runs once per mode in each
# round, named PAIR@MODE (e.g. IDLES="sleep wait" compares the two in the
# same rounds). SPIN=1 is IDLES=spin. A mode may end in +mac (wait+mac):
# tpa's ends on the veth then use MACs of their own (--mac, the interface
# promiscuous), so the kernel's stack, which sees every frame of the
# interface, drops tpa's frames on sight (not for its MAC) instead of
# routing each one first (to find it is not for its address); over TAP,
# where tpa's MAC is its own already, +mac pairs are not run. A mode with
# +ring (wait+ring, wait+mac+ring) sends from tpa's veth ends with
# `--tx-path ring`, the transmit ring's pages handed to the kernel, where
# the default on a veth is `ring-copy` (the kernel copies each frame out
# of the ring, the veth would otherwise copy ring pages into fresh ones);
# not run over TAP either. A mode with +mmsg sends from tpa's veth ends
# with `--tx-path sendmmsg` (no ring: the kernel copies each frame from
# tpa's buffer); not over TAP. A mode with +v3 receives on tpa's veth ends
# through the block ring (`--rx-mode throughput`, TPACKET_V3) instead of
# the frame ring; not over TAP.
# A mode with +xdp runs tpa's veth ends on AF_XDP (`--port af_xdp:IF`,
# copy mode on a veth, beside the kernel on the interface: tpa's XDP
# program hands it only its own flows) instead of AF_PACKET; it takes no
# other + option and is not run over TAP. AF_XDP leaves ARP to the
# kernel, so tpa's ends then take the kernel's addresses (the client
# 10.78.0.1, its active-open ports reserved from the kernel's; the
# server 10.78.0.3), on which the kernel answers for them.
# INGRESS_DROP=1 has each namespace's kernel drop the frames to tpa's
# veth addresses at the interface's ingress (an nftables netdev rule),
# after AF_PACKET has taken its copy and before the kernel's IP layer
# would route them: the kernel's share of tpa's frames without giving
# tpa a MAC of its own.
# CC (cubic) is the kernel ends' congestion control (tperf's
# --congestion, TCP_CONGESTION on each socket): cubic is tpa's default,
# so both stacks run the same algorithm (a namespace's default, BBR on
# the machines of doc/benchmarks.md, paces every segment on a timer of
# its own); the tables say which ran.
# RAW=DIR keeps each run's JSON report (the client's, with the server's
# view) as DIR/TRANSPORT_PAIR.TEST.ROUND.json.
# PIN=1 gives each end a core of its own, as a tpa with dedicated cores
# runs: the client's tperf on CPU 0 and the server's on CPU 1, both
# SCHED_FIFO (chrt -f 50), so other processes of the machine (a build)
# wait while they run and do not take their cores; the softirq work each
# end's calls do runs on its core with it. A real-time spinner would
# hold its core for good, so PIN takes no `spin` mode.
# Traffic stays inside the namespaces the script creates, which it removes
# on exit. Prints the tables (doc/benchmarks.md quotes
# them as printed; each round's figures go to standard error).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

[[ $(id -u) -eq 0 ]] || {
    echo "tcp_vs_kernel.sh: run as root: it creates network namespaces and a veth pair" >&2
    exit 1
}
command -v ethtool >/dev/null || {
    echo "tcp_vs_kernel.sh: ethtool not found (apt-get install ethtool): the offloads must be off" >&2
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
tests="${TESTS:-write rr crr}"
transports="${TRANSPORTS:-veth tap}"
idles="${IDLES:-wait:~50,coalesce:50}"
[[ ${SPIN:-0} == 1 ]] && idles=spin
for m in $idles; do
    [[ $m =~ ^((wait|wait:~?[0-9]+)(,coalesce:[0-9]+)?|sleep|spin)((\+mac|\+ring|\+mmsg|\+v3)*|\+xdp)$ ]] || {
        echo "tcp_vs_kernel.sh: IDLES takes wait, wait:N, wait:~N (each with or without ,coalesce:N), sleep and spin (each with any of +mac, +ring, +mmsg, +v3, or with +xdp alone), not $m" >&2
        exit 1
    }
done
pin=${PIN:-0}
client_pin=() server_pin=()
if [[ $pin == 1 ]]; then
    [[ $(nproc) -ge 2 ]] || {
        echo "tcp_vs_kernel.sh: PIN=1 needs two CPUs (the client's on 0, the server's on 1)" >&2
        exit 1
    }
    for m in $idles; do
        [[ $m != spin* ]] || {
            echo "tcp_vs_kernel.sh: PIN=1 takes no spin mode: a real-time spinner never gives its core back" >&2
            exit 1
        }
    done
    client_pin=(chrt -f 50 taskset -c 0) server_pin=(chrt -f 50 taskset -c 1)
fi
[[ " $transports " == *" veth "* ]] || {
    echo "tcp_vs_kernel.sh: TRANSPORTS must hold veth: kernel-kernel over it is every ratio's base" >&2
    exit 1
}
for t in $tests; do
    [[ $t == write || $t == rr || $t == crr ]] || {
        echo "tcp_vs_kernel.sh: TESTS takes write, rr and crr, not $t" >&2
        exit 1
    }
done

echo "==> cargo build --release -p tpa-tperf" >&2
cargo build --release -q -p tpa-tperf
target_dir="${CARGO_TARGET_DIR:-target}"
bin="$target_dir/release/tpa-tperf"

nc="tpa-tkc-$$-0"
ns="tpa-tks-$$-1"
log="$(mktemp)"
out="$(mktemp)"
server_pid=
cleanup() {
    stop_server
    ip netns del "$nc" 2>/dev/null || true
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$log" "$out"
}
stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}
trap cleanup EXIT

# no_offloads NS DEV: every offload that changes what a stack sees off.
no_offloads() {
    ip netns exec "$1" ethtool -K "$2" gso off gro off tso off tx off rx off >/dev/null 2>&1 ||
        ip netns exec "$1" ethtool -K "$2" gso off gro off tso off >/dev/null
}

ip netns add "$nc"
ip netns add "$ns"
ip -n "$nc" link set lo up
ip -n "$ns" link set lo up
ip -n "$nc" link add vc type veth peer name vs
ip -n "$nc" link set vs netns "$ns"
ip -n "$nc" addr add 10.78.0.1/24 dev vc
ip -n "$ns" addr add 10.78.0.3/24 dev vs
no_offloads "$nc" vc
no_offloads "$ns" vs
cc=${CC:-cubic}
grep -qw -- "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control || {
    echo "tcp_vs_kernel.sh: CC=$cc: the kernel has $(cat /proc/sys/net/ipv4/tcp_available_congestion_control)" >&2
    exit 1
}
ip -n "$nc" link set vc up
ip -n "$ns" link set vs up
# ingress_drop NS DEV ADDR: NS's kernel drops the frames to ADDR that
# arrive on DEV at its ingress hook (AF_PACKET's taps see them first).
ingress_drop() {
    ip netns exec "$1" nft -f - <<NFT
table netdev tpa {
    chain tpa_in {
        type filter hook ingress device "$2" priority 0;
        ip daddr $3 drop
    }
}
NFT
}
if [[ ${INGRESS_DROP:-0} == 1 ]]; then
    command -v nft >/dev/null || {
        echo "tcp_vs_kernel.sh: INGRESS_DROP=1 needs nft (apt-get install nftables)" >&2
        exit 1
    }
    ingress_drop "$ns" vs 10.78.0.2
    ingress_drop "$nc" vc 10.78.0.4
fi
if [[ " $transports " == *" tap "* ]]; then
    ip -n "$ns" tuntap add dev tk mode tap
    ip -n "$ns" addr add 10.79.0.1/24 dev tk
    ip -n "$ns" link set tk up
    no_offloads "$ns" tk
fi

# The pairs: NAME CLIENT_NS CLIENT_ARGS SERVER_ARGS SERVER_ADDR (the
# server's tperf runs in the server's namespace, except over TAP where
# both ends are in it).
# With several IDLES, a pair with a tpa end is NAME@MODE.
tpa_pairs=()
if [[ " $transports " == *" veth "* ]]; then
    tpa_pairs+=(veth/kernel-tpa veth/tpa-kernel veth/tpa-tpa)
fi
if [[ " $transports " == *" tap "* ]]; then
    tpa_pairs+=(tap/kernel-tpa tap/tpa-kernel)
fi
pairs=(veth/kernel-kernel)
for p in "${tpa_pairs[@]}"; do
    if [[ $idles == *" "* ]]; then
        for m in $idles; do
            # Over TAP tpa's MAC is its own already, and there is no
            # transmit path to choose.
            [[ $m == *+* && $p == tap/* ]] && continue
            pairs+=("$p@$m")
        done
    else
        pairs+=("$p")
    fi
done
# pair_setup NAME[@MODE]: sets client_ns, client_args, server_args,
# server_addr.
pair_setup() {
    client_ns=$nc
    local mode=${1#*@}
    [[ $mode == "$1" ]] && mode=$idles
    idle=(--idle "${mode%%+*}")
    local cmac=() smac=()
    if [[ $mode == *+mac* && $1 == veth/* ]]; then
        cmac=(--mac 02:74:70:61:00:14) smac=(--mac 02:74:70:61:00:12)
    fi
    if [[ $mode == *+ring* && $1 == veth/* ]]; then
        cmac+=(--tx-path ring) smac+=(--tx-path ring)
    fi
    if [[ $mode == *+mmsg* && $1 == veth/* ]]; then
        cmac+=(--tx-path sendmmsg) smac+=(--tx-path sendmmsg)
    fi
    if [[ $mode == *+v3* && $1 == veth/* ]]; then
        cmac+=(--rx-mode throughput) smac+=(--rx-mode throughput)
    fi
    local veth_port=af_packet tpa_client=10.78.0.4 tpa_server=10.78.0.2
    if [[ $mode == *+xdp* && $1 == veth/* ]]; then
        veth_port=af_xdp tpa_client=10.78.0.1 tpa_server=10.78.0.3
    fi
    case ${1%@*} in
    veth/kernel-kernel)
        client_args=(--kernel --congestion "$cc") server_args=(--kernel --congestion "$cc" -l 10.78.0.3:4040) server_addr=10.78.0.3:4040
        ;;
    veth/kernel-tpa)
        client_args=(--kernel --congestion "$cc") server_addr=$tpa_server:4040
        server_args=(--port "$veth_port:vs" --ip $tpa_server/24 -l $tpa_server:4040 "${idle[@]}" "${smac[@]}")
        ;;
    veth/tpa-kernel)
        client_args=(--port "$veth_port:vc" --ip $tpa_client/24 "${idle[@]}" "${cmac[@]}")
        server_args=(--kernel --congestion "$cc" -l 10.78.0.3:4040) server_addr=10.78.0.3:4040
        ;;
    veth/tpa-tpa)
        client_args=(--port "$veth_port:vc" --ip $tpa_client/24 "${idle[@]}" "${cmac[@]}") server_addr=$tpa_server:4040
        server_args=(--port "$veth_port:vs" --ip $tpa_server/24 -l $tpa_server:4040 "${idle[@]}" "${smac[@]}")
        ;;
    tap/kernel-tpa)
        client_ns=$ns client_args=(--kernel --congestion "$cc") server_addr=10.79.0.2:4040
        server_args=(--port tap:tk --ip 10.79.0.2/24 -l 10.79.0.2:4040 "${idle[@]}")
        ;;
    tap/tpa-kernel)
        client_ns=$ns client_args=(--port tap:tk --ip 10.79.0.2/24 "${idle[@]}")
        server_args=(--kernel --congestion "$cc" -l 10.79.0.1:4040) server_addr=10.79.0.1:4040
        ;;
    esac
}

start_server() {
    # Every pair starts from empty neighbor caches: an address may have
    # moved to another MAC since the last pair (+mac).
    ip -n "$nc" neigh flush all
    ip -n "$ns" neigh flush all
    start_logged "$log" "${server_pin[@]}" ip netns exec "$ns" "$bin" server "${server_args[@]}"
    server_pid=$started_pid
    wait_for_line "$server_pid" "$log" "tpa-tperf server: listening" && return
    cat "$log" >&2
    echo "tcp_vs_kernel.sh: the $1 server did not start" >&2
    exit 1
}

# busy_jiffies: every CPU's busy time so far (/proc/stat's first line: all
# columns but idle and iowait), in clock ticks.
busy_jiffies() {
    awk '$1 == "cpu" { b = 0; for (i = 2; i <= NF; i++) if (i != 5 && i != 6) b += $i; print b; exit }' /proc/stat
}
ticks=$(getconf CLK_TCK)

# measure TEST: the client's JSON report in $out (the run fails on an
# integrity error or a failed connection: then the script stops), and the
# machine's busy seconds over it in $machine_s.
measure() {
    local before after
    before=$(busy_jiffies)
    "${client_pin[@]}" ip netns exec "$client_ns" "$bin" client "${client_args[@]}" -s "$server_addr" \
        -t "$1" -d "$duration" --json >"$out" || {
        cat "$out" >&2
        echo "tcp_vs_kernel.sh: $pair $1 failed; the server's output:" >&2
        cat "$log" >&2
        exit 1
    }
    after=$(busy_jiffies)
    machine_s=$(awk -v a="$before" -v b="$after" -v t="$ticks" 'BEGIN { print (b - a) / t }')
}

# figures TEST: the figures of the report in $out, space-separated: for
# write, Gbit/s, CPU ns per byte (client + server) and the machine's; for
# rr and crr, transactions/s, p50, p99, p999 µs, CPU µs per transaction
# and the machine's.
figures() {
    python3 - "$1" "$out" "$machine_s" <<'EOF'
import json, sys
test, path, machine = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))
s = r.get("server_view") or {}
cpu = r["cpu_user_s"] + r["cpu_system_s"] + s.get("cpu_user_s", 0) + s.get("cpu_system_s", 0)
if test == "write":
    print(r["send_gbit_s"], cpu * 1e9 / r["bytes_sent"], machine * 1e9 / r["bytes_sent"])
else:
    print(r["transactions_per_s"], r["latency_p50_us"], r["latency_p99_us"],
          r["latency_p999_us"], cpu * 1e6 / r["transactions"], machine * 1e6 / r["transactions"])
EOF
}

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
declare -A results
for round in $(seq "$rounds"); do
    first=$(((round - 1) % ${#pairs[@]}))
    order=("${pairs[@]:first}" "${pairs[@]:0:first}")
    for pair in "${order[@]}"; do
        pair_setup "$pair"
        start_server "$pair"
        for t in $tests; do
            measure "$t"
            line=$(figures "$t")
            echo "round $round $pair $t: $line" >&2
            if [[ -n ${RAW:-} ]]; then
                mkdir -p "$RAW"
                cp "$out" "$RAW/${pair//\//_}.$t.$round.json"
            fi
            results[$pair,$t]+="$line;"
        done
        stop_server
    done
done

# median COLUMN "a b c;a b c;…": the median of that column over the rounds.
median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# paired_median COLUMN "pair's rounds" "base's rounds": the median over
# the rounds of the pair's figure over kernel-kernel's in the same round
# (a drift of the machine between rounds moves both alike).
paired_median() {
    paste -d' ' <(tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }') \
        <(tr ';' '\n' <<<"$3" | awk -v c="$1" 'NF { print $c }') |
        awk '$2 > 0 { print $1 / $2 }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

base=veth/kernel-kernel
echo
echo "load average at the start: $load_start (the machine figures count every process)"
echo "the kernel ends' congestion control: $cc (tpa's: cubic)"
[[ $pin == 1 ]] && echo "PIN=1: the client's tperf on CPU 0, the server's on CPU 1, both SCHED_FIFO"
echo
for t in $tests; do
    if [[ $t == write ]]; then
        echo "bulk (write, 16 KiB writes), medians of $rounds runs of ${duration} s:"
        echo "| transport/client-server | Gbit/s | / kernel | CPU ns/byte | / kernel | paired | machine ns/byte | / kernel |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    else
        echo "$t (64-byte request and response), medians of $rounds runs of ${duration} s:"
        echo "| transport/client-server | transactions/s | / kernel | p50 µs | p99 µs | p999 µs | p99 / kernel | CPU µs/transaction | / kernel | machine µs/transaction | / kernel |"
        echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    fi
    for pair in "${pairs[@]}"; do
        row=()
        for c in 1 2 3 4 5 6; do
            row+=("$(median "$c" "${results[$pair,$t]}")")
        done
        base_row=()
        for c in 1 2 3 4 5 6; do
            base_row+=("$(median "$c" "${results[$base,$t]:-}")")
        done
        if [[ $t == write ]]; then
            paired=$(paired_median 2 "${results[$pair,$t]}" "${results[$base,$t]:-}")
            awk -v p="$pair" -v g="${row[0]}" -v c="${row[1]}" -v m="${row[2]}" -v pr="$paired" \
                -v gk="${base_row[0]}" -v ck="${base_row[1]}" -v mk="${base_row[2]}" \
                'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", p, g, g / gk, c, c / ck, pr, m, m / mk }'
        else
            awk -v p="$pair" -v r="${row[0]}" -v p50="${row[1]}" -v p99="${row[2]}" -v p999="${row[3]}" \
                -v c="${row[4]}" -v m="${row[5]}" -v rk="${base_row[0]}" -v pk="${base_row[2]}" \
                -v ck="${base_row[4]}" -v mk="${base_row[5]}" \
                'BEGIN { printf "| %s | %.0f | %.2f | %.1f | %.1f | %.1f | %.2f | %.1f | %.2f | %.1f | %.2f |\n", p, r, r / rk, p50, p99, p999, p99 / pk, c, c / ck, m, m / mk }'
        fi
    done
    echo
done
