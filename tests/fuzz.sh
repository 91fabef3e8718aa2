#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz/ and runs each for a short while
# (20 s by default), starting from its checked-in seeds, so that the targets
# keep building against today's API and a shallow finding fails the run.
#
#   bash tests/fuzz.sh                  # every target, 20 s each
#   FUZZ_SECONDS=300 bash tests/fuzz.sh udp tcp_options
#
# Builds the targets with the flags cargo-fuzz uses (sanitizer coverage,
# AddressSanitizer, debug assertions) through plain cargo on the stable
# toolchain with RUSTC_BOOTSTRAP=1, so neither cargo-fuzz nor a nightly
# toolchain is needed; `cargo fuzz run` works on the same crate too (see
# tests/fuzz/README.md). The corpus grows in tests/fuzz/corpus/<target>/ and
# a crash is written to tests/fuzz/artifacts/<target>/ (both ignored by git)
# and fails the run, with the command that replays it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/fuzz"

die() {
    printf 'tests/fuzz.sh: %s\n' "$*" >&2
    exit 1
}

seconds=${FUZZ_SECONDS:-20}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "FUZZ_SECONDS must be a positive whole number of seconds, not '$seconds'"
[[ $(uname -m) == x86_64 ]] || die "the fuzz targets are set up for x86_64 Linux only"
command -v cargo >/dev/null || die "cargo not found"
command -v c++ >/dev/null || die "no C++ compiler (c++): libfuzzer-sys builds libFuzzer from C++ (apt-get install build-essential)"

all=(ethernet_arp ipv4_icmpv4 ipv6_icmpv6_ndp tcp_options tcp_input udp)
targets=("$@")
((${#targets[@]})) || targets=("${all[@]}")
for t in "${targets[@]}"; do
    [[ -f fuzz_targets/$t.rs ]] || die "no fuzz target '$t' (targets: ${all[*]})"
done

host=x86_64-unknown-linux-gnu
export RUSTC_BOOTSTRAP=1
# What `cargo fuzz build` passes (cargo-fuzz 0.13, its defaults).
export RUSTFLAGS="--cfg fuzzing \
-Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares \
-Zsanitizer=address \
-Cdebug-assertions \
-Coverflow-checks \
-Cforce-frame-pointers=yes"

start=$SECONDS
printf '==> building %d fuzz targets (release, ASan, sanitizer coverage)\n' "${#targets[@]}"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
cargo build --release --target "$host" "${bins[@]}"
printf '==> built in %d s\n' $((SECONDS - start))

for t in "${targets[@]}"; do
    corpus=corpus/$t
    artifacts=artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    printf '==> fuzzing %s for %d s\n' "$t" "$seconds"
    log=$(mktemp)
    if ! "target/$host/release/$t" "$corpus" "seeds/$t" \
        -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$artifacts/" -rss_limit_mb=2048 >"$log" 2>&1; then
        tail -n 60 "$log" >&2
        rm -f "$log"
        die "fuzz target $t failed; replay the input it saved with: tests/fuzz/target/$host/release/$t tests/fuzz/$artifacts/<file>"
    fi
    # libFuzzer's closing figures: runs, coverage, corpus size.
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)|^#[0-9]+[[:space:]]+DONE' "$log" || true
    rm -f "$log"
done
printf '==> fuzz: %d targets, %d s each, no finding, %d s in all\n' "${#targets[@]}" "$seconds" $((SECONDS - start))
