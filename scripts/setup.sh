#!/usr/bin/env bash
# Installs everything a fresh machine of the project's kind (Debian 12, root) lacks to build,
# test and measure every implementation. Idempotent, and a quick no-op when all is there.
set -euo pipefail

cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The Aya kernel side is built by this nightly (see impls/README.md); keep in sync with
# impls/aya/*/build.rs, which reads the same file.
NIGHTLY=$(cat impls/aya/nightly-toolchain)
BPF_LINKER_VERSION=0.10.3

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages -------------------------------------------------------------------------
APT_PACKAGES=(
  # libbpf-rs: clang for the C kernel programs, libelf/zlib for the vendored libbpf
  clang llvm libelf-dev zlib1g-dev pkg-config linux-libc-dev make
  # test beds and measurements
  iproute2 bpftool ethtool xdp-tools iperf3
  # the VM guest (BPF LSM, fq/netem): qemu under TCG, Debian's 6.1 kernel and its modules
  qemu-system-x86 linux-image-amd64 busybox-static cpio xz-utils
  # report plots render text with this font
  fonts-dejavu-core
  # the thesis' VM workflow: vagrant/test.sh validates every Vagrantfile
  vagrant vagrant-libvirt
  # RedBPF (impls/redbpf/setup.sh): cargo-bpf links LLVM 13, redbpf-probes runs bindgen over the 6.1 headers
  llvm-13-dev clang-13 libclang-13-dev llvm-13 linux-headers-amd64 patch
)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing apt packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- Rust toolchains -------------------------------------------------------------------------
command -v rustup >/dev/null || { log "rustup is missing: this machine kind ships it"; exit 1; }
# The user-side toolchain is pinned in rust-toolchain.toml; rustup installs it on first use,
# do it here so a build does not pay for it silently.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install "$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)" --profile minimal
if ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
   || ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
  log "installing $NIGHTLY with rust-src"
  rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
fi
if [[ "$(bpf-linker --version 2>/dev/null)" != *"$BPF_LINKER_VERSION"* ]]; then
  log "installing bpf-linker $BPF_LINKER_VERSION"
  cargo install bpf-linker --version "$BPF_LINKER_VERSION" --locked --force
fi
# RedBPF: Rust 1.59, LLVM 13, 6.1 headers, cargo-bpf, vendored crates, patched redbpf.
impls/redbpf/setup.sh

# --- Kernel file systems BPF needs -----------------------------------------------------------
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

log "ok"
