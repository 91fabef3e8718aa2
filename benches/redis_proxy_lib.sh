# Shared by benches/redis_proxy.sh and apps/redis-proxy/run-demo.sh
# (sourced from the repository root, not run): the topology of the redis
# proxy benchmark, the proxies it starts, and one redis-benchmark
# measurement with the proxy's CPU time around it.
#
# The topology: namespace `rp_nb` holds the redis-servers (BACKENDS of them,
# ports 6380 and up, on every address) and redis-benchmark; its kernel has
# 10.80.0.1/24 on a TAP device `rpt0`, whose other side is tpa's stack in
# tpa-redis-proxy (10.80.0.2, the `tpa` variant), and 10.81.0.1/24 on a veth
# `rpv0` whose peer `rpv1` (10.81.0.2/24) lives in namespace `rp_np`, where
# a proxy on the kernel's sockets runs (the `kernel` variant, tpa-redis-proxy
# on the kernel's sockets, and `nutcracker`). Either way the client's
# requests and the backends' replies cross a link between the load's kernel
# and the proxy, and every proxy reads the same YAML pool (only the
# addresses differ). `direct` is redis-benchmark against one redis-server,
# the cost of a request without a proxy.
#
# tpa's stack on other ports, each over a veth pair of its own between the
# two namespaces: `af_xdp`, tpa-redis-proxy on AF_XDP on `rpx1`, in rp_np,
# beside the kernel there, which has the address 10.82.0.2/24 that the
# proxy shares (rp_nb's end `rpx0` is 10.82.0.1/24); and, over `rpd0`
# (10.83.0.1/24, rp_nb) and `rpd1` (no address: its frames are tpa's,
# 10.83.0.2), `af_packet` (tpa's AF_PACKET port on rpd1) and `dpdk`
# (DPDK's net_af_packet vdev on rpd1, EAL on core 1 in ordinary memory;
# the binary built with the `dpdk` feature). On these veths rp_nb's end
# finishes its checksums itself (transmit checksum offload off: AF_XDP
# and net_af_packet hand over no checksum state with a frame, and a
# segment left with a partial checksum is dropped as corrupt) and sends
# one segment per frame (gso_max_segs 1). No receive steering on any link:
# a frame a process sends into a TAP or a veth is received by the other
# side's kernel in the sender's softirq on the sender's core, for every
# variant alike (steering it to core 0, rps_cpus, cost the proxy an
# inter-processor interrupt per batch, a write to an MSR that traps to the
# hypervisor on this VM: 17 % of tpa's CPU on AF_XDP in a trial).
#
# Cores: the proxy runs on core 1 (`taskset -c 1`), the redis-servers and
# redis-benchmark on core 0, so the proxy has a core to itself as far as
# the benchmark goes (other work on the machine is not fenced off). NICE,
# when set, runs the proxies, the redis-servers and redis-benchmark at
# that nice value (say -10: a larger share of each core against the
# machine's other work).

rp_port=22121
rp_first_backend=6380
rp_proxy_pid=
rp_backend_pids=()
rp_pre=(taskset)
[[ -n ${NICE:-} ]] && rp_pre=(nice -n "$NICE" taskset)

# rp_setup BACKENDS: creates both namespaces, the TAP and the veth, and
# starts BACKENDS redis-servers on core 0; sets rp_nb and rp_np, and a
# temporary directory rp_dir for configs and logs. rp_cleanup undoes it.
rp_setup() {
    local n=$1 i
    rp_backends=$n
    rp_nb="tpa-rpb-$$-0"
    rp_np="tpa-rpp-$$-1"
    rp_dir="$(mktemp -d)"
    ip netns add "$rp_nb"
    ip netns add "$rp_np"
    ip -n "$rp_nb" link set lo up
    ip -n "$rp_np" link set lo up
    ip -n "$rp_nb" tuntap add dev rpt0 mode tap
    ip -n "$rp_nb" addr add 10.80.0.1/24 dev rpt0
    ip -n "$rp_nb" link set rpt0 up
    ip -n "$rp_nb" link add rpv0 type veth peer name rpv1
    ip -n "$rp_nb" link set rpv1 netns "$rp_np"
    ip -n "$rp_nb" addr add 10.81.0.1/24 dev rpv0
    ip -n "$rp_np" addr add 10.81.0.2/24 dev rpv1
    ip -n "$rp_nb" link set rpv0 up
    ip -n "$rp_np" link set rpv1 up
    ip -n "$rp_nb" link add rpx0 type veth peer name rpx1
    ip -n "$rp_nb" link set rpx1 netns "$rp_np"
    ip -n "$rp_nb" addr add 10.82.0.1/24 dev rpx0
    ip -n "$rp_np" addr add 10.82.0.2/24 dev rpx1
    ip -n "$rp_nb" link add rpd0 type veth peer name rpd1
    ip -n "$rp_nb" link set rpd1 netns "$rp_np"
    ip -n "$rp_nb" addr add 10.83.0.1/24 dev rpd0
    ip netns exec "$rp_np" sysctl -q -w net.ipv6.conf.rpd1.disable_ipv6=1
    for i in rpx0 rpd0; do
        ip -n "$rp_nb" link set dev "$i" gso_max_segs 1
        ip netns exec "$rp_nb" ethtool -K "$i" tx off >/dev/null
        ip -n "$rp_nb" link set "$i" up
    done
    ip -n "$rp_np" link set rpx1 up
    ip -n "$rp_np" link set rpd1 up
    for ((i = 0; i < n; i++)); do
        ip netns exec "$rp_nb" "${rp_pre[@]}" -c 0 redis-server --port $((rp_first_backend + i)) \
            --bind 0.0.0.0 --protected-mode no --save '' --appendonly no \
            --dir "$rp_dir" --logfile "$rp_dir/redis-$i.log" &
        rp_backend_pids+=($!)
    done
    for ((i = 0; i < n; i++)); do
        rp_wait_ping 10.80.0.1 $((rp_first_backend + i)) "${rp_backend_pids[$i]}" || {
            cat "$rp_dir/redis-$i.log" >&2
            echo "redis-server $i did not answer PING" >&2
            return 1
        }
    done
}

rp_cleanup() {
    local p
    rp_stop_proxy
    for p in "${rp_backend_pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rp_backend_pids=()
    [[ -n ${rp_nb:-} ]] && ip netns del "$rp_nb" 2>/dev/null || true
    [[ -n ${rp_np:-} ]] && ip netns del "$rp_np" 2>/dev/null || true
    [[ -n ${rp_dir:-} ]] && rm -rf "$rp_dir"
    [[ -n ${rp_np:-} ]] && rm -rf "/var/run/dpdk/$rp_np"
    rp_nb= rp_np= rp_dir=
}

# rp_wait_ping HOST PORT PID: until redis-cli's PING from rp_nb gets PONG
# (every 50 ms, 10 s at most); fails sooner when PID ends.
rp_wait_ping() {
    local host=$1 port=$2 pid=$3
    for _ in $(seq "${RP_PING_TRIES:-200}"); do
        [[ $(ip netns exec "$rp_nb" redis-cli -h "$host" -p "$port" ping 2>/dev/null) == PONG ]] && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# rp_config LISTEN BACKEND_HOST: a nutcracker pool (YAML) on stdout, the
# same for every proxy: fnv1a_64 over ketama as twemproxy's README
# suggests, one connection per backend (nutcracker's default), auto
# ejection off, a 2 s timeout.
rp_config() {
    local i
    cat <<EOF
bench:
  listen: $1
  hash: fnv1a_64
  distribution: ketama
  timeout: 2000
  redis: true
  auto_eject_hosts: false
  servers:
EOF
    for ((i = 0; i < rp_backends; i++)); do
        echo "   - $2:$((rp_first_backend + i)):1 r$i"
    done
}

# rp_tpa_available BIN: whether this tpa-redis-proxy can run on tpa's stack
# (its --port flag; the stack is then chosen with --stack).
rp_tpa_available() {
    "$1" --help 2>/dev/null | grep -q -- '--port'
}

# rp_start VARIANT BIN: starts the proxy of VARIANT (tpa on TAP, af_packet,
# af_xdp, dpdk: tpa-redis-proxy on tpa's stack over that port; kernel,
# nutcracker; direct starts nothing) on core 1 and waits until it answers
# PING; sets rp_host, rp_target (host:port the load connects to) and
# rp_proxy_pid. BIN is tpa-redis-proxy. TPA_ARGS adds flags to the
# variants on tpa's stack; a variant on tpa's stack named with a suffix,
# `af_xdp+spin`, runs with that idle policy (`--idle spin`), so that two
# policies can be compared in one run.
rp_start() {
    local variant=${1%%+*} bin=$2 conf="$rp_dir/$1.yml" cmd idle=()
    rp_log="$rp_dir/$1.log"
    [[ $1 == *+* ]] && idle=(--idle "${1#*+}")
    case $variant in
    direct)
        rp_host=10.80.0.1 rp_target_port=$rp_first_backend rp_proxy_pid=
        return 0
        ;;
    tpa)
        rp_host=10.80.0.2
        rp_config "$rp_host:$rp_port" 10.80.0.1 >"$conf"
        # shellcheck disable=SC2086
        cmd=(ip netns exec "$rp_nb" "${rp_pre[@]}" -c 1 "$bin" -c "$conf" -s 22222 -a 127.0.0.1
            --stack tpa --port tap:rpt0 --ip 10.80.0.2/24 "${idle[@]}" ${TPA_ARGS:-})
        ;;
    af_packet | dpdk)
        rp_host=10.83.0.2
        rp_config "$rp_host:$rp_port" 10.83.0.1 >"$conf"
        # The two share rpd1 (and its MAC): forget what rp_nb learned.
        ip -n "$rp_nb" neigh flush dev rpd0
        cmd=(ip netns exec "$rp_np" "${rp_pre[@]}" -c 1 "$bin" -c "$conf" -s 22222 -a 127.0.0.1
            --stack tpa --ip 10.83.0.2/24)
        if [[ $variant == af_packet ]]; then
            # shellcheck disable=SC2086
            cmd+=(--port af_packet:rpd1 "${idle[@]}" ${TPA_ARGS:-})
        else
            # shellcheck disable=SC2086
            cmd+=(--port dpdk:net_af_packet0 "${idle[@]}" ${TPA_ARGS:-} -- -l 1 --no-huge --no-pci --no-shconf
                -m 512 --log-level '*:error' --vdev net_af_packet0,iface=rpd1 --file-prefix "$rp_np")
        fi
        ;;
    af_xdp)
        rp_host=10.82.0.2
        rp_config "$rp_host:$rp_port" 10.82.0.1 >"$conf"
        # shellcheck disable=SC2086
        cmd=(ip netns exec "$rp_np" "${rp_pre[@]}" -c 1 "$bin" -c "$conf" -s 22222 -a 127.0.0.1
            --stack tpa --port af_xdp:rpx1 --ip 10.82.0.2/24 "${idle[@]}" ${TPA_ARGS:-})
        ;;
    kernel)
        rp_host=10.81.0.2
        rp_config "$rp_host:$rp_port" 10.81.0.1 >"$conf"
        cmd=(ip netns exec "$rp_np" "${rp_pre[@]}" -c 1 "$bin" -c "$conf" -s 22222 -a 127.0.0.1)
        # A binary that also runs on tpa picks the stack by the addresses:
        # these are not loopback, so ask for the kernel's sockets.
        if "$bin" --help 2>/dev/null | grep -q -- '--stack'; then
            cmd+=(--stack kernel)
        fi
        ;;
    nutcracker)
        rp_host=10.81.0.2
        rp_config "$rp_host:$rp_port" 10.81.0.1 >"$conf"
        cmd=(ip netns exec "$rp_np" "${rp_pre[@]}" -c 1 nutcracker -c "$conf" -s 22222 -a 127.0.0.1)
        ;;
    *)
        echo "unknown proxy variant $variant (tpa, af_packet, af_xdp, dpdk, kernel, nutcracker, direct)" >&2
        return 1
        ;;
    esac
    rp_target_port=$rp_port
    "${cmd[@]}" >"$rp_log" 2>&1 &
    rp_proxy_pid=$!
    rp_wait_ping "$rp_host" "$rp_port" "$rp_proxy_pid" || {
        cat "$rp_log" >&2
        echo "the $1 proxy did not answer PING on $rp_host:$rp_port: ${cmd[*]}" >&2
        return 1
    }
}

rp_stop_proxy() {
    if [[ -n ${rp_proxy_pid:-} ]] && kill -0 "$rp_proxy_pid" 2>/dev/null; then
        kill -TERM "$rp_proxy_pid" 2>/dev/null || true
        wait "$rp_proxy_pid" 2>/dev/null || true
    fi
    rp_proxy_pid=
}

# rp_sched PID: "on-CPU waiting user system" of every thread of PID so far
# (nanoseconds, nanoseconds, ticks, ticks)
# (the first two fields of /proc/PID/task/*/schedstat: time on a CPU, user
# and system, what getrusage counts, at nanosecond resolution; and time
# runnable but waiting for a CPU, which on a shared machine says whether
# the proxy lacked work or lacked a core).
rp_sched() {
    local sched
    sched=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ r += $1; w += $2 } END { printf "%.0f %.0f", r, w }')
    # and "user system" ticks (fields 14 and 15 of /proc/PID/stat, after
    # the command's name, which may hold spaces)
    echo "$sched $(sed 's/.*) //' /proc/"$1"/stat 2>/dev/null | awk '{ print $12, $13 }')"
}

# rp_idle: "idle0 total0 idle1 total1", ticks of cores 0 and 1 so far
# (/proc/stat; idle counts iowait too).
rp_idle() {
    awk '$1 == "cpu0" || $1 == "cpu1" { printf "%.0f %.0f ", $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 } END { print "" }' /proc/stat
}

# rp_measure TEST PIPELINE REQUESTS: redis-benchmark (core 0, 50 clients,
# keys drawn from a million, `-e` so an error reply is seen) runs TEST (get
# or set) REQUESTS times at PIPELINE requests per client in flight against
# the proxy started last. Prints "rps p50_ms p99_ms cpu_us_per_request
# cpu_percent wait_percent idle1_percent idle0_percent system_percent":
# the proxy's CPU time per request, its time on a CPU and waiting for one
# as percentages of the run's wall time, how idle cores 1 and 0 were, and
# the share of the proxy's CPU time spent in the kernel ("-" for direct).
# Fails on an error reply or a failed run. THREADS (1) sets
# redis-benchmark's --threads.
rp_measure() {
    local test=$1 pipeline=$2 n=$3 out s0="0 0 0 0" s1="0 0 0 0" i0 i1 t0 t1 line
    out="$rp_dir/bench.out"
    [[ -n $rp_proxy_pid ]] && s0=$(rp_sched "$rp_proxy_pid")
    i0=$(rp_idle)
    t0=$(date +%s%N)
    if ! ip netns exec "$rp_nb" "${rp_pre[@]}" -c 0 redis-benchmark -h "$rp_host" -p "$rp_target_port" \
        -c 50 -n "$n" -r 1000000 -P "$pipeline" --threads "${THREADS:-1}" -t "$test" -e --csv \
        >"$out" 2>"$out.err"; then
        cat "$out" "$out.err" >&2
        echo "redis-benchmark $test -P $pipeline failed" >&2
        return 1
    fi
    t1=$(date +%s%N)
    i1=$(rp_idle)
    [[ -n $rp_proxy_pid ]] && s1=$(rp_sched "$rp_proxy_pid")
    if grep -qi 'error' "$out"; then
        grep -i -m 5 'error' "$out" >&2
        echo "redis-benchmark $test -P $pipeline through $rp_host:$rp_target_port got error replies" >&2
        return 1
    fi
    # "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    line=$(grep -i "^\"$test\"" "$out" | tr -d '"') || {
        cat "$out" "$out.err" >&2
        echo "redis-benchmark printed no $test line" >&2
        return 1
    }
    awk -F, -v n="$n" -v s0="$s0" -v s1="$s1" -v i0="$i0" -v i1="$i1" -v t0="$t0" -v t1="$t1" \
        -v proxy="${rp_proxy_pid:-}" '{
        split(s0, a, " "); split(s1, b, " "); split(i0, c, " "); split(i1, d, " ")
        wall = t1 - t0
        idle1 = (d[3] - c[3]) * 100 / (d[4] - c[4] + (d[4] == c[4]))
        idle0 = (d[1] - c[1]) * 100 / (d[2] - c[2] + (d[2] == c[2]))
        ticks = b[3] - a[3] + b[4] - a[4]
        if (proxy == "") printf "%s %s %s - - - %.0f %.0f -\n", $2, $5, $7, idle1, idle0
        else printf "%s %s %s %.3f %.1f %.1f %.0f %.0f %.0f\n", $2, $5, $7, (b[1] - a[1]) / 1000 / n,
            (b[1] - a[1]) * 100 / wall, (b[2] - a[2]) * 100 / wall, idle1, idle0,
            (b[4] - a[4]) * 100 / (ticks + (ticks == 0))
    }' <<<"$line"
}
