# Shared by benches/callgrind_stats.sh and callgrind_trace.sh (sourced,
# not run): the rr and bulk runs of the tcp_memory bench under callgrind,
# N1 and N2 of each (the difference of their counts is free of the
# setup); builds the bench and makes a run directory for its instances,
# removed at exit.

RR_N1=${RR_N1:-1000}
RR_N2=${RR_N2:-3000}
BULK_N1=${BULK_N1:-4}   # MiB
BULK_N2=${BULK_N2:-12}

# shellcheck source=benches/callgrind_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/callgrind_lib.sh"
callgrind_build tcp_memory

TPA_RUN_DIR=$(mktemp -d)
export TPA_RUN_DIR
trap 'rm -rf "$TPA_RUN_DIR"' EXIT

# Sets var, n1, n2 and unit for workload $1: rr (per transaction) or
# bulk (per byte; N in MiB).
tcp_memory_workload() {
    if [[ $1 == rr ]]; then
        var=TPA_TCP_RR_RUN n1=$RR_N1 n2=$RR_N2 unit=1
    else
        var=TPA_TCP_BULK_RUN n1=$BULK_N1 n2=$BULK_N2 unit=$((1 << 20))
    fi
}

# Prints the instructions per unit of the workload tcp_memory_workload
# set, in the environment as it is: the N2 run's count less the N1
# run's, over the extra units (three decimals below 100, one above).
tcp_memory_per_unit() {
    local a b
    a=$(callgrind_total "$var" "tpa:$n1") || exit 1
    b=$(callgrind_total "$var" "tpa:$n2") || exit 1
    awk -v a="$a" -v b="$b" -v n=$(((n2 - n1) * unit)) 'BEGIN { x = (b - a) / n; printf "%.*f", (x < 100 ? 3 : 1), x }'
}
