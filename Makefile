# bpf-eval: the two commands that do everything are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Every implementation is a cargo package <usecase>-<lib>. Which exist and which cargo workspace
# builds each is the library registry's (harness/src/libs.rs): `harness impls` lists them.
HARNESS := target/release/harness
IMPLS_DIR := target/impls
# $(call install-impls,DIR): the binaries of the packages in $$impls, from DIR to target/impls.
install-impls = mkdir -p $(IMPLS_DIR) && for i in $$impls; do install -m 0755 $(1)/$$i $(IMPLS_DIR)/$$i || exit 1; done && \
	echo "built:" $$(printf -- '$(IMPLS_DIR)/%s ' $$impls)
CARGO_FLAGS := --release --locked

.PHONY: all setup build run test clean
all: build

setup:
	@scripts/setup.sh

# The harness first: it names the implementations to build. `cargo fetch` before any build: the
# libbpf (C) build scripts read `cargo metadata --offline`, which needs every crate of Cargo.lock
# (also dev-dependencies) downloaded, not only those a build compiles.
.PHONY: build-harness
build-harness:
	cargo fetch --locked
	cargo build $(CARGO_FLAGS) -p harness

# Release builds of every implementation of the root workspace, copied to
# target/impls/<usecase>-<lib>, and aya's loader cost tool.
build: build-harness build-redbpf
	impls="$$($(HARNESS) impls)" && test -n "$$impls" && \
	cargo build $(CARGO_FLAGS) $$(printf -- '-p %s ' $$impls) -p aya-btf-cost && \
	$(call install-impls,target/release)

# RedBPF implementations: their own workspace, toolchain (impls/redbpf/rust-toolchain: Rust 1.59)
# and vendored crates (offline), set up by impls/redbpf/setup.sh; see impls/redbpf/README.md.
# One cargo per package: each loader enables only its use case's part of the shared bridge,
# which one cargo building several loaders would unify.
.PHONY: build-redbpf
build-redbpf: build-harness
	impls="$$($(HARNESS) impls --workspace impls/redbpf)" && test -n "$$impls" && \
	for p in $$impls; do (cd impls/redbpf && cargo build $(CARGO_FLAGS) --offline -p $$p) || exit 1; done && \
	$(call install-impls,impls/redbpf/target/release)

# No `build`: the run builds every implementation itself, timed for the build metrics (or
# reuses an earlier run's build of unchanged sources), and installs that binary in target/impls.
# The matrix's guest kernels download and unpack while the harness compiles (nothing is measured
# then; the run starts after both).
GUEST_KERNELS := 5.10 6.1 6.12 7.2
run: setup
	scripts/fetch-kernels.sh $(GUEST_KERNELS) >/dev/null & fetch=$$!; \
	$(MAKE) --no-print-directory build-harness && cargo build $(CARGO_FLAGS) -p aya-btf-cost; built=$$?; \
	wait $$fetch || echo "make run: fetching the guest kernels failed; the kernel matrix will say why" >&2; \
	exit $$built
	k="$(GUEST_KERNELS)" && cargo run $(CARGO_FLAGS) -p harness -- run all --kernels $${k// /,},host

# Would set-up resolve on a fresh machine (apt simulated against the package state before set-up)?
# Unit tests, the shared conformance suite and the end-to-end tests, against the release
# binaries in target/impls (they load real programs: run as root); the Vagrantfiles; and one
# quick harness run end to end, whose report lands in target/ci-report and is then opened in
# headless Chromium (metrics/tests/browser.rs). `make reproduce` (two runs must rank alike) is not
# part of it: in a fresh tree its first run builds every implementation for the build metrics
# (RedBPF's cold build alone took 22 min), beyond make test's 30 minutes.
# Under the run lock (harness/src/lock.rs): a second `make test` or `harness run` refuses at once.
test: setup build
	target/release/harness lock -- $(MAKE) --no-print-directory test-locked

.PHONY: test-locked
test-locked:
	scripts/setup.sh --check-fresh
	cargo test $(CARGO_FLAGS) --no-fail-fast
	vagrant/test.sh
	cargo run $(CARGO_FLAGS) -p harness -- run packetfilter --quick --quiet --out target/ci-report
	BPF_EVAL_REPORT_DIR=$(CURDIR)/target/ci-report cargo test $(CARGO_FLAGS) -p metrics --test browser report_opens_cleanly_in_chromium

# Two quick packetfilter runs on this machine: every pair of libraries either calls significantly
# different must be ordered alike by the other, significant or not (README: Reproducibility). Build
# metrics of the second are reused from the first: nothing changed.
.PHONY: reproduce
reproduce:
	cargo run $(CARGO_FLAGS) -p harness -- run packetfilter --quick --quiet --out target/ci-report
	cargo run $(CARGO_FLAGS) -p harness -- run packetfilter --quick --quiet --out target/ci-report-again
	cargo run $(CARGO_FLAGS) -p harness -- compare --rankings target/ci-report target/ci-report-again

# 100 `harness run`s killed at random moments (SIGINT/SIGKILL), each followed by `harness clean`:
# zero leftovers. Long (~1 h), so not in `make test` (which runs 5 of them).
.PHONY: soak-interrupt
soak-interrupt: build
	BPFEVAL_INTERRUPT_RUNS=100 cargo test $(CARGO_FLAGS) -p harness --test interrupted -- --nocapture

clean:
	cargo clean

# Every fuzz target (fuzz/) for FUZZ_SECONDS each (default 60); installs the pinned cargo-fuzz on
# first use. Corpora and crashes stay in target/fuzz/. Not part of `make test`.
.PHONY: fuzz
fuzz:
	scripts/fuzz.sh

# loadbalancer and comtrace under sustained load, SOAK_MINUTES (default 10) per library: loader
# RSS over time, events, events lost, errors (reports/soak/). Fails on 1 MiB RSS growth or any
# error. Long, so not part of `make test`.
SOAK_MINUTES ?= 10
.PHONY: soak
soak: build
	cargo run $(CARGO_FLAGS) -p harness -- soak loadbalancer comtrace --minutes $(SOAK_MINUTES)
