#!/usr/bin/env bash
# The unsafe code of tpa's buffers and header views under Miri, which checks
# every access against Rust's rules (bounds, initialisation, alignment,
# aliasing, data races, leaks) and fails on undefined behaviour.
#
#   bash tests/miri.sh          # Stacked Borrows (Miri's default)
#   bash tests/miri.sh --tree   # the same set under Tree Borrows
#
# What runs: the unit tests of tpa's modules with unsafe code Miri can reach:
# the buffer pool and buffers, the AF_PACKET ring walkers (over ordinary
# memory standing in for the kernel's ring), the interface-name helpers, and
# the TCP option walker over header bytes; then the cross-crate tests of the
# pool, MemoryWire and the header views (framework headers and
# #[header]-generated ones, whose unsafe code is in header/bytes.rs). Property tests run 16
# cases under Miri (`cfg!(miri)`), and the long loops fewer rounds.
# Not here: what needs syscalls or FFI Miri does not model (sockets, TAP,
# DPDK, CPU pinning, signals): tests/asan.sh runs those under AddressSanitizer.
#
# Flags: -Zmiri-strict-provenance (no integer-to-pointer casts anywhere in
# the checked code); -Zmiri-disable-isolation because the clock reads the
# wall clock once and proptest reads its regression files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() {
    printf 'tests/miri.sh: %s\n' "$*" >&2
    exit 1
}

model_flags=""
model="Stacked Borrows"
for arg in "$@"; do
    case "$arg" in
    --tree)
        model_flags="-Zmiri-tree-borrows"
        model="Tree Borrows"
        ;;
    *) die "unknown argument $arg (only --tree)" ;;
    esac
done

# --- the nightly toolchain with Miri -------------------------------------------
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
command -v rustup >/dev/null ||
    die "rustup not found: Miri ships only as a component of rustup's nightly toolchain"
rustup run nightly rustc --version >/dev/null 2>&1 ||
    die "no nightly toolchain, and this script does not install one (rustup toolchain install nightly --component miri,rust-src): Miri exists only on nightly"
if ! rustup run nightly cargo miri --version >/dev/null 2>&1; then
    printf '==> installing the miri and rust-src components of nightly\n'
    rustup +nightly component add miri rust-src ||
        die "cannot add the miri component to the nightly toolchain ($(rustup run nightly rustc --version)): a nightly without Miri has to be replaced by one that has it (rustup toolchain install nightly --component miri,rust-src)"
fi
cargo +nightly miri setup >/dev/null ||
    die "cargo miri setup failed (it builds Miri's standard library from rust-src)"

export MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-disable-isolation $model_flags ${MIRIFLAGS:-}"

# Each test's time, to see which ones Miri makes slow.
report_time=(-Zunstable-options --report-time)

start=$SECONDS
printf '==> Miri (%s), %s\n' "$model" "$(cargo +nightly miri --version)"

printf '==> Miri: tpa unit tests (pool, buffers, header bytes, wire headers, AF_PACKET rings)\n'
cargo +nightly miri test -p tpa --lib -- "${report_time[@]}" \
    buf:: wire::tcp::options port::af_packet::ring \
    port::netdev::tests::names_are_validated port::netdev::tests::ifreq_round_trips_the_name

printf '==> Miri: pool, shared buffers and header view tests\n'
cargo +nightly miri test -p tpa-tests \
    --test pool --test sharebuf \
    --test header_dynamic --test header_ipv4 --test header_layout \
    --test wire_ethernet_arp --test wire_ipv4_icmpv4 --test wire_ipv6_icmpv6 \
    --test wire_roundtrip --test wire_tcp --test wire_udp \
    -- "${report_time[@]}"

# The MemoryWire tests but those that only repeat the same buffer paths over
# hundreds of frames to check an impairment's effect on the bytes (minutes
# each under Miri); the statistical ones are #[cfg_attr(miri, ignore)].
printf '==> Miri: MemoryWire tests\n'
cargo +nightly miri test -p tpa-tests --test memory_wire -- "${report_time[@]}" \
    --skip corrupt_flips_exactly_the_configured_bits \
    --skip truncate_shortens_keeping_the_prefix \
    --skip duplicate_delivers_every_packet_twice

printf '==> Miri (%s): all passed in %d s\n' "$model" $((SECONDS - start))
