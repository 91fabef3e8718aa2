# Shared by benches/callgrind*.sh (sourced, not run): builds one bench
# binary and counts the instructions of one run of it under callgrind.

# shellcheck source=benches/records_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/records_lib.sh"

# Builds bench $1 of tpa-benches and sets `bin` to its executable.
callgrind_build() {
    command -v valgrind >/dev/null || {
        echo "$0: valgrind not found (apt-get install valgrind)" >&2
        exit 1
    }
    bin=$(cargo bench -p tpa-benches --bench "$1" --no-run --message-format=json 2>/dev/null |
        sed -n 's/.*"executable":"\([^"]*'"$1"'-[^"]*\)".*/\1/p' | tail -n 1)
    [[ -x "$bin" ]] || {
        echo "$0: could not build the $1 bench" >&2
        exit 1
    }
}

# Total instructions of one run of `bin` with environment variable $1 set
# to $2 (the bench's selector of variant and size).
callgrind_total() {
    local out
    out=$(env "$1=$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1) || {
        echo "$out" >&2
        echo "$0: $2 failed under valgrind" >&2
        exit 1
    }
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out"
}

# callgrind_variants VAR GROUP UNIT N1 N2 BURST VARIANT...: runs each
# variant alone (VAR=<variant>:<bursts>) for N1 and then N2 bursts of BURST
# units; prints a table of instructions per unit (the difference of the two
# totals over the extra units, free of the setup) and adds one record per
# variant to group GROUP.
callgrind_variants() {
    local var=$1 group=$2 unit=$3 n1=$4 n2=$5 burst=$6 v a b per
    shift 6
    echo "instructions per $unit, callgrind, ($n2 - $n1 bursts) x $burst ${unit}s"
    echo "| variant | instructions |"
    echo "|---|---:|"
    for v in "$@"; do
        a=$(callgrind_total "$var" "$v:$n1")
        b=$(callgrind_total "$var" "$v:$n2")
        # Three decimals below 100 per unit (a count per byte), one above.
        per=$(awk -v a="$a" -v b="$b" -v n=$(((n2 - n1) * burst)) 'BEGIN { x = (b - a) / n; printf "%.*f", (x < 100 ? 3 : 1), x }')
        records_add "$(printf '{"group": "%s", "function": "%s", "instructions_per_iter": %s, "elements": %d, "samples": 1}' \
            "$group" "$v" "$(awk -v a="$a" -v b="$b" -v n=$((n2 - n1)) 'BEGIN { printf "%.1f", (b - a) / n }')" "$burst")"
        echo "| $v | $per |"
    done
}
