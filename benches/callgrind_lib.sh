# Shared by benches/callgrind*.sh (sourced, not run): builds one bench
# binary and counts the instructions of one run of it under callgrind.

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
