# bpf-eval: the two commands that do everything are `make run` and `make test`.
SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

# Every implementation, as <usecase>-<lib>; each is a cargo package of that name.
IMPLS := packetfilter-aya packetfilter-libbpf-rs packetfilter-libbpf loadbalancer-aya loadbalancer-libbpf-rs loadbalancer-libbpf jittergen-aya jittergen-libbpf-rs jittergen-libbpf comtrace-aya comtrace-libbpf-rs comtrace-libbpf lsmbpf-aya lsmbpf-libbpf-rs lsmbpf-libbpf lsmbpf-redbpf packetfilter-cilium-ebpf loadbalancer-cilium-ebpf jittergen-cilium-ebpf comtrace-cilium-ebpf lsmbpf-cilium-ebpf
IMPLS_DIR := target/impls
CARGO_FLAGS := --release --locked

.PHONY: all setup build run test clean
all: build

setup:
	@scripts/setup.sh

# Release builds of every implementation, copied to target/impls/<usecase>-<lib>, and the harness.
build:
	cargo build $(CARGO_FLAGS) $(addprefix -p ,$(IMPLS)) -p harness -p aya-btf-cost
	@mkdir -p $(IMPLS_DIR)
	@for i in $(IMPLS); do install -m 0755 target/release/$$i $(IMPLS_DIR)/$$i; done
	@echo "built: $(addprefix $(IMPLS_DIR)/,$(IMPLS))"

# RedBPF implementations: their own workspace, toolchain (impls/redbpf/rust-toolchain: Rust 1.59)
# and vendored crates (offline), set up by impls/redbpf/setup.sh; see impls/redbpf/README.md.
REDBPF_IMPLS := packetfilter-redbpf loadbalancer-redbpf comtrace-redbpf jittergen-redbpf
.PHONY: build-redbpf
build: build-redbpf
# One cargo per package: each loader enables only its use case's part of the shared bridge,
# which one cargo building several loaders would unify.
build-redbpf:
	cd impls/redbpf && for p in $(REDBPF_IMPLS); do cargo build $(CARGO_FLAGS) --offline -p $$p || exit 1; done
	@mkdir -p $(IMPLS_DIR)
	@for i in $(REDBPF_IMPLS); do install -m 0755 impls/redbpf/target/release/$$i $(IMPLS_DIR)/$$i; done
	@echo "built: $(addprefix $(IMPLS_DIR)/,$(REDBPF_IMPLS))"

run: setup build
	cargo run $(CARGO_FLAGS) -p harness -- run all --kernels 5.10,6.1,6.12,7.2,host

# Would set-up resolve on a fresh machine (apt simulated against the package state before set-up)?
# Unit tests, the shared conformance suite and the end-to-end tests, against the release
# binaries in target/impls (they load real programs: run as root); the Vagrantfiles; and one
# quick harness run end to end, whose report lands in target/ci-report and is then opened in
# headless Chromium (metrics/tests/browser.rs). `make reproduce` (two runs must rank alike) is not
# part of it: on a shared 2-core machine load_attach_ms rankings did not reproduce.
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

# Two quick packetfilter runs on this machine: every ranking either calls significant must be the
# other's too (build metrics of the second are reused from the first: nothing changed).
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
