#!/usr/bin/env bash
# Instructions per byte (bulk) and per transaction (rr, crr) of TCP between
# two stacks over an in-memory wire (benches/benches/tcp_memory.rs), for
# each stack: tpa's two pipelines over MemoryWire and smoltcp's two
# interfaces over the bench's frame wire; counted by callgrind (exact and repeatable, unlike time on a shared
# machine).
#   bash benches/callgrind_tcp_memory.sh
#   STACKS=smoltcp bash benches/callgrind_tcp_memory.sh   # one stack
# Each workload of each stack runs alone (TPA_TCP_BULK_RUN=<stack>:<MiB>,
# TPA_TCP_RR_RUN=<stack>:<transactions>, TPA_TCP_CRR_RUN=<stack>:<connections>)
# for N1 and then N2 iterations; the difference of the two totals divided
# by the extra bytes or transactions is the count per byte or transaction,
# free of the setup (hosts, handshake, ARP). Writes
# target/bench-results/tcp-memory-instructions.json for benches/report.py
# (tables `tcp-memory-bulk-instructions` and `tcp-memory-rr-instructions`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck disable=SC2206 # a list of words
STACKS=(${STACKS:-tpa smoltcp})
BULK_N1=${BULK_N1:-4}   # MiB
BULK_N2=${BULK_N2:-12}
RR_N1=${RR_N1:-1000}    # transactions
RR_N2=${RR_N2:-3000}
CRR_N1=${CRR_N1:-200}   # transactions: connect, request, response, close
CRR_N2=${CRR_N2:-600}

# Valgrind counts a `rep movsb` once per byte it moves, and glibc's memcpy
# uses it for copies above a threshold (4 KiB under valgrind): smoltcp's
# big slice copies would count a byte as an instruction (bulk 4.659 per
# byte instead of 3.755), where the hardware runs one instruction. Both
# stacks' copies go through glibc's vector loop instead, so each count
# means the same (tpa's copies are below the threshold either way).
export GLIBC_TUNABLES=glibc.cpu.x86_rep_movsb_threshold=1000000000

# shellcheck source=benches/callgrind_lib.sh
. benches/callgrind_lib.sh
callgrind_build tcp_memory

callgrind_variants TPA_TCP_BULK_RUN instructions/tcp_memory/bulk byte "$BULK_N1" "$BULK_N2" $((1 << 20)) "${STACKS[@]}"
callgrind_variants TPA_TCP_RR_RUN instructions/tcp_memory/rr transaction "$RR_N1" "$RR_N2" 1 "${STACKS[@]}"
callgrind_variants TPA_TCP_CRR_RUN instructions/tcp_memory/crr transaction "$CRR_N1" "$CRR_N2" 1 "${STACKS[@]}"
records_write tcp-memory-instructions
