# Shared by benches/tcp_tso_tap.sh, tcp_tso_veth.sh and tcp_tso_dpdk.sh
# (sourced, not run): the frame those three share. Each runs a kernel
# tperf server in a namespace and a tpa tperf client against it in
# several variants (a port's offloads on or off), every variant once per
# round with the order rotating, and prints medians of Gbit/s and CPU
# nanoseconds per byte (client + server: tperf's own getrusage on each
# side) with their ratios to the first variant.
#
# The script that sources this file sets, before `tso_main`:
#   tso_name      its file name, for messages;
#   tso_needs     what it creates, for the "run as root" message;
#   tso_features  extra `cargo build` arguments (may be empty);
#   variants      the variant names, the baseline first;
# and defines:
#   tso_setup              creates its namespaces and devices (the
#                          cleanup removes every namespace in `tso_netns`);
#   tso_measure VARIANT TEST
#                          runs one client, its JSON report to "$out";
#   tso_title TEST         the table's heading line;
# and may set `tso_label` (the table's first column, default "port") and
# `tso_extra_cleanup` (more paths to remove on exit).
# It also sets `tso_server_ns` and `tso_server_addr` for the kernel server.

if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
# shellcheck source=benches/background.sh
. benches/background.sh

rounds="${ROUNDS:-5}"
duration="${DURATION:-3}"
tests="${TESTS:-write read}"
tso_netns=()
tso_extra_cleanup=()
tso_label=port
server_pid=

# tso_fail TEXT: the script's name and TEXT on stderr, then exit 1.
tso_fail() {
    echo "$tso_name: $*" >&2
    exit 1
}

tso_stop_server() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    server_pid=
}

tso_cleanup() {
    tso_stop_server
    local ns
    for ns in "${tso_netns[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$log" "$out" "${tso_extra_cleanup[@]}"
}

# tso_figures TEST: Gbit/s (of the test's direction) and CPU ns per byte,
# from the client's JSON report in $out.
tso_figures() {
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

# tso_median COLUMN "a b;a b;…": the median of that column over the rounds.
tso_median() {
    tr ';' '\n' <<<"$2" | awk -v c="$1" 'NF { print $c }' | sort -g |
        awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# tso_client_failed VARIANT TEST: the client's and the server's output,
# then exit 1.
tso_client_failed() {
    cat "$out" >&2
    echo "$tso_name: $1 $2 failed; the server's output:" >&2
    cat "$log" >&2
    exit 1
}

# tso_main: checks, builds, sets up, runs every round, prints the tables.
tso_main() {
    [[ $(id -u) -eq 0 ]] || tso_fail "run as root: it creates $tso_needs"
    echo "==> cargo build --release -p tpa-tperf $tso_features" >&2
    # shellcheck disable=SC2086 # tso_features is a list of words
    cargo build --release -q -p tpa-tperf $tso_features
    bin="${CARGO_TARGET_DIR:-target}/release/tpa-tperf"
    log="$(mktemp)"
    out="$(mktemp)"
    trap tso_cleanup EXIT

    tso_setup
    start_logged "$log" ip netns exec "$tso_server_ns" "$bin" server --kernel -l "$tso_server_addr"
    server_pid=$started_pid
    wait_for_line "$server_pid" "$log" "tpa-tperf server: listening" || {
        cat "$log" >&2
        tso_fail "the kernel server did not start"
    }

    local -A results
    local round first v t line
    for round in $(seq "$rounds"); do
        first=$(((round - 1) % ${#variants[@]}))
        local order=("${variants[@]:first}" "${variants[@]:0:first}")
        for v in "${order[@]}"; do
            for t in $tests; do
                tso_measure "$v" "$t"
                line=$(tso_figures "$t")
                echo "round $round $v $t: $line" >&2
                results[$v,$t]+="$line;"
            done
        done
    done

    local base=${variants[0]} g0 c0 g c
    echo
    for t in $tests; do
        tso_title "$t"
        echo "| $tso_label | Gbit/s | / $base | CPU ns/byte | / $base |"
        echo "|---|---:|---:|---:|---:|"
        g0=$(tso_median 1 "${results[$base,$t]}")
        c0=$(tso_median 2 "${results[$base,$t]}")
        for v in "${variants[@]}"; do
            g=$(tso_median 1 "${results[$v,$t]}")
            c=$(tso_median 2 "${results[$v,$t]}")
            awk -v v="$v" -v g="$g" -v c="$c" -v g0="$g0" -v c0="$c0" \
                'BEGIN { printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", v, g, g / g0, c, c / c0 }'
        done
        echo
    done
}
