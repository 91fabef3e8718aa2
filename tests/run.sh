#!/usr/bin/env bash
# The full check of the tpa workspace, as CI runs it, on a Debian 12 machine
# as root:
#   sudo bash tests/run.sh
# 1. installs the system packages that are missing (DPDK, clang, iproute2,
#    ping, tshark, scapy, nftables, socat, redis-server), and rustfmt/clippy
#    if rustup lacks them;
# 2. cargo fmt --check, clippy with warnings denied, and every test
#    (unit, doc, trybuild UI, kernel interop over TAP/veth in network
#    namespaces, DPDK vdevs), with all features;
# 3. benches/report.py's tests and its lint of doc/benchmarks.md's prose,
#    benches/background_test.sh (the benches' wait for a server to listen),
#    and README's main job, apps/redis-proxy/run-demo.sh, in its short mode;
# 4. a short run of every fuzz target (tests/fuzz.sh) and the port tests
#    under AddressSanitizer (tests/asan.sh).
# Not here, for its time (about 15 CPU-minutes) and its nightly toolchain:
# Miri over the unsafe buffer and header code, `bash tests/miri.sh`.
# Nothing is skipped: a missing tool or privilege fails the run with a reason.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n==> %s\n' "$*"; }
die() {
    printf 'tests/run.sh: %s\n' "$*" >&2
    exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (sudo bash tests/run.sh): the kernel interop tests create network namespaces, TAP and veth interfaces and raw sockets"

# --- system packages -------------------------------------------------------
packages=(
    build-essential pkg-config clang libclang-dev # dpdk-sys: C shim + bindgen
    libdpdk-dev dpdk                              # the `dpdk` feature and its vdevs
    libbpf-dev linux-libc-dev                     # the `af_xdp` feature: its XDP program's headers (clang -target bpf)
    iproute2 iputils-ping python3 python3-scapy   # kernel interop tests
    ethtool                                       # af_xdp: the veth peer's checksum offload off
    nftables                                      # loss on the TCP interop tests' wire (tests/src/impair.rs), tcp_pmtud's ICMP reject
    tshark                                        # capture checks
    socat redis-server redis-tools                # kernel servers of the TCP tests (tcp_kernel_servers)
    nutcracker                                    # the reference of tpa-redis-proxy's key mapping test
    python3-prometheus-client                     # tperf_ops: the Prometheus endpoint parsed by the reference parser
)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
fi
pkg-config --atleast-version=22.11 libdpdk || die "libdpdk >= 22.11 not found by pkg-config"

# --- Rust --------------------------------------------------------------------
if [[ -f "$HOME/.cargo/env" ]]; then
    # shellcheck source=/dev/null
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null || die "cargo not found: install Rust (stable >= 1.91) with rustup"
if command -v rustup >/dev/null; then
    for c in rustfmt clippy; do
        rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
    done
fi
cargo fmt --version >/dev/null || die "rustfmt missing (rustup component add rustfmt)"
cargo clippy --version >/dev/null || die "clippy missing (rustup component add clippy)"

# --- kernel features the interop tests use ------------------------------------
modprobe tun 2>/dev/null || true
modprobe veth 2>/dev/null || true
[[ -c /dev/net/tun ]] || die "/dev/net/tun missing: the kernel needs TUN/TAP support (CONFIG_TUN)"
ip netns list >/dev/null || die "ip netns does not work here"

# Namespaces left by a test run that was killed (tpa-<tag>-<pid>-<n>, pid gone).
for ns in $(ip netns list | awk '$1 ~ /^tpa-/ {print $1}'); do
    pid=$(awk -F- '{print $(NF-1)}' <<<"$ns")
    kill -0 "$pid" 2>/dev/null || ip netns del "$ns" 2>/dev/null || true
done

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"
if [[ -n "${CI:-}" ]]; then
    export CARGO_INCREMENTAL=0
fi

step "cargo $(cargo --version | cut -d' ' -f2), rustc $(rustc --version | cut -d' ' -f2), $(nproc) cores"

step "cargo fmt --all --check"
cargo fmt --all --check

step "cargo clippy --workspace --all-targets --all-features -- -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

step "cargo doc --workspace --no-deps with rustdoc warnings denied (every intra-doc link resolves)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet

step "cargo test --workspace --all-features --no-fail-fast"
cargo test --workspace --all-features --no-fail-fast

step "tpa-drill tests/drill/: the conformance scripts on tpa (doc/conformance.md)"
cargo run -q -p tpa-drill -- tests/drill/

step "tpa-drill --backend kernel tests/drill/: the same scripts on Linux, each in a namespace of its own (a report, not a gate: doc/conformance.md)"
cargo run -q -p tpa-drill -- --backend kernel --portable --report --jobs 8 tests/drill/

step "benches/report.py: its tests, and no figures in doc/benchmarks.md's prose"
python3 benches/report_test.py
python3 benches/report.py --lint

step "benches/background.sh: a server's wait never takes the previous server's line (benches/background_test.sh)"
bash benches/background_test.sh

step "apps/redis-proxy/run-demo.sh, README's main job, in its short mode (QUICK=1: a debug build, short runs)"
QUICK=1 DEMO_BUILD="--workspace --all-features --bin tpa-redis-proxy" bash apps/redis-proxy/run-demo.sh

step "fuzz targets: build, and run each from its seeds for ${FUZZ_SECONDS:-20} s (tests/fuzz.sh)"
bash tests/fuzz.sh

step "AddressSanitizer: unit, pool, MemoryWire, TAP, AF_PACKET and DPDK port tests (tests/asan.sh)"
bash tests/asan.sh

step "all checks passed"
