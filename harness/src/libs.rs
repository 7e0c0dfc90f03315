//! The libraries of the comparison, in report order, and everything the harness knows about
//! each: its language, where its kernel programs come from, how and where its implementations
//! build, which toolchains to record, or why it cannot be built here. Every stage (the run
//! loop, the capability matrix, build metrics, environment versions, `make build` through
//! `harness impls`) reads [`LIBS`]; adding a library is one entry here and its
//! `impls/<lib>/<usecase>/` packages, plus its name in the report's order
//! (`metrics::catalogue::LIBRARIES`, which cannot read this crate; a test checks they agree).

use std::path::{Path, PathBuf};

use metrics::record::{Capability, Status};

#[derive(Debug)]
pub struct Library {
    /// As in `impls/<name>/`, package names `<usecase>-<name>` and reports.
    pub name: &'static str,
    /// The language of its user-space side (the tool glue of the Rust lifecycle aside).
    pub language: &'static str,
    pub kernel: Kernel,
    pub build: Build,
    /// Toolchains beyond today's rustc, recorded in `environment.json`.
    pub tools: &'static [Tool],
    /// The toolchain's one-time cost as set-up timed it: (metric, file relative to the workspace).
    /// `toolchain_install_s`, `toolchain_build_s` and `toolchain_vendor_s` not listed are 0 (a
    /// distribution package installed with the rest, or no such step).
    pub costs: &'static [(&'static str, &'static str)],
    /// Costs of the library's own recommended path, measured in isolation once per run that
    /// measures one of its implementations: findings the report cites ([`crate::measure::library`]).
    pub own_costs: Option<fn(&crate::measure::Ctx) -> anyhow::Result<Vec<metrics::record::Finding>>>,
}

/// Where a library's kernel programs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Its own, in the library's language: `impls/<lib>/<usecase>/kernel/`.
    Own,
    /// The C programs every C-kernel library shares: `impls/kernel/<usecase>/`.
    SharedC,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Build {
    /// Packages of the root cargo workspace, built with `rust-toolchain.toml`.
    Root,
    /// Packages of a cargo workspace of its own (`dir`), with the toolchain its `rust-toolchain`
    /// file pins and vendored crates (offline); a package the root workspace lists (a hybrid)
    /// builds there. Its toolchain's one-time cost gets rows of its own.
    OwnWorkspace { dir: &'static str },
    /// Cannot be built on this machine kind: listed in the capability matrix with the reason.
    NotBuildable { reason: &'static str },
}

/// A toolchain version to record.
#[derive(Debug)]
pub enum Tool {
    /// The first line of `program args`, without `strip`.
    Command { label: &'static str, program: &'static str, args: &'static [&'static str], strip: &'static str },
    /// `rustc --version` of the toolchain named in the file `pin` (relative to the workspace).
    PinnedRustc { label: &'static str, pin: &'static str },
    /// Every package and version pinned in a `debs.lock` (relative to the workspace): Debian
    /// packages unpacked, not installed (cilium/ebpf's Go and Go modules).
    DebianPins { lock: &'static str },
}

pub const LIBS: &[Library] = &[
    Library {
        name: "aya",
        language: "Rust",
        kernel: Kernel::Own,
        build: Build::Root,
        tools: &[
            Tool::PinnedRustc { label: "rustc (kernel side)", pin: "impls/aya/nightly-toolchain" },
            Tool::Command { label: "bpf-linker", program: "bpf-linker", args: &["--version"], strip: "bpf-linker " },
        ],
        costs: &[
            ("toolchain_install_s", "target/toolchain-cost/aya_nightly_install_s"),
            ("toolchain_build_s", "target/toolchain-cost/bpf_linker_build_s"),
        ],
        own_costs: Some(crate::measure::library::aya_btf_cost),
    },
    Library {
        name: "libbpf-rs",
        language: "Rust",
        kernel: Kernel::SharedC,
        build: Build::Root,
        tools: &[CLANG],
        costs: &[],
        own_costs: None,
    },
    Library {
        name: "libbpf",
        language: "C",
        kernel: Kernel::SharedC,
        build: Build::Root,
        tools: &[CLANG, Tool::Command { label: "cc (user side)", program: "cc", args: &["--version"], strip: "" }],
        costs: &[],
        own_costs: None,
    },
    Library {
        name: "redbpf",
        language: "Rust",
        kernel: Kernel::Own,
        build: Build::OwnWorkspace { dir: "impls/redbpf" },
        tools: &[
            Tool::PinnedRustc { label: "rustc (RedBPF)", pin: "impls/redbpf/rust-toolchain" },
            Tool::Command { label: "cargo-bpf", program: "cargo-bpf", args: &["bpf", "--version"], strip: "cargo-bpf " },
            Tool::Command { label: "LLVM (cargo-bpf)", program: "llvm-config-13", args: &["--version"], strip: "" },
        ],
        costs: &[
            ("toolchain_install_s", "impls/redbpf/target/toolchain-cost/rust_install_s"),
            ("toolchain_build_s", "impls/redbpf/target/toolchain-cost/cargo_bpf_build_s"),
            ("toolchain_vendor_s", "impls/redbpf/target/toolchain-cost/vendor_s"),
        ],
        own_costs: None,
    },
    Library {
        name: "cilium-ebpf",
        language: "Go",
        kernel: Kernel::SharedC,
        // Rust packages of the root workspace whose build scripts run Debian's Go (unpacked
        // under target/ by impls/cilium-ebpf/setup.sh, which records its cost).
        build: Build::Root,
        tools: &[CLANG, Tool::DebianPins { lock: "impls/cilium-ebpf/debs.lock" }],
        // Go and the library's sources from Debian, fetched and unpacked by its setup.sh.
        costs: &[("toolchain_install_s", "target/toolchain-cost/cilium-ebpf")],
        own_costs: None,
    },
    Library {
        name: "libbpfgo",
        language: "Go",
        kernel: Kernel::SharedC,
        build: Build::NotBuildable {
            reason: "not buildable here: this machine kind reaches no Go module proxy, and Debian has no libbpfgo package",
        },
        tools: &[],
        costs: &[],
        own_costs: None,
    },
];

const CLANG: Tool = Tool::Command { label: "clang", program: "clang", args: &["--version"], strip: "" };

/// The library called `name`, if it is one of [`LIBS`].
pub fn by_name(name: &str) -> Option<&'static Library> {
    LIBS.iter().find(|l| l.name == name)
}

/// Like [`by_name`], panicking for a name that is not in the registry (a bug in the caller).
pub fn get(name: &str) -> &'static Library {
    by_name(name).unwrap_or_else(|| panic!("`{name}` is not a library of harness/src/libs.rs"))
}

impl Library {
    /// Whether this machine kind can build it (libbpfgo cannot: listed with its reason).
    pub fn buildable(&self) -> bool {
        !matches!(self.build, Build::NotBuildable { .. })
    }

    /// The source directory of its implementation of `usecase`, `impls/<lib>/<usecase>`.
    pub fn source_dir(&self, workspace: &Path, usecase: &str) -> PathBuf {
        workspace.join("impls").join(self.name).join(usecase)
    }

    /// The directory of the kernel program of `usecase` ([`Kernel`]).
    pub fn kernel_dir(&self, workspace: &Path, usecase: &str) -> PathBuf {
        match self.kernel {
            Kernel::Own => self.source_dir(workspace, usecase).join("kernel"),
            Kernel::SharedC => workspace.join("impls").join("kernel").join(usecase),
        }
    }

    /// Whether and how it implements `usecase`: not buildable here (with the reason), missing
    /// (no package), or what the implementation's own `capability.yml` declares (native if none).
    pub fn capability(&self, workspace: &Path, usecase: &str) -> Capability {
        let dir = self.source_dir(workspace, usecase);
        let (status, note) = match self.build {
            Build::NotBuildable { reason } => (Status::NotBuildable, reason.to_string()),
            _ if dir.join("Cargo.toml").exists() => crate::usecases::declared_capability(&dir),
            _ => (Status::Missing, "not implemented".into()),
        };
        Capability { usecase: usecase.into(), lib: self.name.into(), status, note }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The report orders and colours libraries by metrics' list: it must name the same ones.
    #[test]
    fn report_knows_every_library_in_order() {
        let names: Vec<&str> = LIBS.iter().map(|l| l.name).collect();
        assert_eq!(names, metrics::catalogue::LIBRARIES);
    }

    #[test]
    fn unbuildable_library_is_listed_with_its_reason() {
        let workspace = crate::process::workspace_dir();
        let c = get("libbpfgo").capability(&workspace, "packetfilter");
        assert_eq!(c.status, Status::NotBuildable);
        assert!(c.note.contains("Go module proxy"), "{}", c.note);
    }

    #[test]
    fn shared_c_kernels_exist() {
        let workspace = crate::process::workspace_dir();
        for usecase in crate::usecases::NAMES {
            let dir = get("libbpf-rs").kernel_dir(&workspace, usecase);
            assert!(dir.join(format!("{usecase}.bpf.c")).is_file(), "{}", dir.display());
        }
    }
}
