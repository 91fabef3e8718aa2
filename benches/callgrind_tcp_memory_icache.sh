#!/usr/bin/env bash
# Instruction-cache misses and hot code per rr transaction of the tcp_memory
# bench (benches/benches/tcp_memory.rs), for each stack: what makes tpa's
# rr time lag its instruction count (doc/benchmarks.md, "TCP over an
# in-memory wire"). This machine has no hardware counters, so valgrind
# simulates the caches: cachegrind with a 32 KiB 8-way instruction cache
# of 64-byte lines (and the same data cache), exact and repeatable.
#   bash benches/callgrind_tcp_memory_icache.sh
#   STACKS=tpa bash benches/callgrind_tcp_memory_icache.sh   # one stack
# Each stack runs RR_N1 and then RR_N2 transactions alone
# (TPA_TCP_RR_RUN=<stack>:<n>); the difference over the extra transactions
# is free of the setup. Prints per transaction: instructions and I1 misses
# (cachegrind), and the hot lines: 64-byte lines of code holding an
# instruction executed at least once every two transactions (callgrind's
# per-instruction counts), to hold against the cache's 512 lines.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck disable=SC2206 # a list of words
STACKS=(${STACKS:-tpa smoltcp})
RR_N1=${RR_N1:-1000}
RR_N2=${RR_N2:-3000}

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build tcp_memory

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export TPA_RUN_DIR=$out

echo "per rr transaction, ($RR_N2 - $RR_N1) transactions"
echo "| stack | instructions | I1 misses | hot lines |"
echo "|---|---:|---:|---:|"
for s in "${STACKS[@]}"; do
    for n in "$RR_N1" "$RR_N2"; do
        TPA_TCP_RR_RUN=$s:$n valgrind --tool=cachegrind --cache-sim=yes \
            --I1=32768,8,64 --D1=32768,8,64 --LL=8388608,16,64 \
            --cachegrind-out-file="$out/cg.$n" "$bin" >"$out/cg.$n.log" 2>&1 || {
            cat "$out/cg.$n.log" >&2
            exit 1
        }
        TPA_TCP_RR_RUN=$s:$n valgrind --tool=callgrind --dump-instr=yes \
            --compress-pos=no --compress-strings=no \
            --callgrind-out-file="$out/cl.$n" "$bin" >"$out/cl.$n.log" 2>&1 || {
            cat "$out/cl.$n.log" >&2
            exit 1
        }
    done
    python3 - "$out" "$s" "$RR_N1" "$RR_N2" <<'PY'
import sys

out, stack, n1, n2 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
extra = n2 - n1


def summary(path):
    events = None
    for line in open(path):
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith("summary:"):
            return dict(zip(events, map(int, line.split()[1:])))
    raise SystemExit(f"{path}: no summary")


def per_instruction(path):
    """Self cost per instruction address (the lines after `calls=` are a
    call's inclusive cost and are left out)."""
    cost, after_call = {}, False
    for line in open(path):
        if line.startswith("calls="):
            after_call = True
            continue
        if line.startswith("0x"):
            if not after_call:
                f = line.split()
                if len(f) >= 3:
                    addr = int(f[0], 16)
                    cost[addr] = cost.get(addr, 0) + int(f[-1])
        after_call = False
    return cost


a, b = summary(f"{out}/cg.{n1}"), summary(f"{out}/cg.{n2}")
ir = (b["Ir"] - a["Ir"]) / extra
i1 = (b["I1mr"] - a["I1mr"]) / extra
x, y = per_instruction(f"{out}/cl.{n1}"), per_instruction(f"{out}/cl.{n2}")
lines = {}
for addr, c in y.items():
    line = addr >> 6
    lines[line] = max(lines.get(line, 0), c - x.get(addr, 0))
hot = sum(1 for c in lines.values() if 2 * c >= extra)
print(f"| {stack} | {ir:.1f} | {i1:.1f} | {hot} |")
PY
done
