//! `harness run`: for every use case and library — source metrics, build, conformance, load,
//! per-packet cost and traffic — then references, then the report. An implementation that
//! fails a stage is recorded with its error and the run goes on; the exit code says whether
//! anything failed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use harness::measure::{self, Ctx};
use harness::process::Implementation;
use harness::usecases::{self, UseCase};
use metrics::record::{Environment, Failure, Run, RunMeta, Stage};

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// `all`, or use case names (packetfilter, loadbalancer, jittergen, comtrace, lsmbpf).
    #[arg(required = true, value_name = "all|USECASE")]
    targets: Vec<String>,
    /// Libraries to measure, comma-separated (default: every library that has the use case).
    #[arg(long, value_delimiter = ',')]
    libs: Option<Vec<String>>,
    /// Repetitions of every runtime metric.
    #[arg(long, default_value_t = 5)]
    reps: u32,
    /// Fewer packets and repetitions (at most 3): for CI and a first look.
    #[arg(long)]
    quick: bool,
    /// Output directory (default `reports/<timestamp>/`; `reports/latest` points at the newest).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Also the kernel matrix on these kernels (5.10,6.1,6.12,7.2,host), into kernels.csv and the report.
    #[arg(long, value_delimiter = ',')]
    kernels: Option<Vec<String>>,
}

pub fn run(workspace: &Path, opts: &Options, quiet: bool) -> Result<bool> {
    harness::bpf::check_privileges()?;
    let selected = select(opts)?;
    let out = match &opts.out {
        Some(dir) => dir.clone(),
        None => workspace.join("reports").join(metrics::record::timestamp_for_path()),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let ctx = Ctx::new(workspace, &out, opts.reps, opts.quick, quiet)?;
    // Four steps per library (source, build, conformance, load) per use case: the estimate.
    ctx.plan(selected.len() * usecases::LIBS.len() * 4);

    let mut run = Run { dir: out.clone(), ..Default::default() };
    let mut versions = BTreeMap::new();
    for usecase in &selected {
        for lib in usecases::LIBS {
            if opts.libs.as_ref().is_some_and(|l| !l.iter().any(|x| x == lib)) {
                continue;
            }
            let capability = usecase.capability(workspace, lib);
            let present = capability.status.is_implemented();
            run.capabilities.push(capability);
            if !present {
                continue;
            }
            let imp = Implementation::at(workspace, usecase.name(), lib);
            versions.insert(lib.to_string(), measure::versions(workspace, &imp));
            measure_one(&ctx, usecase.as_ref(), &imp, &mut run);
            ctx.check_interrupted()?;
        }
        match usecase.references(&ctx) {
            Ok(rows) => run.rows.extend(rows),
            Err(e) => run.failures.push(failure(usecase.name(), "references", Stage::Measure, &e)),
        }
        ctx.check_interrupted()?;
    }

    let mut settings = BTreeMap::new();
    settings.insert("reps".into(), opts.reps.into());
    settings.insert("quick".into(), opts.quick.into());
    settings.insert("usecases".into(), selected.iter().map(|u| u.name()).collect::<Vec<_>>().into());
    run.meta = Some(RunMeta::new(settings));
    run.environment = Some(Environment::collect(versions));
    run.save(&out)?;
    let mut kernels_ok = true;
    if let Some(kernels) = &opts.kernels {
        let names: Vec<String> = selected.iter().map(|u| u.name().to_string()).collect();
        kernels_ok = super::kernels::run(kernels, &names, opts.libs.as_deref().unwrap_or(&[]), &out)?;
    }
    let files = metrics::report::render(&out)?;
    point_latest(workspace, &out);

    ctx.say(&format!("report: {}", out.join("index.html").display()));
    for f in files {
        ctx.say(&format!("wrote {}", f.display()));
    }
    for f in &run.failures {
        eprintln!("FAILED {} {} ({}): {}", f.usecase, f.lib, f.stage.as_str(), f.error);
    }
    Ok(run.failures.is_empty() && kernels_ok)
}

fn select(opts: &Options) -> Result<Vec<Box<dyn UseCase>>> {
    let all = usecases::all();
    if opts.targets.iter().any(|t| t == "all") {
        return Ok(all);
    }
    let mut picked = Vec::new();
    for t in &opts.targets {
        match all.iter().position(|u| u.name() == t) {
            Some(_) => picked.push(usecases::by_name(t).expect("listed above")),
            None => bail!(
                "unknown use case `{t}`; one of: all, {}",
                all.iter().map(|u| u.name()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
    Ok(picked)
}

/// Every stage of one implementation; a failing stage records a failure and skips the rest.
fn measure_one(ctx: &Ctx, usecase: &dyn UseCase, imp: &Implementation, run: &mut Run) {
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    ctx.step(&format!("{u}/{l}: source"));
    match measure::build::source(&ctx.workspace, imp) {
        Ok(rows) => run.rows.extend(rows),
        Err(e) => run.failures.push(failure(u, l, Stage::Measure, &e)),
    }

    ctx.step(&format!("{u}/{l}: build"));
    let binary = match measure::build::build(ctx, imp) {
        Ok(built) => {
            run.rows.extend(built.rows);
            built.binary
        }
        Err(e) => return run.failures.push(failure(u, l, Stage::Build, &e)),
    };
    let imp = imp.with_binary(binary);

    ctx.step(&format!("{u}/{l}: conformance"));
    match usecase.conformance(ctx, &imp) {
        Ok(mismatches) if mismatches.is_empty() => {}
        Ok(mismatches) => {
            let err = anyhow::anyhow!("{} conformance vectors failed:\n{}", mismatches.len(), mismatches.join("\n"));
            return run.failures.push(failure(u, l, Stage::Conformance, &err));
        }
        Err(e) => return run.failures.push(failure(u, l, Stage::Conformance, &e)),
    }

    ctx.step(&format!("{u}/{l}: load and traffic"));
    match usecase.measure(ctx, &imp) {
        Ok(rows) => run.rows.extend(rows),
        Err(e) => run.failures.push(failure(u, l, Stage::Load, &e)),
    }
}

fn failure(usecase: &str, lib: &str, stage: Stage, err: &anyhow::Error) -> Failure {
    Failure { usecase: usecase.into(), lib: lib.into(), stage, error: format!("{err:#}") }
}

/// `reports/latest` -> the newest run (only for runs under `reports/`).
fn point_latest(workspace: &Path, out: &Path) {
    let reports = workspace.join("reports");
    let (Ok(out), Ok(reports)) = (out.canonicalize(), reports.canonicalize()) else { return };
    if out.parent() == Some(reports.as_path()) {
        let link = reports.join("latest");
        let _ = std::fs::remove_file(&link);
        let _ = std::os::unix::fs::symlink(out.file_name().expect("a run dir has a name"), &link);
    }
}
