# Shared by the bench scripts (sourced, not run): collects result records
# and writes them where benches/report.py reads them,
# target/bench-results/<name>.json (CARGO_TARGET_DIR respected).

records=()

# records_add JSON: one record (an object in report.py's format).
records_add() { records+=("$1"); }

# records_write NAME: writes every record added so far to NAME.json and
# says where.
records_write() {
    local dir="${CARGO_TARGET_DIR:-target}/bench-results" i sep
    mkdir -p "$dir"
    {
        echo "["
        for i in "${!records[@]}"; do
            sep=","
            ((i == ${#records[@]} - 1)) && sep=""
            echo "  ${records[$i]}$sep"
        done
        echo "]"
    } >"$dir/$1.json"
    echo "(written to $dir/$1.json)"
}
