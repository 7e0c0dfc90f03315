#!/usr/bin/env bash
# Sets up RedBPF's toolchain (called by scripts/setup.sh; idempotent, quick when all is there):
#   - checks for Debian's LLVM 13, clang 13 and 6.1 kernel headers (scripts/setup.sh installs them);
#   - Rust 1.59.0 (./rust-toolchain): the last Rust on LLVM 13, whose bitcode cargo-bpf compiles;
#   - ./vendor: every crate of ./Cargo.lock and tools/cargo-bpf/Cargo.lock, fetched by today's
#     cargo (cargo 1.59 cannot read today's crates.io index), so builds here run offline;
#   - ./patched/redbpf: redbpf 2.3.0 with ./patches applied (used through [patch.crates-io]);
#   - cargo-bpf 2.3.0 with LLVM 13, in ~/.cargo/bin.
# `setup.sh --time-toolchains` reinstalls Rust 1.59 and cargo-bpf to time them.
# `setup.sh --relock` re-resolves both lockfiles with the pins below (then commit them).
# How long the vendoring and the cargo-bpf build took, when they ran, is kept in
# target/toolchain-cost/ for the harness's build metrics.
set -euo pipefail

cd "$(dirname "$0")"
HERE=$(pwd)
ROOT=$(cd ../.. && pwd)
export PATH="$HOME/.cargo/bin:$PATH"

TOOLCHAIN=$(cat rust-toolchain)
CARGO_BPF_VERSION=2.3.0
LLVM_PREFIX=/usr/lib/llvm-13
COST=target/toolchain-cost

log() { printf 'setup (redbpf): %s\n' "$*" >&2; }

# Today's cargo, outside this directory so that .cargo/config.toml (vendored, offline) does not
# apply: the root workspace's toolchain.
modern_cargo() { (cd "$ROOT" && cargo "$@"); }

now() { date +%s.%N; }
record() { # record <name> <start time>: the seconds since then, in $COST/<name>
  mkdir -p "$COST"
  awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }' > "$COST/$1"
}

# --- Debian packages (scripts/setup.sh installs them) -------------------------------------------
command -v llvm-config-13 >/dev/null && command -v clang-13 >/dev/null \
  || { log "LLVM 13 / clang 13 missing: run scripts/setup.sh"; exit 1; }
compgen -G "/lib/modules/6.1.*/build/Makefile" >/dev/null \
  || { log "no 6.1 kernel headers under /lib/modules (linux-headers-amd64): run scripts/setup.sh"; exit 1; }

# --- Rust 1.59 ---------------------------------------------------------------------------------
if [[ ${1:-} == --time-toolchains ]] || ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  log "installing Rust $TOOLCHAIN"
  [[ ${1:-} == --time-toolchains ]] && rustup toolchain uninstall "$TOOLCHAIN" >/dev/null 2>&1 || true
  start=$(now)
  rustup toolchain install "$TOOLCHAIN" --profile minimal
  record rust_install_s "$start"
fi

# --- Lockfiles (only with --relock) ------------------------------------------------------------
# Newest versions that declare Rust 1.59 support, then pins for crates that declare it wrongly
# (they fail to build with 1.59) or whose newer versions need a newer Rust than they say.
relock() { # relock <manifest> <crate@version>...
  local manifest=$1; shift
  rm -f "$(dirname "$manifest")/Cargo.lock"
  CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS=fallback modern_cargo generate-lockfile --manifest-path "$manifest"
  for pin in "$@"; do
    if grep -q "name = \"${pin%@*}\"" "$(dirname "$manifest")/Cargo.lock"; then
      modern_cargo update --manifest-path "$manifest" -p "${pin%@*}" --precise "${pin#*@}"
    fi
  done
}
if [[ ${1:-} == --relock ]]; then
  relock "$HERE/tools/cargo-bpf/Cargo.toml" backtrace@0.3.66 memchr@2.5.0 unicode-width@0.1.10
  # The workspace's manifest names ./patched/redbpf, which needs ./vendor: relock after a set-up.
  relock "$HERE/Cargo.toml" backtrace@0.3.66 memchr@2.5.0 serde_json@1.0.100 serde@1.0.190 thread_local@1.1.4
fi

# --- Vendored crates and the patched redbpf ----------------------------------------------------
stamp() { cat Cargo.lock tools/cargo-bpf/Cargo.lock patches/*.patch | sha256sum | cut -d' ' -f1; }
if [[ ! -f vendor/.bpfeval-stamp || $(cat vendor/.bpfeval-stamp) != "$(stamp)" ]]; then
  log "vendoring crates and patching redbpf"
  started=$(now)
  # From scratch: no stale crates, and the time recorded is what a fresh machine pays.
  rm -rf vendor
  # cargo-bpf's crates first: they include the pristine redbpf 2.3.0 the patches apply to.
  modern_cargo vendor --quiet --locked --manifest-path "$HERE/tools/cargo-bpf/Cargo.toml" "$HERE/vendor" >/dev/null
  rm -rf patched/redbpf
  mkdir -p patched
  cp -r vendor/redbpf patched/redbpf
  for patch in patches/*.patch; do
    patch -d patched/redbpf -p1 --quiet --forward < "$patch"
  done
  # Then everything, which needs ./patched/redbpf to resolve.
  modern_cargo vendor --quiet --locked --manifest-path "$HERE/Cargo.toml" \
    --sync "$HERE/tools/cargo-bpf/Cargo.toml" "$HERE/vendor" >/dev/null
  stamp > vendor/.bpfeval-stamp
  record vendor_s "$started"
fi

# --- cargo-bpf ---------------------------------------------------------------------------------
if [[ ${1:-} == --time-toolchains || "$(cargo-bpf bpf --version 2>/dev/null)" != "cargo-bpf $CARGO_BPF_VERSION" ]]; then
  log "building cargo-bpf $CARGO_BPF_VERSION with LLVM 13 (takes a few minutes)"
  # A cold build is what it costs (and what --time-toolchains times).
  rm -rf "$HERE/target/cargo-bpf"
  started=$(now)
  (cd tools/cargo-bpf && LLVM_SYS_130_PREFIX=$LLVM_PREFIX CARGO_TARGET_DIR="$HERE/target/cargo-bpf" \
    cargo build --release --locked --offline)
  install -m 0755 target/cargo-bpf/release/cargo-bpf "$HOME/.cargo/bin/cargo-bpf"
  record cargo_bpf_build_s "$started"
fi

log "ok"
