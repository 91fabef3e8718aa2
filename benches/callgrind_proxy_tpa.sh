#!/usr/bin/env bash
# User-space instructions per request of the whole tpa-redis-proxy process
# on tpa's stack over a TAP device (the `tpa` variant of
# benches/redis_proxy.sh: its topology, four redis-servers), counted by
# callgrind: the TCP stack, the pipeline and the port, the runtime
# (apps/redis-proxy/src/tpa/) and the engine; not the kernel's work (the
# TAP's read and write per frame), which callgrind does not see.
#   sudo bash benches/callgrind_proxy_tpa.sh
#
# The release build runs under `valgrind --tool=callgrind` (about 50 times
# slower, so the pool's timeout is raised to 60 s); redis-benchmark (50
# clients, keys drawn from a million) drives GET and SET, one request in
# flight per client and 16 (`-P 16`). Each variant runs twice, N and then
# 3N requests, the counters zeroed before and dumped after each run
# (callgrind_control); the difference of the two totals divided by 2N is
# the count per request, free of start-up and of the 50 connections'
# set-up. Every thread is counted. Work done per unit of time rather than
# per request is inflated as much as callgrind slows the proxy down: the
# instance's snapshot (every stats.interval_ms, 100 ms by default, about
# half a million instructions with 54 sockets) would be a fifth of the
# count, so it runs every STATS_INTERVAL_MS (60000) here; the stats
# port's look every 5 ms, the main thread's 20 ms sleeps and the timers
# still count (a few per cent).
#
# N (2000) and N_P16 (16000) are the requests of the first run of each;
# each variant runs ROUNDS (3) times and the median is kept (the counts
# vary by 1 to 3 % from run to run: how requests fall into loop turns);
# OUT (target/bench-results/callgrind-proxy-tpa) keeps the dumps;
# TOP (30) functions of the 3N run of PROFILE (get16) are printed,
# exclusive and inclusive (callgrind_annotate). TPA_ARGS adds flags to
# the proxy. Writes target/bench-results/proxy-tpa-instructions.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    echo "callgrind_proxy_tpa.sh: $*" >&2
    exit 1
}
[[ $(id -u) -eq 0 ]] || die "run as root: it creates network namespaces and a TAP"
for c in valgrind:valgrind callgrind_control:valgrind callgrind_annotate:valgrind \
    redis-server:redis-server redis-benchmark:redis-tools redis-cli:redis-tools taskset:util-linux; do
    command -v "${c%%:*}" >/dev/null || die "${c%%:*} not found (apt-get install ${c#*:})"
done
(($(nproc) >= 2)) || die "needs 2 cores: the proxy on one, the load and the backends on the other"

N=${N:-2000}
ROUNDS=${ROUNDS:-3}
export TPA_STATS_INTERVAL_MS=${STATS_INTERVAL_MS:-60000}
N_P16=${N_P16:-16000}
TOP=${TOP:-30}
PROFILE=${PROFILE:-get16}
target=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$target/bench-results/callgrind-proxy-tpa}

cargo build --release -p tpa-redis-proxy >&2 || die "could not build tpa-redis-proxy"
real="$(cd "$target" && pwd)/release/tpa-redis-proxy"
[[ -x $real ]] || die "no $real"

# shellcheck source=benches/records_lib.sh
. benches/records_lib.sh
# shellcheck source=benches/redis_proxy_lib.sh
. benches/redis_proxy_lib.sh
# The pool's timeout: 60 s rather than 2 s (the proxy is much slower under
# callgrind); valgrind's start takes seconds (a minute of PINGs at most).
eval "$(declare -f rp_config | sed 's/timeout: 2000/timeout: 60000/')"
RP_PING_TRIES=${RP_PING_TRIES:-1200}

trap rp_cleanup EXIT
rp_setup 4
rm -rf "$OUT"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
# The proxy as rp_start runs it (taskset, ip netns exec), under callgrind.
wrapper="$rp_dir/tpa-redis-proxy"
cat >"$wrapper" <<EOF
#!/bin/sh
case "\$1" in --help) exec "$real" "\$@" ;; esac
exec valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out" "$real" "\$@"
EOF
chmod +x "$wrapper"
rp_start tpa "$wrapper"
# valgrind's pid is the proxy's (exec).
pid=$rp_proxy_pid

# run NAME TEST PIPELINE REQUESTS: zero the counters, run the load, dump;
# prints the run's total instructions (every thread's).
run() {
    local name=$1 before after dump
    callgrind_control -z "$pid" >/dev/null || die "callgrind_control -z $pid failed"
    rp_measure "$2" "$3" "$4" >/dev/null || die "redis-benchmark $2 -P $3 -n $4 failed"
    before=$(find "$OUT" -name 'callgrind.out*' | sort)
    callgrind_control --dump="$name" "$pid" >/dev/null || die "callgrind_control --dump $pid failed"
    after=$(find "$OUT" -name 'callgrind.out*' | sort)
    # The dump's files (a file per thread when threads are separated).
    dump=$(comm -13 <(echo "$before") <(echo "$after"))
    [[ -n $dump ]] || die "no dump after $name"
    mkdir -p "$OUT/$name"
    # shellcheck disable=SC2086
    mv $dump "$OUT/$name/"
    cat "$OUT/$name"/* | sed -n 's/^totals: \([0-9]*\).*/\1/p' | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

echo "tpa-redis-proxy on TAP (whole process, user space), instructions per request, callgrind, median of $ROUNDS"
echo "| variant | requests | per request, each round | median |"
echo "|---|---:|---|---:|"
for v in get1 set1 get16 set16; do
    test=${v//[0-9]/}
    pipeline=${v//[a-z]/}
    n=$N
    ((pipeline > 1)) && n=$N_P16
    pers=()
    for ((r = 1; r <= ROUNDS; r++)); do
        a=$(run "$v-$r-n" "$test" "$pipeline" "$n")
        b=$(run "$v-$r-3n" "$test" "$pipeline" $((3 * n)))
        pers+=("$(awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN { printf "%.0f", (b - a) / (2 * n) }')")
    done
    per=$(printf '%s\n' "${pers[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
    records_add "$(printf '{"group": "instructions/proxy_tpa", "function": "%s", "instructions_per_iter": %s, "elements": 1, "samples": %d}' "$v" "$per" "$ROUNDS")"
    echo "| $v | $n, $((3 * n)) | ${pers[*]} | $per |"
done
rp_stop_proxy
records_write proxy-tpa-instructions

# annotate INCLUSIVE FILE: the top functions, paths shortened (the thread's
# frames down to the worker's closure, the whole count each, left out).
annotate() {
    callgrind_annotate --inclusive="$1" --threshold=100 --auto=no "$2" |
        sed -n '/file:function/,$p' |
        sed "s|/rustc/[0-9a-f]*/library/||; s| \\[/[^]]*\\]\$||; s|$PWD/||; s|/root/.cargo/registry/src/[^/]*/||" |
        awk -v top="$TOP" 'NR > 2 && !/clone\.S|start_thread|thread_start|vtable\.shim|__rust_begin_short_backtrace/ && ++n <= top'
}

profile=$(find "$OUT/$PROFILE-1-3n" -type f | head -n 1)
echo
echo "top $TOP functions of $PROFILE (first round's 3N run), exclusive:"
annotate no "$profile"
echo
echo "top $TOP functions of $PROFILE (first round's 3N run), inclusive:"
annotate yes "$profile"
