//! `harness kernels`: the compatibility matrix of every implementation on each kernel.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness::kernels::{self, Cell};
use harness::usecases::NAMES as USECASES;

/// Runs the matrix and writes `<out>/kernels.csv`; true when every cell passed or the kernel
/// lacks the feature (the matrix is the answer, not a failure).
pub fn run(series: &[String], usecases: &[String], libs: &[String], out: &Path) -> Result<bool> {
    for s in series {
        if !kernels::ALL.contains(&s.as_str()) {
            bail!("--kernels: unknown kernel {s:?} (known: {})", kernels::ALL.join(","));
        }
    }
    for u in usecases {
        if !USECASES.contains(&u.as_str()) {
            bail!("--usecases: unknown use case {u:?} (known: {})", USECASES.join(","));
        }
    }
    let usecases: Vec<&str> =
        if usecases.is_empty() { USECASES.to_vec() } else { usecases.iter().map(String::as_str).collect() };
    let libs: Vec<&str> = if libs.is_empty() {
        harness::libs::LIBS.iter().map(|l| l.name).collect()
    } else {
        libs.iter().map(String::as_str).collect()
    };
    let (imps, missing) = kernels::implementations(&harness::process::impls_dir(), &usecases, &libs);
    let guest_bin = std::env::current_exe()?.parent().context("harness without a directory")?.join("kernels-guest");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut cells = Vec::new();
    for s in series {
        let started = Instant::now();
        let got = if s == "host" {
            let mut v = Vec::new();
            kernels::check_all(&imps, |c| v.push(Cell { kernel: "host".into(), ..c }));
            Ok(v)
        } else {
            kernels::run_kernel(s, &imps, &guest_bin)
        };
        match got {
            Ok(v) => cells.extend(v),
            // A guest that did not boot or crashed fails every cell of that kernel, loudly.
            Err(e) => {
                eprintln!("kernel {s}: {e:#}");
                for imp in &imps {
                    let detail = format!("guest run failed: {}", format!("{e:#}").lines().next().unwrap_or(""));
                    cells.push(Cell {
                        usecase: imp.usecase.clone(),
                        lib: imp.lib.clone(),
                        kernel: s.clone(),
                        status: kernels::FAILS_TO_LOAD.into(),
                        detail,
                        host: String::new(),
                    });
                }
            }
        }
        for (u, l) in &missing {
            cells.push(Cell {
                usecase: u.clone(),
                lib: l.clone(),
                kernel: s.clone(),
                status: kernels::NOT_BUILT.into(),
                detail: "no binary in target/impls".into(),
                host: String::new(),
            });
        }
        eprintln!("kernel {s}: {:.0} s", started.elapsed().as_secs_f64());
    }
    for c in &cells {
        println!("{:<13} {:<10} {:<6} {:<14} {}", c.usecase, c.lib, c.kernel, c.status, c.detail);
    }
    let path = out.join("kernels.csv");
    kernels::write_csv(&path, &cells)?;
    // `harness merge` compares the git revision recorded here (a full run writes its own).
    let env_path = out.join("environment.json");
    if !env_path.exists() {
        let env = metrics::record::Environment::collect(Default::default());
        std::fs::write(&env_path, serde_json::to_string_pretty(&env)?)?;
    }
    println!("{}", path.display());
    Ok(cells.iter().all(|c| c.status == kernels::PASS || c.status == kernels::LACKS_FEATURE))
}

/// `harness merge RUN... --out DIR`: the kernel matrices of runs made on several machines in one
/// (`kernels.csv` with a `host` column, `kernels.md`, `kernels.html`), the host being each run's
/// directory name. Runs whose git revisions (environment.json) differ are refused: their
/// implementations may differ, so their cells are not comparable.
pub fn merge(runs: &[std::path::PathBuf], out: &Path) -> Result<bool> {
    use metrics::report::kernels as report;
    if runs.len() < 2 {
        bail!("merge needs at least two run directories");
    }
    let mut revision: Option<(String, &Path)> = None;
    let mut cells = Vec::new();
    for run in runs {
        let env_path = run.join("environment.json");
        let env: metrics::record::Environment = serde_json::from_str(
            &std::fs::read_to_string(&env_path).with_context(|| format!("reading {}", env_path.display()))?,
        )
        .with_context(|| format!("parsing {}", env_path.display()))?;
        let rev = env.git_revision.with_context(|| format!("{}: no git_revision", env_path.display()))?;
        match &revision {
            None => revision = Some((rev, run)),
            Some((r, first)) if *r != rev => bail!(
                "{}: git revision {rev} differs from {} of {}: the implementations may differ, refusing to merge",
                run.display(),
                r,
                first.display()
            ),
            Some(_) => {}
        }
        let host = run.canonicalize()?.file_name().and_then(|n| n.to_str()).unwrap_or("run").to_string();
        let got = report::load(run)?.with_context(|| format!("{}: no {}", run.display(), report::KERNELS_CSV))?;
        cells.extend(got.into_iter().map(|c| report::Cell { host: host.clone(), ..c }));
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let q = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let mut csv = String::from("usecase,lib,kernel,status,detail,host\n");
    for c in &cells {
        csv.push_str(&format!("{},{},{},{},{},{}\n", c.usecase, c.lib, c.kernel, c.status, q(&c.detail), q(&c.host)));
    }
    std::fs::write(out.join(report::KERNELS_CSV), csv)?;
    std::fs::write(out.join("kernels.md"), report::markdown(&cells))?;
    std::fs::write(out.join("kernels.html"), metrics::report::page("bpf-eval kernel matrix", &report::html(&cells)))?;
    println!("{}", out.join("kernels.html").display());
    Ok(true)
}
