#!/bin/bash
# Fetches Debian's kernel image packages for the kernel matrix (`harness kernels`) with a private
# apt configuration (the system's apt sources are not touched), checks each .deb against the
# SHA256 of its suite's Packages index and unpacks it under target/kernels/<series>/.
# Usage: scripts/fetch-kernels.sh SERIES...   (5.10 6.1 6.12 7.2)
# Idempotent: an unpacked kernel whose .deb still matches its recorded sha256 is not fetched again.
# Prints one line per kernel: SERIES<TAB>DIR (DIR holds boot/vmlinuz-* and lib/modules/*).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)/target/kernels
apt=$root/apt
declare -A SUITE=([5.10]=bullseye [6.1]=bookworm [6.12]=trixie [7.2]=sid)
O=(-o Dir::Etc::SourceList="$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
   -o Dir::State::Lists="$apt/lists" -o Dir::Cache="$apt/cache" -o APT::Architectures::=amd64
   -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
   -o Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false -o Debug::NoLocking=1 -o APT::Sandbox::User=root)

updated=
update() {
  [ -n "$updated" ] && return
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial"
  : >"$apt/sources.list"
  for s in "${SUITE[@]}"; do
    echo "deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $s main" >>"$apt/sources.list"
  done
  apt-get "${O[@]}" -qq update >&2 || { echo "fetch-kernels: apt-get update of the private sources failed" >&2; exit 1; }
  updated=1
}

# stanza SUITE PACKAGE: that package's stanza in the suite's Packages index.
stanza() {
  local f
  f=$(ls "$apt"/lists/*_dists_"$1"_main_binary-amd64_Packages* 2>/dev/null | head -1)
  [ -n "$f" ] || { echo "fetch-kernels: no Packages index of $1" >&2; exit 1; }
  /usr/lib/apt/apt-helper cat-file "$f" | awk -v RS= -v p="$2" '!done && index($0, "Package: " p "\n") == 1 { print; done = 1 }'
}

for series in "$@"; do
  suite=${SUITE[$series]:-}
  [ -n "$suite" ] || { echo "fetch-kernels: unknown kernel series $series (known: ${!SUITE[*]})" >&2; exit 2; }
  dir=$root/$series
  if [ -f "$dir/.sha256sums" ] && sha256sum --quiet -c "$dir/.sha256sums" >/dev/null 2>&1; then
    printf '%s\t%s\n' "$series" "$dir"; continue
  fi
  update
  pkg=$(stanza "$suite" linux-image-amd64 | sed -n 's/^Depends: .*\(linux-image-[^ ,]*-amd64\) (= .*/\1/p')
  [ -n "$pkg" ] || { echo "fetch-kernels: $suite has no linux-image-amd64 dependency" >&2; exit 1; }
  # Since 7.x the image package is split: vmlinuz in linux-binary-*, modules in linux-modules-*.
  pkgs="$pkg $(stanza "$suite" "$pkg" | sed -n 's/^Depends: //p' | tr ',' '\n' |
    sed -n 's/^ *\(linux-\(binary\|modules\)-[^ ]*\) .*/\1/p')"
  mkdir -p "$root/debs"
  debs=() shas=()
  for p in $pkgs; do
    st=$(stanza "$suite" "$p")
    ver=$(sed -n 's/^Version: //p' <<<"$st"); sha=$(sed -n 's/^SHA256: //p' <<<"$st")
    [ -n "$ver" ] && [ -n "$sha" ] || { echo "fetch-kernels: no version/SHA256 for $p in $suite" >&2; exit 1; }
    deb="$root/debs/${p}_${ver}_amd64.deb"
    [ -f "$deb" ] && [ "$(sha256sum <"$deb" | cut -d' ' -f1)" = "$sha" ] ||
      (cd "$root/debs" && apt-get "${O[@]}" -qq download "$p=$ver" >&2)
    got=$(sha256sum <"$deb" | cut -d' ' -f1)
    [ "$got" = "$sha" ] || { echo "fetch-kernels: $deb: sha256 $got, the $suite index says $sha" >&2; rm -f "$deb"; exit 1; }
    debs+=("$deb") shas+=("$sha")
  done
  rm -rf "$dir.tmp" && mkdir -p "$dir.tmp"
  for d in "${debs[@]}"; do dpkg-deb -x "$d" "$dir.tmp"; done
  # Newer packages put modules under usr/lib; modules.dep is made at install time (depmod).
  [ -d "$dir.tmp/lib" ] || ln -s usr/lib "$dir.tmp/lib"
  kver=$(ls "$dir.tmp/lib/modules" | head -1)
  depmod -b "$dir.tmp" "$kver"
  for i in "${!debs[@]}"; do echo "${shas[$i]}  ${debs[$i]}"; done >"$dir.tmp/.sha256sums"
  echo "$suite $pkgs" >"$dir.tmp/.package"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
  printf '%s\t%s\n' "$series" "$dir"
done
