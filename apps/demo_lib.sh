# Shared by apps/*/run-demo.sh (sourced from the repository root, not run):
# the checks and set-up every demo needs, and the clean-up on exit.

# demo_setup PACKAGE NS_PREFIX [COMMAND:DEBIAN_PACKAGE...]: needs root,
# installs iproute2 (and each listed command's package) if missing, finds
# cargo, builds PACKAGE and sets `bin` to its binary, creates the network
# namespace `ns` (NS_PREFIX-<pid>) and `log` (a temporary file), and removes
# both on exit, stopping the process whose pid is in `pid` first.
demo_setup() {
    local package=$1 prefix=$2 need=() spec target_dir
    shift 2
    [[ $(id -u) -eq 0 ]] || {
        echo "run-demo.sh: run as root (sudo $0): it creates a network namespace and a TAP interface" >&2
        exit 1
    }
    command -v ip >/dev/null || need+=(iproute2)
    for spec in "$@"; do
        command -v "${spec%%:*}" >/dev/null || need+=("${spec#*:}")
    done
    if ((${#need[@]})); then
        echo "==> installing ${need[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" </dev/null
    fi
    if [[ -f "$HOME/.cargo/env" ]]; then
        # shellcheck source=/dev/null
        . "$HOME/.cargo/env"
    fi
    command -v cargo >/dev/null || {
        echo "run-demo.sh: cargo not found: install Rust (stable >= 1.91) with rustup" >&2
        exit 1
    }

    ns="$prefix-$$"
    log="$(mktemp)"
    pid=
    trap demo_cleanup EXIT

    echo "==> building $package"
    cargo build -p "$package"
    target_dir="$(cargo metadata --format-version 1 --no-deps |
        sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    bin="$target_dir/debug/$package"

    ip netns add "$ns"
    ip -n "$ns" link set lo up
}

# Stops the process in `pid` (SIGINT, then waits), removes the namespace
# and the log.
demo_cleanup() {
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
        kill -INT "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    ip netns del "$ns" 2>/dev/null || true
    rm -f "$log"
}
