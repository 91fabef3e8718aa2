#!/usr/bin/env bash
# The port tests under AddressSanitizer: the unsafe code Miri cannot reach
# (syscalls, the kernel's packet rings, TAP, DPDK's mbufs and rings through
# FFI) run with every Rust memory access checked for out-of-bounds and
# use-after-free, and leaks reported at exit.
#
#   bash tests/asan.sh            # tpa's unit tests, pool, MemoryWire, TAP, AF_PACKET, DPDK
#   bash tests/asan.sh --no-dpdk  # the same without the DPDK port tests
#
# Uses the stable toolchain with RUSTC_BOOTSTRAP=1 (its standard library ships
# the ASan runtime for x86_64-unknown-linux-gnu), so no nightly is needed.
# Builds into target/x86_64-unknown-linux-gnu/ (the explicit --target keeps
# the sanitizer off build scripts and proc macros, which are shared with the
# normal build in target/debug). Needs root, like tests/run.sh: the TAP and
# AF_PACKET tests create network namespaces.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'tests/asan.sh: %s\n' "$*" >&2
    exit 1
}

dpdk=1
for arg in "$@"; do
    case "$arg" in
    --no-dpdk) dpdk=0 ;;
    *) die "unknown argument $arg (only --no-dpdk)" ;;
    esac
done

[[ $(uname -m) == x86_64 ]] || die "the ASan run is set up for x86_64 Linux only"
command -v cargo >/dev/null || die "cargo not found"
host=x86_64-unknown-linux-gnu
ls "$(rustc --print target-libdir --target "$host")"/librustc-*_rt.asan.a >/dev/null 2>&1 ||
    die "this Rust toolchain ships no AddressSanitizer runtime for $host"

export RUSTC_BOOTSTRAP=1
# Frame pointers give ASan's fast unwinder whole stacks in its reports.
export RUSTFLAGS="-Zsanitizer=address -Cforce-frame-pointers=yes ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="-Zsanitizer=address ${RUSTDOCFLAGS:-}"
# Leaks fail the run too (LeakSanitizer is on by default with ASan on Linux),
# but for the few allocations kept for the life of the process on purpose,
# listed with their reasons in tests/lsan.supp.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1}"
export LSAN_OPTIONS="suppressions=$PWD/tests/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

features=()
dpdk_tests=()
if ((dpdk)); then
    features=(--features dpdk)
    dpdk_tests=(--test dpdk_ring --test dpdk_tap --test dpdk_memif --test dpdk_bifurcation --test dpdk_responder)
fi

start=$SECONDS
printf '==> ASan: tpa unit tests (pool, buffers, AF_PACKET rings, TAP, netdev%s)\n' "$( ((dpdk)) && echo ', mbufs')"
cargo test --target "$host" -p tpa --lib "${features[@]}" --no-fail-fast

printf '==> ASan: pool, MemoryWire, TAP and AF_PACKET port tests%s\n' "$( ((dpdk)) && echo ', DPDK port tests')"
cargo test --target "$host" -p tpa-tests "${features[@]}" --no-fail-fast \
    --test pool --test memory_wire --test tap --test af_packet "${dpdk_tests[@]}"

printf '==> ASan: all passed in %d s\n' $((SECONDS - start))
