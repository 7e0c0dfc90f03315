#!/usr/bin/env bash
# `make fuzz`: every target of fuzz/ for FUZZ_SECONDS (default 60) each, seeded with the
# project's own configs, vectors and broken configs. cargo-fuzz (pinned) is installed on first
# use; it runs on the nightly the Aya kernel side already pins. Corpora, crashes and the build
# stay under target/fuzz/. A crash is saved there and fails this script: turn it into a
# regression test in the normal suite.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

CARGO_FUZZ_VERSION=0.13.2
NIGHTLY=$(cat impls/aya/nightly-toolchain)
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-$(sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^bpf-eval-fuzz$')}
OUT=target/fuzz
export CARGO_TARGET_DIR=$PWD/$OUT/build

if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION" >&2
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi
rustup toolchain list | grep -q "^$NIGHTLY" || rustup toolchain install "$NIGHTLY" --profile minimal

seeds() { # seeds TARGET: the files a target starts from
  case $1 in
    packetfilter_config|loadbalancer_config|jittergen_config|lsmbpf_config)
      local u=${1%_config}
      ls impls/*/"$u"/config.example.yml harness/tests/broken-configs/"$u"/*.yaml 2>/dev/null ;;
    comtrace_cli) ls harness/tests/broken-configs/comtrace/*.args ;;
    *) ;;
  esac
}

failed=()
for t in $TARGETS; do
  corpus=$OUT/corpus/$t
  mkdir -p "$corpus" "$OUT/artifacts/$t"
  for f in $(seeds "$t"); do cp -n "$f" "$corpus/seed-$(basename "$(dirname "$f")")-$(basename "$f")"; done
  case $t in # the vectors target's first byte picks the loader (0 packetfilter ... 3 comtrace)
    vectors)
      i=0
      for f in scenarios/packetfilter/vectors.yaml scenarios/loadbalancer/vectors.yaml \
               scenarios/jittergen/vectors.yaml scenarios/comtrace/workload.yaml; do
        { printf "\\x$(printf %02x $i)"; cat "$f"; } > "$corpus/seed-$i.yaml"; i=$((i + 1))
      done ;;
    frames) # every `frame:` of the packetfilter vectors (one flow mapping a line), one a file
      i=0
      sed -n 's/.*frame: \(.*\), expect:.*/\1/p' scenarios/packetfilter/vectors.yaml | while read -r spec; do
        echo "$spec" > "$corpus/seed-$i.yaml"; i=$((i + 1))
      done ;;
  esac
  echo "fuzz: $t for ${SECONDS_EACH}s" >&2
  # No sanitizer: the code under test is safe Rust; debug assertions catch overflows.
  if ! cargo +"$NIGHTLY" fuzz run --sanitizer none --debug-assertions "$t" "$corpus" -- \
      -max_total_time="$SECONDS_EACH" -artifact_prefix="$OUT/artifacts/$t/" -print_final_stats=1; then
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: crashes in ${failed[*]}: see $OUT/artifacts/" >&2
  exit 1
fi
echo "fuzz: no crash in $(echo $TARGETS | wc -w) targets (${SECONDS_EACH}s each)" >&2
