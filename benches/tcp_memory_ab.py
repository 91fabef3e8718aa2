#!/usr/bin/env python3
"""Two builds of the tcp_memory bench against each other, by their paired
ratio to smoltcp: each run of a binary times tpa and smoltcp in
alternating blocks (TPA_TCP_PAIRED, benches/benches/tcp_memory/paired.rs)
and reports the median of its rounds' tpa/smoltcp ratios; smoltcp's code
is the same in both binaries, so the ratio cancels the machine's drift
within a run, and alternating A and B runs (the order swapped every
repetition) spreads the drift between runs over both.

    cp "$(ls -t target/release/deps/tcp_memory-* | grep -v '\\.d$' | head -1)" /tmp/a
    # ...change, rebuild (cargo bench -p tpa-benches --bench tcp_memory --no-run)...
    cp "$(ls -t target/release/deps/tcp_memory-* | grep -v '\\.d$' | head -1)" /tmp/b
    python3 benches/tcp_memory_ab.py bulk 40 8 12 /tmp/a /tmp/b
    python3 benches/tcp_memory_ab.py rr 40 4000 20 /tmp/a /tmp/b

Arguments: WORKLOAD (bulk, rr, crr), ROUNDS and BLOCK of each run (as
TPA_TCP_PAIRED), REPS (runs of each binary), A, B. Prints each binary's
median ratio (lowest and highest run), B's over A's, and in how many
repetitions B's run came out lower than A's.
"""
import os
import statistics
import subprocess
import sys


def run(binary, workload, rounds, block):
    env = dict(os.environ, TPA_TCP_PAIRED=f"{workload}:{rounds}:{block}")
    out = subprocess.run([binary], env=env, capture_output=True, text=True, check=True).stdout
    rows = [line for line in out.splitlines() if line.startswith(f"| {workload} ")]
    if not rows:
        sys.exit(f"tcp_memory_ab.py: no {workload} row from {binary}:\n{out}")
    cells = [c.strip() for c in rows[-1].strip("|").split("|")]
    return float(cells[5])  # the median ratio in a round


def main():
    if len(sys.argv) != 7:
        sys.exit(__doc__)
    workload, rounds, block, reps, a, b = sys.argv[1:]
    ratios = {a: [], b: []}
    for i in range(int(reps)):
        for binary in (a, b) if i % 2 == 0 else (b, a):
            ratios[binary].append(run(binary, workload, rounds, block))
    ra, rb = statistics.median(ratios[a]), statistics.median(ratios[b])
    lower = sum(y < x for x, y in zip(ratios[a], ratios[b]))
    print(
        f"{workload}: A {ra:.3f} ({min(ratios[a]):.3f}-{max(ratios[a]):.3f})"
        f"  B {rb:.3f} ({min(ratios[b]):.3f}-{max(ratios[b]):.3f})"
        f"  B/A {rb / ra:.3f}  B lower in {lower} of {reps}"
    )


if __name__ == "__main__":
    main()
