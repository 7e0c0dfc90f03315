# Targets of every implementation directory, impls/<lib>/<usecase>/Makefile, which only sets
# LIB and USECASE and includes this file (the thesis had one Makefile per implementation with
# the same targets). Builds run in the workspace root, with the root Makefile's cargo flags and
# install location, so target/impls/ holds the same kind of binary whichever Makefile built it.
#
#   make build                     cargo build this implementation only, install it to target/impls/
#   make run IFACE=eth0            run it with ./config.example.yml on IFACE (as root; sudo if needed);
#                                  use cases that attach to no interface set NO_IFACE := 1 (`make run`)
#   make clean                     remove this implementation's build output
#   make testenvironment-up|down   the use case's Vagrant VM(s), vagrant/<usecase>/

ifeq ($(strip $(LIB)),)
$(error LIB is not set: set LIB and USECASE before including impl.mk)
endif
ifeq ($(strip $(USECASE)),)
$(error USECASE is not set: set LIB and USECASE before including impl.mk)
endif

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

# impl.mk lives in impls/, so the repository root is its parent.
ROOT := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))..)
PKG := $(USECASE)-$(LIB)
# The Cargo workspace the package builds in, relative to the root: the root workspace, or
# RedBPF's own (WORKSPACE := impls/redbpf: its toolchain file, vendored crates, offline).
WORKSPACE ?= .
WS := $(abspath $(ROOT)/$(WORKSPACE))
# Same flags and install directory as the root Makefile's `build` (and `build-redbpf`).
CARGO_FLAGS := --release --locked $(if $(filter-out .,$(WORKSPACE)),--offline)
BIN := $(ROOT)/target/impls/$(PKG)

CONFIG ?= config.example.yml
IFACE ?=
ARGS ?=
# Loading BPF programs needs root; CI and the project's machines already are.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

VAGRANT_CWD := $(ROOT)/vagrant/$(USECASE)
export VAGRANT_CWD

.PHONY: all build run clean testenvironment-up testenvironment-down iface-given vagrantfile
all: build

build:
	cd $(WS) && cargo build $(CARGO_FLAGS) -p $(PKG)
	@install -D -m 0755 $(WS)/target/release/$(PKG) $(BIN)
	@echo "built: $(BIN)"

# The example config where there is one, the interface where the use case attaches to one.
RUN_ARGS := $(if $(wildcard $(CONFIG)),--config $(CONFIG)) $(if $(NO_IFACE),,--iface $(IFACE))

run: $(if $(NO_IFACE),,iface-given) build
	$(SUDO) $(BIN) $(RUN_ARGS) $(ARGS)

# `cargo clean -p` removes only this package's artifacts, not the shared workspace target/.
clean:
	cd $(WS) && cargo clean --release -p $(PKG)
	rm -f $(BIN)

testenvironment-up: vagrantfile
	vagrant up

testenvironment-down: vagrantfile
	vagrant destroy -f

iface-given:
	@test -n "$(IFACE)" || { echo "usage: make run IFACE=<interface> [CONFIG=$(CONFIG)] [ARGS=...]" >&2; exit 2; }

vagrantfile:
	@test -f $(VAGRANT_CWD)/Vagrantfile || { echo "no Vagrant environment for $(USECASE): $(VAGRANT_CWD)/Vagrantfile is missing" >&2; exit 1; }
