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
# The list, with the suite each comes from and why, is scripts/apt-packages.
BACKPORTS=bookworm-backports
BACKPORTS_SOURCE=/etc/apt/sources.list.d/bpf-eval-backports.sources
# The machine's package state before the first set-up, for --check-fresh.
BEFORE=/var/lib/bpf-eval/dpkg-status.before-setup

packages() { # packages [SUITE]: the names in scripts/apt-packages, of SUITE or all
  awk -v s="${1:-}" '!/^[[:space:]]*(#|$)/ && (s == "" || $2 == s) { print $1 }' scripts/apt-packages
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have_backports_source() { grep -rqs "^[^#]*$BACKPORTS" /etc/apt/sources.list /etc/apt/sources.list.d/; }

apt_install() { # apt_install [-s] SUITE PACKAGE...: one install; -t only for a suite other than bookworm
  local sim=() target=()
  [[ $1 == -s ]] && { sim=(-s); shift; }
  [[ $1 != bookworm ]] && target=(-t "$1")
  shift
  DEBIAN_FRONTEND=noninteractive apt-get install "${sim[@]}" -y -q --no-install-recommends "${target[@]}" \
    ${APT_STATUS:+-o "Dir::State::status=$APT_STATUS"} "$@"
}

# Why apt cannot install PACKAGE from SUITE (apt's own lines) and what to do; false if it can.
why_not() { # why_not SUITE PACKAGE
  local suite=$1 p=$2 one
  one=$(apt_install -s "$suite" "$p" 2>&1) && ! grep -q '^Remv ' <<<"$one" && return 1
  log "  package $p ($(grep -m1 "^$p " scripts/apt-packages | sed 's/.*# *//')), from $suite:"
  grep -E "^E: |Breaks|Depends|Conflicts|Unable to locate|no installation candidate|^Remv " <<<"$one" \
    | sed 's/^/      /' >&2 || true
  if grep -q "Unable to locate\|no installation candidate" <<<"$one"; then
    log "    fix: $p is in none of apt's suites: check /etc/apt/sources.list* for Debian $suite, then apt-get update"
  elif grep -q "^Remv " <<<"$one"; then
    log "    fix: installing $p would remove the packages marked Remv; set-up never removes packages:"
    log "         remove them yourself if that is intended, then run set-up again"
  else
    log "    fix: an installed package conflicts with $p or its dependencies (apt-cache policy NAME shows where"
    log "         each comes from); if it comes from $BACKPORTS, $p must come from there too: set its"
    log "         suite to $BACKPORTS in scripts/apt-packages"
  fi
}
explain() { # explain SUITE APT_OUTPUT PACKAGE...: why_not for each, then exit 1
  local suite=$1 out=$2 p; shift 2
  log "ERROR: apt cannot install set-up's packages from $suite."
  for p in "$@"; do why_not "$suite" "$p" || true; done
  grep -q "^E: " <<<"$out" && log "  apt said: $(grep -m1 '^E: ' <<<"$out")"
  exit 1
}
install_from() { # install_from SUITE PACKAGE...: simulated first, so a conflict is explained, never half-done
  local suite=$1 out; shift
  (($#)) || return 0
  if ! out=$(apt_install -s "$suite" "$@" 2>&1) || grep -q '^Remv ' <<<"$out"; then explain "$suite" "$out" "$@"; fi
  [[ ${SIMULATE:-} ]] && return 0
  log "installing from $suite: $*"
  out=$(apt_install "$suite" "$@" 2>&1) || { printf '%s\n' "$out" | tail -20 >&2; explain "$suite" "$out" "$@"; }
}
ensure_backports_source() {
  have_backports_source && return 0
  log "adding Debian $BACKPORTS to apt's sources: $BACKPORTS_SOURCE (NotAutomatic: only what set-up names comes from it)"
  cat > "$BACKPORTS_SOURCE" <<EOF
Types: deb
URIs: http://deb.debian.org/debian
Suites: $BACKPORTS
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
}
apt_update() {
  local out
  out=$(apt-get update -q 2>&1) || {
    grep -E "^(E|W): " <<<"$out" >&2
    log "ERROR: apt-get update failed: is Debian's archive reachable, and are /etc/apt/sources.list* valid?"
    exit 1
  }
}

# --doctor: one line per package (ok, missing, or cannot be installed and why), for `harness doctor`.
if [[ ${1:-} == --doctor ]]; then
  bad=0
  for suite in bookworm "$BACKPORTS"; do
    for p in $(packages "$suite"); do
      version=$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || true)
      if installed "$p"; then
        # A backports package installed from bookworm is the version that conflicts.
        if [[ $suite == "$BACKPORTS" && $version != *bpo* ]]; then
          echo "CONFLICT apt $p $version: set-up wants it from $BACKPORTS; fix: apt-get install -t $BACKPORTS $p"; bad=1
        else echo "ok apt $p $version"; fi
      elif [[ $suite == "$BACKPORTS" ]] && ! have_backports_source; then
        echo "MISSING-SUITE apt $p: Debian $BACKPORTS is not in apt's sources; fix: make setup (adds $BACKPORTS_SOURCE)"; bad=1
      elif why_not "$suite" "$p" 2>/tmp/bpf-eval-why.$$; then
        why=$(tr '\n' ' ' </tmp/bpf-eval-why.$$ | sed 's/setup: //g; s/  */ /g')
        echo "CONFLICT apt $p: ${why%% fix: *}; fix: ${why#* fix: }"; bad=1
      else
        echo "MISSING apt $p ($suite); fix: make setup"; bad=1
      fi
    done
  done
  rm -f /tmp/bpf-eval-why.$$
  exit $bad
fi

# --check-fresh: would set-up resolve on a fresh machine? apt simulates the whole list against two
# package states, and fails on a conflict or a removal: (1) this machine kind as it comes, which is
# the state recorded before the first set-up (BPF_EVAL_FRESH_STATUS names another; without either,
# this machine's state less set-up's packages and everything installed automatically); (2) a plain
# Debian 12: the same less every package from backports.
if [[ ${1:-} == --check-fresh ]]; then
  have_backports_source || { log "no $BACKPORTS source: run scripts/setup.sh first"; exit 1; }
  fresh=$(mktemp -d)
  trap 'rm -rf "$fresh"' EXIT
  drop() { # drop STATUS_IN STATUS_OUT AWK_CONDITION_ON_NAME_AND_VERSION
    awk -v dropfile="$fresh/drop" 'BEGIN { while ((getline l < dropfile) > 0) d[l] = 1; RS = ""; ORS = "\n\n" }
      { name = $0; sub(/^Package: /, "", name); sub(/\n.*/, "", name)
        version = ""; if (match($0, /\nVersion: [^\n]*/)) version = substr($0, RSTART + 10, RLENGTH - 10)
        if ('"$3"') print }' "$1" > "$2"
  }
  : > "$fresh/drop"
  if [[ -n ${BPF_EVAL_FRESH_STATUS:-} ]]; then
    cp "$BPF_EVAL_FRESH_STATUS" "$fresh/image"; from="$BPF_EVAL_FRESH_STATUS"
  elif [[ -f $BEFORE ]]; then
    cp "$BEFORE" "$fresh/image"; from="the state before the first set-up ($BEFORE)"
  else
    { packages; apt-mark showauto; } | sort -u > "$fresh/drop"
    drop /var/lib/dpkg/status "$fresh/image" '!(name in d)'
    from="this machine less set-up's packages and all automatically installed ones"
  fi
  drop "$fresh/image" "$fresh/plain" 'version !~ /bpo/'
  export SIMULATE=1
  for state in image plain; do
    export APT_STATUS=$fresh/$state
    # shellcheck disable=SC2046 # one package name a word
    install_from bookworm $(packages bookworm)
    # shellcheck disable=SC2046
    install_from "$BACKPORTS" $(packages "$BACKPORTS")
  done
  log "fresh machine: all $(packages | wc -l) packages resolve, nothing removed, on this machine kind as it comes"
  log "  ($from) and on a plain Debian 12 (the same without its $(grep -c '^Version: .*bpo' "$fresh/image") backports packages)"
  exit 0
fi

[[ -f $BEFORE ]] || { mkdir -p "$(dirname "$BEFORE")"; cp /var/lib/dpkg/status "$BEFORE"; }
missing=() missing_backports=()
for p in $(packages bookworm); do installed "$p" || missing+=("$p"); done
for p in $(packages "$BACKPORTS"); do installed "$p" || missing_backports+=("$p"); done
if ((${#missing[@]} + ${#missing_backports[@]})); then
  ((${#missing_backports[@]})) && ensure_backports_source
  apt_update
  install_from bookworm "${missing[@]}"
  install_from "$BACKPORTS" "${missing_backports[@]}"
fi

# --- Rust toolchains -------------------------------------------------------------------------
command -v rustup >/dev/null || { log "rustup is missing: this machine kind ships it"; exit 1; }
# The user-side toolchain is pinned in rust-toolchain.toml; rustup installs it on first use,
# do it here so a build does not pay for it silently.
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install "$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)" --profile minimal
# Each library's toolchain is named here, not read from harness/src/libs.rs: set-up runs before
# the harness can be built (the registry's `costs` name the files these steps record).
# Aya's toolchain: each step is timed when it runs, into target/toolchain-cost/ (the harness
# reports it as toolchain_install_s / toolchain_build_s, like RedBPF's from impls/redbpf/setup.sh).
# --time-toolchains reinstalls both (and RedBPF's) to time them on a machine set up before.
COST=target/toolchain-cost
TIME_TOOLCHAINS=
[[ ${1:-} == --time-toolchains ]] && TIME_TOOLCHAINS=1
now() { date +%s.%N; }
record() { # record <name> <start time>: the seconds since then, in $COST/<name>
  mkdir -p "$COST"
  awk -v a="$2" -v b="$(now)" 'BEGIN { printf "%.1f\n", b - a }' > "$COST/$1"
}
if [[ -n $TIME_TOOLCHAINS ]] || ! rustup run "$NIGHTLY" rustc --version >/dev/null 2>&1 \
   || ! rustup component list --toolchain "$NIGHTLY" --installed 2>/dev/null | grep -q '^rust-src'; then
  log "installing $NIGHTLY with rust-src"
  [[ -n $TIME_TOOLCHAINS ]] && rustup toolchain uninstall "$NIGHTLY" >/dev/null 2>&1 || true
  start=$(now)
  rustup toolchain install "$NIGHTLY" --profile minimal --component rust-src
  record aya_nightly_install_s "$start"
fi
if [[ -n $TIME_TOOLCHAINS || "$(bpf-linker --version 2>/dev/null)" != *"$BPF_LINKER_VERSION"* ]]; then
  log "installing bpf-linker $BPF_LINKER_VERSION"
  start=$(now)
  cargo install bpf-linker --version "$BPF_LINKER_VERSION" --locked --force
  record bpf_linker_build_s "$start"
fi
# RedBPF: Rust 1.59, LLVM 13, 6.1 headers, cargo-bpf, vendored crates, patched redbpf.
impls/redbpf/setup.sh ${TIME_TOOLCHAINS:+--time-toolchains}
# cilium/ebpf: Go and the library's sources from Debian, unpacked under target/ (impls/cilium-ebpf/debs.lock).
impls/cilium-ebpf/setup.sh

# --- Kernel file systems BPF needs -----------------------------------------------------------
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
mountpoint -q /sys/kernel/tracing || mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null || true

log "ok"
