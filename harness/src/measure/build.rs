//! Source and build metrics of one implementation: lines of code, dependency count, cold and
//! warm build time in the implementation's own target directory, BPF object and loader size.
//! Where a library builds is its registry entry ([`crate::libs::Build`]): the root workspace, or
//! (RedBPF) a workspace of its own with its own toolchain ([`Cargo`]), except hybrids whose
//! loader is on today's Rust (the root workspace lists those); such a toolchain's one-time cost
//! is recorded on lines of its own.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use metrics::record::Row;

use super::Ctx;
use crate::libs::{Build, Library};
use crate::process::Implementation;

/// The result of building one implementation in its own target directory.
pub struct Built {
    pub binary: PathBuf,
    pub rows: Vec<Row>,
}

/// The number of crates in the loader's dependency tree.
pub fn source(workspace: &Path, imp: &Implementation) -> Result<Vec<Row>> {
    let cargo = Cargo::of_impl(workspace, imp)?;
    let mut crates = dep_crates(&cargo, &imp.package())?;
    if cargo.toolchain.is_some() {
        // A loader on its own toolchain (RedBPF's) embeds bpfeval-shared, built in the root
        // workspace (impls/redbpf/shared).
        crates.extend(dep_crates(&Cargo::root(workspace), REDBPF_LIFECYCLE)?);
    }
    Ok(vec![Row::new(&imp.usecase, &imp.lib, "dep_crates", "crates", 1, crates.len() as f64)])
}

/// Lines of code by category ([`metrics::loc`]): the implementation's directory, every file of
/// the repository its build compiled (the dep-info of the binary in `release`), and the patches
/// to its library it declares. The per-file list goes to `loc/<package>.json` in the report.
pub fn loc(ctx: &Ctx, imp: &Implementation, release: &Path) -> Result<Vec<Row>> {
    let workspace = ctx.workspace.as_path();
    let dep_info = release.join(format!("{}.d", imp.package()));
    let mut files = metrics::loc::dep_info(&dep_info, workspace)?;
    files.extend(crate::usecases::declared_patches(&imp.source_dir(workspace)));
    let loc = metrics::loc::count(workspace, &imp.source_dir(workspace), &files)?;
    let dir = ctx.out.join("loc");
    std::fs::create_dir_all(&dir)?;
    metrics::record::write_json(&dir.join(format!("{}.json", imp.package())), &loc)?;
    Ok(loc.rows(&imp.usecase, &imp.lib))
}

/// Distinct crates (by name) in the package's normal and build dependency tree, the package
/// itself excluded. Build dependencies count: they are what a user compiles.
fn dep_crates(cargo: &Cargo, package: &str) -> Result<BTreeSet<String>> {
    let out = cargo
        .command()
        .args(["tree", "--locked", "-p", package, "-e", "normal,build", "--prefix", "none", "--no-dedupe"])
        .output()
        .context("running cargo tree")?;
    if !out.status.success() {
        bail!("cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| *name != package)
        .map(String::from)
        .collect())
}

/// bpfeval-shared as a shared object, which every loader on an own toolchain (RedBPF) embeds.
const REDBPF_LIFECYCLE: &str = "bpfeval-shared-lifecycle";

/// Where and with which toolchain an implementation's package builds: the root workspace with
/// its toolchain, or a library's own ([`Build::OwnWorkspace`]).
pub(crate) struct Cargo {
    dir: PathBuf,
    /// `+toolchain` and flags for RedBPF (whose builds are offline, from vendored crates).
    toolchain: Option<String>,
}

impl Cargo {
    fn root(workspace: &Path) -> Cargo {
        Cargo { dir: workspace.to_path_buf(), toolchain: None }
    }

    pub(crate) fn of(workspace: &Path, lib: &Library) -> Result<Cargo> {
        match lib.build {
            Build::Root => Ok(Cargo::root(workspace)),
            Build::OwnWorkspace { dir } => {
                let dir = workspace.join(dir);
                let file = dir.join("rust-toolchain");
                let toolchain =
                    std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
                Ok(Cargo { dir, toolchain: Some(toolchain.trim().to_string()) })
            }
            Build::NotBuildable { reason } => bail!("{}: {reason}", lib.name),
        }
    }

    /// Where `imp`'s package builds: its library's workspace ([`Cargo::of`]), except for a
    /// package of an own-workspace library that the root workspace lists, a hybrid
    /// (lsmbpf-redbpf: RedBPF's kernel program, aya's loader), which builds there and runs
    /// cargo-bpf in its build script.
    pub(crate) fn of_impl(workspace: &Path, imp: &Implementation) -> Result<Cargo> {
        let root = Cargo::root(workspace);
        let lib = imp.library();
        if matches!(lib.build, Build::OwnWorkspace { .. }) && root.lists(&imp.package())? {
            return Ok(root);
        }
        Cargo::of(workspace, lib)
    }

    /// Whether `package` is a package of this workspace (`cargo metadata --no-deps`).
    fn lists(&self, package: &str) -> Result<bool> {
        let out = self.command().args(["metadata", "--no-deps", "--format-version", "1"]).output();
        let out = out.context("running cargo metadata")?;
        if !out.status.success() {
            bail!("cargo metadata in {}: {}", self.dir.display(), String::from_utf8_lossy(&out.stderr).trim());
        }
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing cargo metadata")?;
        let packages = meta["packages"].as_array().context("no packages in cargo metadata")?;
        Ok(packages.iter().any(|p| p["name"] == package))
    }

    /// `cargo` in the workspace directory (`cargo +<toolchain> --offline` for RedBPF).
    pub(crate) fn command(&self) -> Command {
        let mut cargo = Command::new("cargo");
        cargo.current_dir(&self.dir);
        if let Some(toolchain) = &self.toolchain {
            cargo.arg(format!("+{toolchain}")).arg("--offline");
        }
        cargo
    }
}

/// Cold build in the implementation's own, emptied target directory, then `reps` warm rebuilds
/// after touching the kernel program (also with `--quick`: a build is what a user pays first).
pub fn build(ctx: &Ctx, imp: &Implementation) -> Result<Built> {
    let workspace = ctx.workspace.as_path();
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    let cargo = Cargo::of_impl(workspace, imp)?;
    let mut rows = Vec::new();
    let target = ctx.target_root().join(imp.package());
    if target.exists() {
        std::fs::remove_dir_all(&target).with_context(|| format!("emptying {}", target.display()))?;
    }
    rows.push(Row::new(u, l, "build_cold_s", "s", 1, cargo_build(&cargo, &target, &imp.package())?));
    if let Build::OwnWorkspace { dir } = imp.library().build {
        rows.extend(redbpf_toolchain(ctx, u, imp.library(), dir)?);
    }

    let kernel = kernel_sources(&imp.kernel_dir(workspace))?;
    for rep in 1..=ctx.reps {
        ctx.check_interrupted()?;
        for file in &kernel {
            touch(file)?;
        }
        rows.push(Row::new(u, l, "build_warm_s", "s", rep, cargo_build(&cargo, &target, &imp.package())?));
    }

    let binary = target.join("release").join(imp.package());
    rows.extend(loc(ctx, imp, &target.join("release"))?);
    rows.extend(artifact_rows(u, l, &target.join("release"), &imp.package(), &binary)?);
    Ok(Built { binary, rows })
}

fn cargo_build(cargo: &Cargo, target: &Path, package: &str) -> Result<f64> {
    let started = Instant::now();
    let out = cargo
        .command()
        .env("CARGO_TARGET_DIR", target)
        .args(["build", "--release", "--locked", "-p", package])
        .output()
        .context("running cargo build")?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(30).collect();
        bail!("cargo build -p {package} failed:\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"));
    }
    Ok(secs)
}

/// What RedBPF's toolchain costs before its first build, as lines of their own: the cold build
/// of cargo-bpf 2.3.0 with LLVM 13 (`toolchain_build_s`; in a fresh target directory, or with
/// `--quick` as impls/redbpf/setup.sh timed it), and the resolving and vendoring of its crates
/// (`toolchain_vendor_s`, as setup.sh timed it: a repeat here would find everything cached).
fn redbpf_toolchain(ctx: &Ctx, usecase: &str, lib: &Library, dir: &str) -> Result<Vec<Row>> {
    let dir = ctx.workspace.join(dir);
    let recorded = |name: &str| -> Option<f64> {
        std::fs::read_to_string(dir.join("target/toolchain-cost").join(name)).ok()?.trim().parse().ok()
    };
    let mut rows = Vec::new();
    // Measured once per run: every RedBPF use case shares the one cargo-bpf.
    static MEASURED: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    let build = if ctx.quick {
        recorded("cargo_bpf_build_s")
    } else if let Some(s) = MEASURED.get() {
        Some(*s)
    } else {
        ctx.check_interrupted()?;
        let target = ctx.target_root().join("redbpf-cargo-bpf");
        if target.exists() {
            std::fs::remove_dir_all(&target).with_context(|| format!("emptying {}", target.display()))?;
        }
        let cargo = Cargo { dir: dir.join("tools/cargo-bpf"), ..Cargo::of(&ctx.workspace, lib)? };
        let started = Instant::now();
        let out = cargo
            .command()
            .env("CARGO_TARGET_DIR", &target)
            .env("LLVM_SYS_130_PREFIX", "/usr/lib/llvm-13")
            .args(["build", "--release", "--locked"])
            .output()
            .context("running cargo build for cargo-bpf")?;
        if !out.status.success() {
            bail!("building cargo-bpf failed:\n{}", String::from_utf8_lossy(&out.stderr).trim());
        }
        Some(*MEASURED.get_or_init(|| started.elapsed().as_secs_f64()))
    };
    rows.extend(build.map(|s| Row::new(usecase, lib.name, "toolchain_build_s", "s", 1, s)));
    rows.extend(recorded("vendor_s").map(|s| Row::new(usecase, lib.name, "toolchain_vendor_s", "s", 1, s)));
    Ok(rows)
}

/// The files of the kernel program under `kernel` ([`Implementation::kernel_dir`]).
fn kernel_sources(kernel: &Path) -> Result<Vec<PathBuf>> {
    let kernel = kernel.to_path_buf();
    let mut files = Vec::new();
    let mut stack = vec![kernel.clone()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                stack.push(path);
            } else if matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "c" | "h")) {
                files.push(path);
            }
        }
    }
    if files.is_empty() {
        bail!("no kernel program sources under {}", kernel.display());
    }
    Ok(files)
}

fn touch(path: &Path) -> Result<()> {
    let f = std::fs::File::options().append(true).open(path).with_context(|| format!("opening {}", path.display()))?;
    f.set_modified(std::time::SystemTime::now()).with_context(|| format!("touching {}", path.display()))
}

/// The same artifacts for every library:
/// - `obj_bytes`: the BPF object as loaded — DWARF stripped (`llvm-strip -g`), BTF kept — with
///   `obj_debug_bytes`, the DWARF the build left in it (Aya's toolchain keeps it: bpf-linker
///   derives BTF from it);
/// - `bin_bytes`: the stripped loader without the DWARF of a BPF object it embeds
///   (`bin_debug_bytes`) and without our RedBPF bridge (`bridge_bytes`: bpfeval-shared as a
///   shared object, plumbing of ours that the library does not need).
fn artifact_rows(u: &str, l: &str, release: &Path, package: &str, binary: &Path) -> Result<Vec<Row>> {
    let object = bpf_object(release, package)?;
    let full = std::fs::read(&object).with_context(|| format!("reading {}", object.display()))?;
    let without_debug = stripped(&object, "llvm-strip", &["-g"])?;
    let debug = full.len() - without_debug.len();
    let loader = stripped(binary, "strip", &[])?;
    let embeds = |blob: &[u8]| !blob.is_empty() && loader.windows(blob.len()).any(|w| w == blob);
    let bin_debug = if embeds(&full) { debug } else { 0 };
    let bridge = bridge_library(release).map(|p| std::fs::read(p)).transpose()?.filter(|b| embeds(b));
    let bridge = bridge.map_or(0, |b| b.len());
    let mut rows = vec![
        Row::new(u, l, "obj_bytes", "bytes", 1, without_debug.len() as f64),
        Row::new(u, l, "obj_debug_bytes", "bytes", 1, debug as f64),
        Row::new(u, l, "bin_bytes", "bytes", 1, (loader.len() - bin_debug - bridge) as f64),
        Row::new(u, l, "bin_debug_bytes", "bytes", 1, bin_debug as f64),
    ];
    if bridge > 0 {
        rows.push(Row::new(u, l, "bridge_bytes", "bytes", 1, bridge as f64));
    }
    Ok(rows)
}

/// The BPF object the build produced, found library-neutrally: the newest ELF file with machine
/// type EM_BPF in the package's build-script output (`release/build/<package>-*/out`), where
/// aya-build, libbpf-cargo and cargo-bpf leave it.
fn bpf_object(release: &Path, package: &str) -> Result<PathBuf> {
    const EM_BPF: u16 = 247;
    let build = release.join("build");
    let prefix = format!("{package}-");
    let is_bpf = |path: &Path| {
        let mut head = [0u8; 20];
        std::fs::File::open(path)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
            .map(|()| &head[..4] == b"\x7fELF" && u16::from_le_bytes([head[18], head[19]]) == EM_BPF)
            .unwrap_or(false)
    };
    newest_file(&build, &prefix, &|p| is_bpf(p) && !p.components().any(|c| c.as_os_str() == "deps"))?
        .with_context(|| format!("no BPF object (ELF, EM_BPF) under {}/{prefix}*/out", build.display()))
}

/// The RedBPF bridge library a loader's build left for embedding, if any.
fn bridge_library(release: &Path) -> Option<PathBuf> {
    newest_file(&release.join("build"), "", &|p| p.file_name().is_some_and(|n| n == "libbpfeval_shared_lifecycle.so"))
        .ok()
        .flatten()
        .filter(|p| !p.components().any(|c| c.as_os_str() == "lifecycle-target"))
}

/// The newest file under `build/<prefix>*/out` that `wanted` accepts.
fn newest_file(build: &Path, prefix: &str, wanted: &dyn Fn(&Path) -> bool) -> Result<Option<PathBuf>> {
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    let mut stack: Vec<PathBuf> = std::fs::read_dir(build)
        .with_context(|| format!("reading {}", build.display()))?
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .map(|e| e.path().join("out"))
        .collect();
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let (path, meta) = (entry.path(), entry.metadata()?);
            if meta.is_dir() {
                stack.push(path);
            } else if wanted(&path) {
                let modified = meta.modified()?;
                if newest.as_ref().is_none_or(|(t, _)| modified > *t) {
                    newest = Some((modified, path));
                }
            }
        }
    }
    Ok(newest.map(|(_, p)| p))
}

/// The bytes of `file` after `tool ARGS -o TMP file` (strip: symbols; llvm-strip -g: DWARF).
fn stripped(file: &Path, tool: &str, args: &[&str]) -> Result<Vec<u8>> {
    let tmp = file.with_extension("stripped");
    let status = Command::new(tool).args(args).arg("-o").arg(&tmp).arg(file).status();
    let status = status.with_context(|| format!("running {tool}"))?;
    if !status.success() {
        bail!("{tool} {} failed", file.display());
    }
    let bytes = std::fs::read(&tmp)?;
    std::fs::remove_file(&tmp)?;
    Ok(bytes)
}
