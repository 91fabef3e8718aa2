#!/usr/bin/env bash
# Memory per idle TCP connection: two tpa stacks over a MemoryWire open
# 10^5, then 10^6 established connections and leave them idle; prints the
# fixed size of a connection's parts and the process's RSS before and after
# each count, per connection and per end (both stacks run in the process).
#
#   bash benches/tcp_memory.sh                 # 100000 and 1000000
#   bash benches/tcp_memory.sh 10000 50000     # other counts
#
# Needs about 2.5 GiB of memory for 10^6; takes under a minute.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
counts=("$@")
((${#counts[@]})) || counts=(100000 1000000)
cargo build --release -p tpa-benches --bin tcp_idle_memory
target=${CARGO_TARGET_DIR:-target}
printf '$ bash benches/tcp_memory.sh %s\n' "${counts[*]}"
"$target/release/tcp_idle_memory" "${counts[@]}"
