//! `harness kernels`: the compatibility matrix of every implementation on each kernel.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use harness::bad_input;
use harness::kernels::{self, Cell};
use harness::usecases::NAMES as USECASES;

/// A comma-separated argument's entries, each one of `known`, none empty or repeated.
pub fn entries<'a>(flag: &str, given: &'a [String], known: &[&str]) -> Result<Vec<&'a str>> {
    let mut out: Vec<&str> = Vec::new();
    for g in given {
        let g = g.as_str();
        if g.trim().is_empty() {
            return Err(bad_input!("{flag}: malformed list {:?}: an empty entry", given.join(",")));
        }
        if !known.contains(&g) {
            return Err(bad_input!("{flag}: unknown {g:?} (known: {})", known.join(",")));
        }
        if out.contains(&g) {
            return Err(bad_input!("{flag}: {g:?} given twice"));
        }
        out.push(g);
    }
    Ok(out)
}

/// `out` must be a directory or not exist yet.
fn out_dir(out: &Path) -> Result<()> {
    if out.exists() && !out.is_dir() {
        return Err(bad_input!("--out {}: exists and is not a directory", out.display()));
    }
    Ok(())
}

/// Runs the matrix and writes `<out>/kernels.csv`; true when every cell passed or the kernel
/// lacks the feature (the matrix is the answer, not a failure). Arguments are checked before
/// anything is fetched or booted.
/// With `reuse`, cells an earlier run checked with the same binary, kernel and checks are taken
/// from [`kernels::CellCache`] instead of checked again.
/// The binaries are `<impls>/<usecase>-<lib>` (target/impls, or a run's own builds).
pub fn run(series: &[String], usecases: &[String], libs: &[String], impls: &Path, out: &Path, reuse: bool) -> Result<bool> {
    let all_libs: Vec<&str> = harness::libs::LIBS.iter().map(|l| l.name).collect();
    entries("--kernels", series, kernels::ALL)?;
    let usecases = entries("--usecases", usecases, USECASES)?;
    let libs = entries("--libs", libs, &all_libs)?;
    out_dir(out)?;
    let usecases = if usecases.is_empty() { USECASES.to_vec() } else { usecases };
    let libs = if libs.is_empty() { all_libs } else { libs };
    let (imps, missing) = kernels::implementations(impls, &usecases, &libs);
    let guest_bin = std::env::current_exe()?.parent().context("harness without a directory")?.join("kernels-guest");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    // Fetched one after another (one private apt state), then the kernels run side by side, one
    // qemu (single-threaded TCG) or the host check per core. A failed fetch fails again, and is
    // reported, in run_kernel (which finds the fetched ones cached).
    for s in series.iter().filter(|s| *s != "host") {
        let _ = kernels::fetch(s);
    }
    let cache = match reuse.then(|| kernels::CellCache::open(&guest_bin, out)).transpose() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("warning: checking every kernel cell again: {e:#}");
            None
        }
    };
    let one = |s: &str| -> Vec<Cell> {
        let started = Instant::now();
        // Without an identity for the kernel nothing is reused (nor stored).
        let cache = cache.as_ref().and_then(|c| kernels::CellCache::kernel_id(s).ok().map(|k| (c, k)));
        let mut reused = Vec::new();
        let mut to_check = Vec::new();
        for imp in &imps {
            match cache.as_ref().and_then(|(c, k)| c.get(s, k, imp)) {
                Some(c) => reused.push(Cell { kernel: s.into(), ..c }),
                None => to_check.push(imp.clone()),
            }
        }
        let got = if to_check.is_empty() {
            Ok(Vec::new())
        } else if s == "host" {
            let mut v = Vec::new();
            kernels::check_all(&to_check, |c| v.push(Cell { kernel: "host".into(), ..c }));
            Ok(v)
        } else {
            kernels::run_kernel(s, &to_check, &guest_bin)
        };
        if let (Ok(checked), Some((cache, k))) = (&got, &cache) {
            for c in checked {
                let imp = to_check.iter().find(|i| i.usecase == c.usecase && i.lib == c.lib);
                if let Some(Err(e)) = imp.map(|imp| cache.put(s, k, imp, c)) {
                    eprintln!("warning: kernel {s}: not cached: {e:#}");
                }
            }
        }
        let imps = &to_check;
        let mut cells = match got {
            Ok(v) => v,
            // A guest that did not boot or crashed fails every cell of that kernel, loudly.
            Err(e) => {
                eprintln!("kernel {s}: {e:#}");
                let detail = format!("guest run failed: {}", format!("{e:#}").lines().next().unwrap_or(""));
                imps.iter()
                    .map(|imp| Cell {
                        usecase: imp.usecase.clone(),
                        lib: imp.lib.clone(),
                        kernel: s.into(),
                        status: kernels::FAILS_TO_LOAD.into(),
                        detail: detail.clone(),
                        ..Default::default()
                    })
                    .collect()
            }
        };
        cells.extend(missing.iter().map(|(u, l)| Cell {
            usecase: u.clone(),
            lib: l.clone(),
            kernel: s.into(),
            status: kernels::NOT_BUILT.into(),
            detail: match harness::libs::get(l).build {
                harness::libs::Build::NotBuildable { reason } => reason.into(),
                _ => format!("no binary in {}", impls.display()),
            },
            ..Default::default()
        }));
        eprintln!("kernel {s}: {:.0} s ({} implementations checked, {} reused)", started.elapsed().as_secs_f64(), imps.len(), reused.len());
        reused.extend(cells);
        reused
    };
    let jobs = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, series.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Vec<Cell>>> = series.iter().map(|_| Default::default()).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(s) = series.get(i) else { break };
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = one(s);
            });
        }
    });
    let cells: Vec<Cell> = results.into_iter().flat_map(|r| r.into_inner().unwrap_or_else(|e| e.into_inner())).collect();
    for c in &cells {
        let status = if c.reused_from.is_empty() { c.status.clone() } else { format!("{} ↻", c.status) };
        println!("{:<13} {:<10} {:<6} {:<14} {}", c.usecase, c.lib, c.kernel, status, c.detail);
    }
    let path = out.join("kernels.csv");
    metrics::report::kernels::write_csv(&path, &cells)?;
    // `harness merge` compares the git revision recorded here (a full run writes its own).
    let env_path = out.join("environment.json");
    if !env_path.exists() {
        let env = metrics::record::Environment::collect(Default::default());
        std::fs::write(&env_path, serde_json::to_string_pretty(&env)?)?;
    }
    println!("{}", path.display());
    // A library that cannot be built on this machine kind is not built by design.
    let by_design = |c: &Cell| {
        c.status == kernels::NOT_BUILT && harness::libs::by_name(&c.lib).is_some_and(|l| !l.buildable())
    };
    Ok(cells.iter().all(|c| c.status == kernels::PASS || c.status == kernels::LACKS_FEATURE || by_design(c)))
}

/// `harness merge RUN... --out DIR`: the kernel matrices of runs made on several machines in one
/// (`kernels.csv` with a `host` column, `kernels.md`, `kernels.html`), the host being each run's
/// directory name. Runs whose git revisions or implementations (environment.json) differ are
/// refused: their cells are not comparable. Every run is read and checked before anything is written.
pub fn merge(runs: &[PathBuf], out: &Path) -> Result<bool> {
    use metrics::report::kernels as report;
    if runs.len() < 2 {
        return Err(bad_input!("merge needs at least two run directories"));
    }
    out_dir(out)?;
    let mut first: Option<(metrics::record::Environment, &Path)> = None;
    let mut hosts: Vec<String> = Vec::new();
    let mut cells = Vec::new();
    for run in runs {
        if !run.is_dir() {
            return Err(bad_input!("{}: no such run directory", run.display()));
        }
        let env_path = run.join("environment.json");
        let text = std::fs::read_to_string(&env_path)
            .map_err(|e| bad_input!("{}: not a run ({}: {e})", run.display(), env_path.display()))?;
        let env: metrics::record::Environment =
            serde_json::from_str(&text).map_err(|e| bad_input!("{}: corrupt JSON: {e}", env_path.display()))?;
        let rev = env.git_revision.as_deref().unwrap_or_default();
        if rev.is_empty() {
            return Err(bad_input!("{}: field git_revision: missing, the implementations' revision is unknown", env_path.display()));
        }
        match &first {
            None => first = Some((env.clone(), run.as_path())),
            Some((f, first_run)) => {
                let frev = f.git_revision.as_deref().unwrap_or_default();
                if frev != rev {
                    return Err(bad_input!(
                        "{}: field git_revision: {rev} differs from {frev} of {}: the implementations may differ, refusing to merge",
                        env_path.display(),
                        first_run.display()
                    ));
                }
                // Toolchains and crates, where both runs recorded them.
                if !f.implementations.is_empty() && !env.implementations.is_empty() && f.implementations != env.implementations {
                    return Err(bad_input!(
                        "{}: field implementations: toolchains or crates differ from those of {}, refusing to merge",
                        env_path.display(),
                        first_run.display()
                    ));
                }
            }
        }
        let host = run.canonicalize()?.file_name().and_then(|n| n.to_str()).unwrap_or("run").to_string();
        if hosts.contains(&host) {
            return Err(bad_input!("{}: a second run named {host:?} (the name is its column in the matrix)", run.display()));
        }
        hosts.push(host.clone());
        let csv = run.join(report::KERNELS_CSV);
        let got = report::load(run)
            .map_err(|e| bad_input!("corrupt CSV: {e:#}"))?
            .ok_or_else(|| bad_input!("{}: no {}: not a kernel matrix run", run.display(), report::KERNELS_CSV))?;
        for (i, c) in got.iter().enumerate() {
            if !kernels::STATUSES.contains(&c.status.as_str()) {
                return Err(bad_input!(
                    "{}: row {}, field status: unknown status {:?} (one of {})",
                    csv.display(),
                    i + 1,
                    c.status,
                    kernels::STATUSES.join(",")
                ));
            }
        }
        cells.extend(got.into_iter().map(|c| report::Cell { host: host.clone(), ..c }));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    report::write_csv(&out.join(report::KERNELS_CSV), &cells)?;
    std::fs::write(out.join("kernels.md"), report::markdown(&cells))?;
    std::fs::write(out.join("kernels.html"), metrics::report::page("bpf-eval kernel matrix", &report::html(&cells)))?;
    println!("{}", out.join("kernels.html").display());
    Ok(true)
}
