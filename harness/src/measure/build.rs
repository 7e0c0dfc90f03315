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
use metrics::record::{Provenance, Row};

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

/// The implementations' packages (`<usecase>-<lib>`) that build in the cargo workspace `dir`
/// ([`Cargo::of_impl`]): every use case and buildable library of the registries with an
/// implementation. `harness impls` prints them for the Makefile, which builds what they list.
pub fn packages_in(workspace: &Path, dir: &Path) -> Result<Vec<String>> {
    Ok(built_in(workspace, dir, crate::libs::LIBS)?.iter().map(Implementation::package).collect())
}

/// The implementations of `libs` whose package builds in the cargo workspace `dir`, in use-case
/// order: what the Makefile builds there, and (of one library) which tool opens its [`Group`].
fn built_in(workspace: &Path, dir: &Path, libs: &[crate::libs::Library]) -> Result<Vec<Implementation>> {
    let dir = dir.canonicalize().with_context(|| format!("cargo workspace {}", dir.display()))?;
    let mut imps = Vec::new();
    for usecase in crate::usecases::NAMES {
        for lib in libs {
            if !lib.capability(workspace, usecase).status.is_implemented() {
                continue;
            }
            let imp = Implementation::at(workspace, usecase, lib.name);
            if Cargo::of_impl(workspace, &imp)?.dir.canonicalize()? == dir {
                imps.push(imp);
            }
        }
    }
    Ok(imps)
}

/// The build of `imp` in its library's target directory ([`Group`]): from empty for the
/// library's first tool (`build_cold_s`), after its other tools for the rest (`build_next_s`),
/// then `reps` warm rebuilds after touching the kernel program (also with `--quick`: a build is
/// what a user pays first). When nothing the build reads changed since an earlier run
/// ([`BuildCache`]), its build rows and binary are reused instead, and the run's
/// `provenance.json` says so.
pub fn build(ctx: &Ctx, imp: &Implementation) -> Result<Built> {
    let cache = BuildCache::of(ctx, imp);
    if !ctx.rebuild {
        if let Some(reused) = cache.reusable(ctx, imp)? {
            let metrics = metrics_of(reused.rows.iter().filter(|r| !r.metric.starts_with("toolchain_")));
            ctx.provenance(Provenance {
                usecase: imp.usecase.clone(),
                lib: imp.lib.clone(),
                metrics,
                source: format!("reused from the run {} (sources and toolchains unchanged)", reused.run),
            });
            // The report links every object's disassembly: write it from the reused build's object.
            let release = reused.binary.parent().context("a reused binary is in <target>/release")?;
            disassemble(ctx, &imp.package(), &bpf_object(release, &imp.package())?)?;
            let mut rows = reused.rows;
            rows.retain(|r| !r.metric.starts_with("toolchain_"));
            rows.extend(toolchain_rows(ctx, imp)?);
            return Ok(Built { binary: reused.binary, rows });
        }
    }
    let mut built = build_fresh(ctx, imp)?;
    cache.store(ctx, imp, &built)?;
    // Not cached: set-up's timing may have been recorded since, and says where it comes from.
    built.rows.extend(toolchain_rows(ctx, imp)?);
    Ok(built)
}

fn build_fresh(ctx: &Ctx, imp: &Implementation) -> Result<Built> {
    let workspace = ctx.workspace.as_path();
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    let cargo = Cargo::of_impl(workspace, imp)?;
    let group = Group::of(ctx, imp, &cargo)?;
    let cold = group.first == imp.package() || !group.target.exists();
    if cold && group.target.exists() {
        std::fs::remove_dir_all(&group.target).with_context(|| format!("emptying {}", group.target.display()))?;
    }
    let target = group.target;
    let metric = if cold { "build_cold_s" } else { "build_next_s" };
    let mut rows = vec![Row::new(u, l, metric, "s", 1, cargo_build(&cargo, &target, &imp.package())?)];

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
    disassemble(ctx, &imp.package(), &bpf_object(&target.join("release"), &imp.package())?)?;
    Ok(Built { binary, rows })
}

/// The target directory a library's tools build in for their build metrics, one per library
/// and cargo workspace (a hybrid, lsmbpf-redbpf, builds apart in the root workspace): what a
/// user building several tools with one library has. Its first tool in use-case order builds
/// from empty — the cost of a first build with the library, nearly all of it the library's
/// crates — and each further tool after the others, paying for its own code and only the
/// crates and build-script work the others did not share. One cold build per library instead
/// of one per tool: the cold builds were 20 of `make run`'s minutes from clean, each tool's
/// within a few seconds of its library's others but for what is now `build_next_s`.
struct Group {
    target: PathBuf,
    /// The package of the first tool.
    first: String,
}

impl Group {
    fn of(ctx: &Ctx, imp: &Implementation, cargo: &Cargo) -> Result<Group> {
        let ws = ctx.workspace.as_path();
        let lib = imp.library();
        let apart = Cargo::of(ws, lib)?.dir != cargo.dir;
        let first = built_in(ws, &cargo.dir, std::slice::from_ref(lib))?.first().map(Implementation::package);
        let name = if apart { format!("{}-in-root", imp.lib) } else { imp.lib.clone() };
        Ok(Group { target: ctx.target_root().join("build").join(name), first: first.unwrap_or_else(|| imp.package()) })
    }
}

fn metrics_of<'r>(rows: impl Iterator<Item = &'r Row>) -> Vec<String> {
    let mut m: Vec<String> = rows.map(|r| r.metric.clone()).collect();
    m.sort();
    m.dedup();
    m
}

/// Build metrics of one implementation as an earlier run measured them, with what they
/// depended on: `target/harness/build-cache/<package>.json`. Reused when every file is as it
/// was — the implementation's directory, the files its build compiled (dep-info), its declared
/// patches, the lockfiles — and so are the toolchain and crate versions ([`super::versions`]).
struct BuildCache {
    path: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Cached {
    /// The run directory that measured the rows.
    run: String,
    /// FNV-1a of the inputs' contents and of the versions.
    key: String,
    /// The files the key covers (relative to the workspace).
    files: Vec<PathBuf>,
    binary: PathBuf,
    rows: Vec<Row>,
    /// `loc/<package>.json` of that run.
    loc: serde_json::Value,
}

impl BuildCache {
    fn of(ctx: &Ctx, imp: &Implementation) -> BuildCache {
        BuildCache { path: ctx.target_root().join("build-cache").join(format!("{}.json", imp.package())) }
    }

    fn reusable(&self, ctx: &Ctx, imp: &Implementation) -> Result<Option<Cached>> {
        let Ok(text) = std::fs::read_to_string(&self.path) else { return Ok(None) };
        let Ok(cached) = serde_json::from_str::<Cached>(&text) else { return Ok(None) };
        let files = inputs(ctx, imp, &cached.files)?;
        if files != cached.files || key(ctx, imp, &files)? != cached.key || !cached.binary.is_file() {
            return Ok(None);
        }
        // The per-file lines of code go with the rows.
        let dir = ctx.out.join("loc");
        std::fs::create_dir_all(&dir)?;
        metrics::record::write_json(&dir.join(format!("{}.json", imp.package())), &cached.loc)?;
        Ok(Some(cached))
    }

    fn store(&self, ctx: &Ctx, imp: &Implementation, built: &Built) -> Result<()> {
        let release = built.binary.parent().context("a built binary is in <target>/release")?;
        let dep_info = release.join(format!("{}.d", imp.package()));
        let compiled = metrics::loc::dep_info(&dep_info, &ctx.workspace)?;
        let files = inputs(ctx, imp, &compiled)?;
        let loc_path = ctx.out.join("loc").join(format!("{}.json", imp.package()));
        let loc = std::fs::read_to_string(&loc_path).with_context(|| format!("reading {}", loc_path.display()))?;
        let cached = Cached {
            run: ctx.out.display().to_string(),
            key: key(ctx, imp, &files)?,
            files,
            binary: built.binary.clone(),
            rows: built.rows.clone(),
            loc: serde_json::from_str(&loc)?,
        };
        std::fs::create_dir_all(self.path.parent().expect("has a parent"))?;
        metrics::record::write_json(&self.path, &cached)
    }
}

/// The files a build of `imp` reads, sorted, relative to the workspace: `compiled` (its
/// dep-info), every file of its directory and of its library's build support and patches, and
/// the lockfiles and manifests of both workspaces.
fn inputs(ctx: &Ctx, imp: &Implementation, compiled: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let ws = ctx.workspace.as_path();
    let lib_dir = ws.join("impls").join(&imp.lib);
    let mut files: BTreeSet<PathBuf> = compiled.iter().map(|f| f.strip_prefix(ws).unwrap_or(f).to_path_buf()).collect();
    for dir in [imp.source_dir(ws), lib_dir.join("build-support"), lib_dir.join("patches")] {
        walk(&dir, &mut |f| {
            files.insert(f.strip_prefix(ws).unwrap_or(f).to_path_buf());
        })?;
    }
    for f in ["Cargo.lock", "Cargo.toml", "rust-toolchain.toml"] {
        for dir in [ws, lib_dir.as_path()] {
            if dir.join(f).is_file() {
                files.insert(dir.join(f).strip_prefix(ws).unwrap_or(Path::new(f)).to_path_buf());
            }
        }
    }
    Ok(files.into_iter().collect())
}

/// Every file under `dir` (none if it does not exist), without build output (`target/`).
fn walk(dir: &Path, f: &mut dyn FnMut(&Path)) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                walk(&path, f)?;
            }
        } else {
            f(&path);
        }
    }
    Ok(())
}

/// FNV-1a (64 bit) over the files' names and contents and the toolchain and crate versions:
/// enough to notice a change, which is all it is for.
fn key(ctx: &Ctx, imp: &Implementation, files: &[PathBuf]) -> Result<String> {
    let mut h = crate::fingerprint::Fingerprint::default();
    for f in files {
        h.feed(f.as_os_str().as_encoded_bytes());
        // A vanished file is a change, as an empty one.
        h.feed(&std::fs::read(ctx.workspace.join(f)).unwrap_or_default());
    }
    h.feed(serde_json::to_string(&super::versions(&ctx.workspace, imp))?.as_bytes());
    Ok(h.hex())
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

/// What a library's toolchain costs once, before its first build, for every library the same
/// way: as set-up paid it (the set-up scripts time each step when they run it, into the files
/// the library registry names, [`crate::libs::Library::costs`]), replayed
/// here and said so in `provenance.json` (a repeat in the run would find everything cached):
/// - `toolchain_install_s`: rustup installing the extra Rust (Aya: the nightly with rust-src;
///   RedBPF: Rust 1.59);
/// - `toolchain_build_s`: the build tool compiled from source (Aya: `cargo install
///   bpf-linker`; RedBPF: cargo-bpf 2.3.0 with LLVM 13);
/// - `toolchain_vendor_s`: resolving and vendoring crates the pinned old cargo cannot fetch
///   (RedBPF; none for the others).
///
/// A step the registry names no file for is 0 (libbpf-rs and libbpf need Debian's clang only, a
/// distribution package set-up installs with the rest in one apt call, not timed apart). A step set-up never timed (a
/// toolchain installed before it timed them) has no row, and `provenance.json` says why.
fn toolchain_rows(ctx: &Ctx, imp: &Implementation) -> Result<Vec<Row>> {
    let ws = &ctx.workspace;
    let recorded = |metric: &str| imp.library().costs.iter().find(|(m, _)| *m == metric).map(|(_, f)| ws.join(f));
    let files = ["toolchain_install_s", "toolchain_build_s", "toolchain_vendor_s"].map(|m| (m, recorded(m)));
    let (mut rows, mut replayed, mut missing) = (Vec::new(), Vec::new(), Vec::new());
    for (metric, file) in files {
        let value = match &file {
            None => Some(0.0),
            Some(f) => std::fs::read_to_string(f).ok().and_then(|t| t.trim().parse::<f64>().ok()),
        };
        match (value, file) {
            (Some(v), Some(f)) => {
                rows.push(Row::new(&imp.usecase, &imp.lib, metric, "s", 1, v));
                replayed.push(format!("{metric} ({})", f.strip_prefix(ws).unwrap_or(&f).display()));
            }
            (Some(v), None) => rows.push(Row::new(&imp.usecase, &imp.lib, metric, "s", 1, v)),
            (None, Some(f)) => missing.push(format!("{metric} ({} missing)", f.strip_prefix(ws).unwrap_or(&f).display())),
            (None, None) => unreachable!("a value without a file is 0"),
        }
    }
    let (usecase, lib) = (imp.usecase.clone(), imp.lib.clone());
    if !replayed.is_empty() {
        ctx.provenance(Provenance {
            usecase: usecase.clone(),
            lib: lib.clone(),
            metrics: replayed,
            source: "replayed from set-up's timing of its own run (target/toolchain-cost)".into(),
        });
    }
    if !missing.is_empty() {
        ctx.provenance(Provenance {
            usecase,
            lib,
            metrics: missing,
            source: "not recorded: set-up found the toolchain installed and did not time it; \
                     `scripts/setup.sh --time-toolchains` reinstalls and times it"
                .into(),
        });
    }
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
    let embeds = |blob: &[u8]| embeds(&loader, blob);
    let bin_debug = if embeds(&full) { debug } else { 0 };
    let bridge = bridge_library(release, &loader)?.map_or(0, |b| b.len());
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

/// The object's disassembly with relocations, `objects/<package>.txt` in the report: the evidence
/// behind instruction counts and the findings that cite them.
fn disassemble(ctx: &Ctx, package: &str, object: &Path) -> Result<()> {
    let dir = ctx.out.join("objects");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(format!("{package}.txt"));
    std::fs::write(&path, crate::objects::disassemble(object)?).with_context(|| format!("writing {}", path.display()))
}

/// The BPF object the package's build left (library-neutrally: [`crate::objects`]). A build that
/// leaves several — lsmbpf-redbpf: RedBPF's object and the copy without RedBPF's sections that
/// its Aya loader embeds — is measured by the one its loader (`<release>/<package>`) embeds: the
/// object as loaded.
fn bpf_object(release: &Path, package: &str) -> Result<PathBuf> {
    let found = crate::objects::in_build_output(release, package)?;
    match found.as_slice() {
        [one] => return Ok(one.clone()),
        [] => bail!("no BPF object (ELF, EM_BPF) under {}/build/{package}-*/out", release.display()),
        _ => {}
    }
    let binary = release.join(package);
    let loader = std::fs::read(&binary).with_context(|| format!("reading {}", binary.display()))?;
    let embedded: Vec<&PathBuf> = found
        .iter()
        .filter(|p| std::fs::read(p).is_ok_and(|o| embeds(&loader, &o)))
        .collect();
    match embedded.as_slice() {
        [one] => Ok((*one).clone()),
        _ => bail!("{package} built {} BPF objects, and its loader embeds {} of them, not one: {found:?}", found.len(), embedded.len()),
    }
}

/// Whether `binary` carries `blob` byte for byte (an embedded object or library).
fn embeds(binary: &[u8], blob: &[u8]) -> bool {
    !blob.is_empty() && binary.windows(blob.len()).any(|w| w == blob)
}

/// The RedBPF bridge (bpfeval-shared as a shared object, which the bridge's build script leaves
/// in its `out/`) that `loader` embeds, if any: its library's other tools, built in the same
/// target directory, leave one each, with their features.
fn bridge_library(release: &Path, loader: &[u8]) -> Result<Option<Vec<u8>>> {
    let Ok(dirs) = std::fs::read_dir(release.join("build")) else { return Ok(None) };
    for dir in dirs.flatten() {
        let path = dir.path().join("out/libbpfeval_shared_lifecycle.so");
        match std::fs::read(&path) {
            Ok(bytes) if embeds(loader, &bytes) => return Ok(Some(bytes)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// What the Makefile builds (`harness impls` for each workspace): every implementation of the
    /// registries exactly once, a hybrid (lsmbpf-redbpf) in the root workspace that lists it.
    #[test]
    fn every_implementation_builds_in_one_workspace() {
        let ws = crate::process::workspace_dir();
        let mut dirs = vec![ws.clone()];
        dirs.extend(crate::libs::LIBS.iter().filter_map(|l| match l.build {
            Build::OwnWorkspace { dir } => Some(ws.join(dir)),
            _ => None,
        }));
        let mut listed: Vec<String> = dirs.iter().flat_map(|d| packages_in(&ws, d).unwrap()).collect();
        listed.sort();
        let mut expected: Vec<String> = crate::usecases::NAMES
            .iter()
            .flat_map(|u| crate::libs::LIBS.iter().map(move |l| (u, l)))
            .filter(|(u, l)| l.capability(&ws, u).status.is_implemented())
            .map(|(u, l)| format!("{u}-{}", l.name))
            .collect();
        expected.sort();
        assert_eq!(listed, expected);
        assert!(packages_in(&ws, &ws).unwrap().contains(&"lsmbpf-redbpf".to_string()));
        assert!(packages_in(&ws, &ws.join("impls/redbpf")).unwrap().contains(&"packetfilter-redbpf".to_string()));
    }
}
