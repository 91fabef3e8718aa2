#!/usr/bin/env bash
# The socket trace's and the stats' cost in CPU time, interleaved, on
# tpa's rr between two stacks over MemoryWire (benches/benches/tcp_memory.rs),
# in four variants: off; trace on; stats on, with a snapshot every 2 s of
# the hosts' virtual time (20 us a transaction, so every 100000
# transactions: about tperf's default of 100 ms of real time at this
# bench's speed, some 1.1 us a transaction); both. Three parts:
#
# 1. Runs of their own (TPA_TCP_RR_RUN=tpa:N): ROUNDS rounds of a run of
#    each variant, the order rotated every round so no variant always
#    follows another, each run's CPU time (user + system, the kernel's
#    rusage of the child) divided by its transactions: each variant's
#    median, its ratio to off's, and the lowest and highest ratio to the
#    off run of its own round. A run's setup is in it: two hosts and a
#    connection in every variant, the trace's files or the stats'
#    instance in theirs.
# 2. That setup alone: SETUP_RUNS runs of one transaction of each variant
#    (CPU time, page faults).
# 3. The four variants in one process
#    (benches/benches/tcp_memory/ops_interleaved.rs): a pair of hosts
#    each, connected and warmed up, BLOCK_ROUNDS rounds of a block of
#    BLOCK transactions on each in turn, the order rotated, each block
#    timed in thread CPU time. Blocks of a few milliseconds put every
#    variant under the same load from other processes, and no setup is
#    counted: the cost per transaction alone, with the median of the
#    per-round ratios.
#
# Instruction counts are benches/callgrind_trace.sh and
# benches/callgrind_stats.sh.
#   bash benches/ops_interleaved.sh   # ROUNDS=15 N=200000 SETUP_RUNS=20 BLOCK_ROUNDS=200 BLOCK=2000
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-15}
N=${N:-200000}
SETUP_RUNS=${SETUP_RUNS:-20}
BLOCK_ROUNDS=${BLOCK_ROUNDS:-200}
BLOCK=${BLOCK:-2000}

bin=$(cargo bench -p tpa-benches --bench tcp_memory --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*tcp_memory-[^"]*\)".*/\1/p' | tail -n 1)
[[ -x "$bin" ]] || {
    echo "$0: could not build the tcp_memory bench" >&2
    exit 1
}
run_dir=$(mktemp -d)
trap 'rm -rf "$run_dir"' EXIT

python3 - "$bin" "$run_dir" "$ROUNDS" "$N" "$SETUP_RUNS" <<'PY'
import os, resource, statistics, subprocess, sys

binary, run_dir = sys.argv[1], sys.argv[2]
rounds, n, setup_runs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
variants = {
    "off": {"TPA_TRACE": "0", "TPA_STATS": "0"},
    "trace": {"TPA_TRACE": "1", "TPA_STATS": "0"},
    "stats": {"TPA_TRACE": "0", "TPA_STATS": "1"},
    "both": {"TPA_TRACE": "1", "TPA_STATS": "1"},
}
names = list(variants)

def run(name, transactions):
    """One run: its user and system seconds, minor and major faults."""
    env = dict(os.environ, TPA_TCP_RR_RUN=f"tpa:{transactions}", TPA_RUN_DIR=run_dir,
               TPA_ID=f"interleaved-{name}", TPA_STATS_INTERVAL_MS="2000",
               **variants[name])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([binary], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{name}: the bench failed: {done.stderr}")
    return (after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime,
            after.ru_minflt - before.ru_minflt, after.ru_majflt - before.ru_majflt)

def cpu_ns_per_transaction(name):
    user, system, _, _ = run(name, n)
    return (user + system) * 1e9 / n

per = {v: [] for v in names}
ratios = {v: [] for v in names}
for r in range(rounds):
    order = names[r % len(names):] + names[:r % len(names)]
    this_round = {v: cpu_ns_per_transaction(v) for v in order}
    for v in names:
        per[v].append(this_round[v])
        ratios[v].append(this_round[v] / this_round["off"])

off = statistics.median(per["off"])
print(f"rr over MemoryWire, {n} transactions a run, {rounds} rounds of {len(names)} runs "
      "(order rotated), CPU time (user + system) per transaction")
print("| variant | median ns | ratio of medians to off | lowest, highest ratio in a round |")
print("|---|---:|---:|---:|")
for v in names:
    m = statistics.median(per[v])
    print(f"| {v} | {m:.1f} | {m / off:.3f} | {min(ratios[v]):.3f}, {max(ratios[v]):.3f} |")

# What a run costs besides its transactions: runs of one transaction.
setup = {v: [] for v in names}
for r in range(setup_runs):
    order = names[r % len(names):] + names[:r % len(names)]
    for v in order:
        setup[v].append(run(v, 1))
print()
print(f"runs of one transaction (the setup), {setup_runs} of each variant (order rotated)")
print("| variant | CPU ms, median | CPU ms, mean | system ms, median | minor faults | major faults |")
print("|---|---:|---:|---:|---:|---:|")
for v in names:
    cpu = [(u + s) * 1e3 for u, s, _, _ in setup[v]]
    sys_ms = [s * 1e3 for _, s, _, _ in setup[v]]
    minflt = statistics.median(x[2] for x in setup[v])
    majflt = statistics.median(x[3] for x in setup[v])
    print(f"| {v} | {statistics.median(cpu):.2f} | {statistics.mean(cpu):.2f} | "
          f"{statistics.median(sys_ms):.2f} | {minflt:g} | {majflt:g} |")
PY

echo
TPA_RUN_DIR=$run_dir TPA_ID=interleaved TPA_STATS_INTERVAL_MS=2000 \
    TPA_TCP_RR_INTERLEAVED="$BLOCK_ROUNDS:$BLOCK" "$bin"
