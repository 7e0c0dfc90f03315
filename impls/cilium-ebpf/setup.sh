#!/usr/bin/env bash
# Sets up cilium/ebpf's toolchain (called by scripts/setup.sh; idempotent, quick when all is there):
# Go and the cilium/ebpf sources from Debian, the packages pinned in ./debs.lock, fetched with
# apt's own downloader (which checks each file's SHA256) and unpacked with `dpkg -x` into
# target/cilium-ebpf/root (nothing is installed: they come from suites other than bookworm).
# The loaders build with GOROOT there and go.mod `replace` directives into its
# usr/share/gocode/src (impls/cilium-ebpf/build-support), offline (GOPROXY=off).
# How long the download and unpacking took is kept in target/toolchain-cost/cilium-ebpf.
#   setup.sh --show    the current version, SHA256 and pool path of each pinned package in its
#                      suite (a temporary apt list; the system's apt configuration is not used)
set -euo pipefail

cd "$(dirname "$0")"
ROOT=$(cd ../.. && pwd)
LOCK=$PWD/debs.lock
OUT=$ROOT/target/cilium-ebpf
COST=$ROOT/target/toolchain-cost
MIRROR=http://deb.debian.org/debian

log() { printf 'setup (cilium-ebpf): %s\n' "$*" >&2; }
pins() { grep -v '^\s*\(#\|$\)' "$LOCK"; }

if [[ ${1:-} == --show ]]; then
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  mkdir -p "$tmp/lists/partial"
  pins | awk '{ print $3 }' | sort -u | while read -r suite; do
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $MIRROR $suite main"
  done > "$tmp/sources.list"
  opts=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null -o "Dir::State::Lists=$tmp/lists")
  apt-get "${opts[@]}" update -q >/dev/null
  pins | while read -r pkg _ _ _ _; do
    apt-cache "${opts[@]}" show "$pkg" | awk -v p="$pkg" '/^Version:/ { v = $2 } /^SHA256:/ { s = $2 }
      /^Filename:/ { f = $2 } /^$/ && v { print p, v, s, f; v = "" }'
  done
  exit 0
fi

# The stamp is the lock file itself: a changed pin unpacks everything again, from scratch.
stamp=$(sha256sum "$LOCK" | cut -d' ' -f1)
if [[ -f $OUT/root/.stamp && $(cat "$OUT/root/.stamp") == "$stamp" ]]; then
  exit 0
fi

log "fetching and unpacking $(pins | wc -l) Debian packages (debs.lock) into $OUT/root"
started=$(date +%s.%N)
mkdir -p "$OUT/debs"
rm -rf "$OUT/root"
mkdir -p "$OUT/root"
while read -r pkg version suite sha256 path; do
  deb=$OUT/debs/$(basename "$path")
  if [[ ! -f $deb ]] || ! sha256sum --quiet -c <<<"$sha256  $deb" 2>/dev/null; then
    rm -f "$deb"
    # apt-helper fails unless the file has this SHA256.
    if ! /usr/lib/apt/apt-helper download-file "$MIRROR/$path" "$deb" "SHA256:$sha256" >/dev/null 2>"$OUT/debs/error"; then
      log "ERROR: cannot fetch $pkg $version ($suite) from $MIRROR/$path:"
      sed 's/^/    /' "$OUT/debs/error" >&2
      log "  fix: the suite has moved on or the file is gone: take the package's current line from"
      log "       \`$0 --show\` into debs.lock (and check the build), then run set-up again"
      exit 1
    fi
  fi
  dpkg-deb -x "$deb" "$OUT/root"
done < <(pins)
rm -f "$OUT/debs/error"
# Debian's Go finds its sources through absolute symlinks into /usr/share/go-1.26 (if any): point them
# into the unpacked tree.
goroot=$(echo "$OUT"/root/usr/lib/go-1.*)
for link in "$goroot"/*; do
  target=$(readlink "$link" || true)
  [[ $target == /* ]] && ln -sfn "$OUT/root$target" "$link"
done
"$goroot/bin/go" version >/dev/null || { log "ERROR: the unpacked Go ($goroot/bin/go) does not run"; exit 1; }
echo "$stamp" > "$OUT/root/.stamp"
mkdir -p "$COST"
awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f\n", b - a }' > "$COST/cilium-ebpf"
log "ok: $("$goroot/bin/go" version), cilium/ebpf $(awk '$1 == "golang-github-cilium-ebpf-dev" { print $2 }' "$LOCK")"
