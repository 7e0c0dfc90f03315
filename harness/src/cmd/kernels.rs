//! `harness kernels`: the compatibility matrix of every implementation on each kernel.

use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use harness::kernels::{self, Cell};

const USECASES: &[&str] = &["packetfilter", "loadbalancer", "jittergen", "comtrace", "lsmbpf"];

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
        harness::usecases::LIBS.to_vec()
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
            });
        }
        eprintln!("kernel {s}: {:.0} s", started.elapsed().as_secs_f64());
    }
    for c in &cells {
        println!("{:<13} {:<10} {:<6} {:<14} {}", c.usecase, c.lib, c.kernel, c.status, c.detail);
    }
    let path = out.join("kernels.csv");
    kernels::write_csv(&path, &cells)?;
    println!("{}", path.display());
    Ok(cells.iter().all(|c| c.status == kernels::PASS || c.status == kernels::LACKS_FEATURE))
}
