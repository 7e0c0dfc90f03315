#!/usr/bin/env bash
# Installs rustup in a Vagrant guest, the one thing scripts/setup.sh expects a machine of the
# project's kind to have already (Debian 12 has no rustup package). System-wide, like the
# official Rust container images, so the root provisioners and the vagrant user of `vagrant
# ssh` share one set of toolchains. setup.sh installs the toolchains themselves.
set -euo pipefail

cat > /etc/profile.d/rust.sh <<'PROFILE'
export RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo
case ":$PATH:" in *:/usr/local/cargo/bin:*) ;; *) export PATH="/usr/local/cargo/bin:$PATH" ;; esac
PROFILE
# `sudo make test` / `sudo target/impls/...` (BPF needs root) must find the same toolchains.
cat > /etc/sudoers.d/rust <<'SUDOERS'
Defaults env_keep += "RUSTUP_HOME CARGO_HOME"
Defaults secure_path="/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SUDOERS
chmod 0440 /etc/sudoers.d/rust
# shellcheck source=/dev/null
. /etc/profile.d/rust.sh

command -v rustup >/dev/null && exit 0
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends curl ca-certificates gcc libc6-dev >/dev/null
# No default toolchain: rust-toolchain.toml and setup.sh name the ones the project uses.
curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --no-modify-path --profile minimal --default-toolchain none
