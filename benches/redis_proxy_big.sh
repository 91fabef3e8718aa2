#!/usr/bin/env bash
# The proxy's CPU per GET of a big value on tpa's stack, with the
# passthrough of big replies (the default) and without it
# (TPA_PROXY_PASSTHROUGH=0: every reply byte copied into the engine's
# buffer, then into the client's send queue), as root:
#   sudo bash benches/redis_proxy_big.sh [BIN]
#
# The topology of benches/redis_proxy_lib.sh, one backend: the proxy on
# tpa over the TAP (core 1), the backend and the client in the load's
# namespace (core 0). The value (SIZE bytes, 8 MiB) is SET once on the
# backend; each run a client sends GETS (20) GETs of it through the proxy,
# one at a time (each reply read whole and its length checked before the
# next: the pool's 2 s timeout runs from a request's queueing). The
# figure is the proxy's CPU time per GET (every thread's time on a CPU,
# /proc/PID/task/*/schedstat, before and after the run) and the wall time
# of the run; ROUNDS (5) rounds, each starting both variants in turn
# (order alternating), medians last. Every round's figures go to standard
# error. CALLGRIND=1: instead, each variant's proxy runs under callgrind
# twice, for 1 + 2 and 1 + 8 GETs, and the figure is the difference of the
# two runs' instructions over the 6 extra GETs (free of start-up and
# stop; RP_PING_TRIES=1200 gives the proxy a minute to start under
# valgrind).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=benches/redis_proxy_lib.sh
source benches/redis_proxy_lib.sh

bin=${1:-target/release/tpa-redis-proxy}
size=${SIZE:-$((8 << 20))}
gets=${GETS:-20}
rounds=${ROUNDS:-5}
trap rp_cleanup EXIT
rp_setup 1
if [[ -n ${CALLGRIND:-} ]]; then
    real=$(realpath "$bin")
    bin="$rp_dir/under-callgrind"
    printf '#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file=%s/cg.out %s "$@" 2>>%s/valgrind.log\n' \
        "$rp_dir" "$real" "$rp_dir" >"$bin"
    chmod +x "$bin"
fi

# The value, SET once on the backend.
ip netns exec "$rp_nb" python3 - "$size" <<'EOF'
import socket, sys
size = int(sys.argv[1])
value = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(size))
s = socket.create_connection(("10.80.0.1", 6380))
s.sendall(b"*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n" % (size, value))
assert s.recv(16) == b"+OK\r\n"
EOF

# run_gets: GETS GETs of `big` through the proxy, every reply read whole.
run_gets() {
    ip netns exec "$rp_nb" taskset -c 0 python3 - "$size" "$gets" "$rp_host" <<'EOF'
import socket, sys
size, gets, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, 22121))
want = len(b"$%d\r\n" % size) + size + 2
buf = bytearray(1 << 20)
for i in range(gets):
    s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nbig\r\n")
    got = 0
    while got < want:
        n = s.recv_into(buf)
        if n == 0:
            sys.exit("the proxy closed after %d of %d bytes of GET %d" % (got, want, i))
        if got == 0 and not buf.startswith(b"$%d\r\n" % size):
            sys.exit("GET %d: %r" % (i, bytes(buf[:60])))
        got += n
    assert got == want, (got, want)
EOF
}

# one VARIANT: sets `res` to "cpu_ms_per_get wall_ms" of one run against
# a fresh proxy (not in a subshell: rp_cleanup must see the proxy).
one() {
    local s0 s1 t0 t1
    if [[ $1 == off ]]; then
        TPA_PROXY_PASSTHROUGH=0 rp_start tpa "$bin"
    else
        rp_start tpa "$bin"
    fi
    run_gets || { cat "$rp_log" >&2; return 1; } # warm: connections open, buffers touched
    s0=$(rp_sched "$rp_proxy_pid")
    t0=$(date +%s%N)
    run_gets || { cat "$rp_log" >&2; return 1; }
    t1=$(date +%s%N)
    s1=$(rp_sched "$rp_proxy_pid")
    rp_stop_proxy
    if [[ -n ${CALLGRIND:-} ]]; then
        res=$(awk '/^totals:/ { print $2 }' "$rp_dir/cg.out")
        rm -f "$rp_dir/cg.out"
        return 0
    fi
    res=$(awk -v a="$s0" -v b="$s1" -v n="$gets" -v w=$((t1 - t0)) \
        'BEGIN { split(a, x, " "); split(b, y, " "); printf "%.3f %.1f\n", (y[1] - x[1]) / 1e6 / n, w / 1e6 }')
}

if [[ -n ${CALLGRIND:-} ]]; then
    echo "GET of $size bytes through tpa-redis-proxy on tpa (TAP), callgrind:"
    declare -A per
    for v in on off; do
        gets=2 && one "$v" && a=$res
        gets=8 && one "$v" && b=$res
        per[$v]=$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.1f", (b - a) / 6 / 1e6 }')
        echo "passthrough $v: ${per[$v]} M instructions per GET (runs of 2 and 8: $a, $b)"
    done
    awk -v on="${per[on]}" -v off="${per[off]}" 'BEGIN { printf "instructions per GET, on / off: %.3f\n", on / off }'
    exit 0
fi
declare -A cpu wall
for ((r = 0; r < rounds; r++)); do
    order=(on off)
    ((r % 2)) && order=(off on)
    for v in "${order[@]}"; do
        one "$v"
        read -r c w <<<"$res"
        cpu[$v]+="$c "
        wall[$v]+="$w "
        echo "round $r $v: ${c} per GET (ms CPU, or M instructions), ${w} ms for $gets GETs" >&2
    done
done
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
unit="ms CPU"
[[ -n ${CALLGRIND:-} ]] && unit="M instructions"
echo "GET of $size bytes through tpa-redis-proxy on tpa (TAP), $gets a run, medians of $rounds:"
for v in on off; do
    echo "passthrough $v: $(median <<<"${cpu[$v]}") $unit per GET, $(median <<<"${wall[$v]}") ms a run"
done
awk -v on="$(median <<<"${cpu[on]}")" -v off="$(median <<<"${cpu[off]}")" -v u="$unit" \
    'BEGIN { printf "%s per GET, on / off: %.3f\n", u, on / off }'
