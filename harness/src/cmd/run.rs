//! `harness run`: for every use case, each library's source metrics, build and conformance;
//! then the runtime repetitions (load, per-packet cost, traffic) interleaved across libraries
//! and references after a warm-up round; then the report. An implementation that
//! fails a stage is recorded with its error and the run goes on; the exit code says whether
//! anything failed. A run interrupted by SIGINT/SIGTERM stops measuring and still writes the
//! report of what it measured; that report, and one with a failed stage, is marked partial
//! (`meta.partial` in results.json, meta.csv, the HTML header and summary, report.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use harness::libs;
use harness::measure::{self, Ctx};
use harness::process::Implementation;
use harness::usecases::{self, UseCase, REFERENCES};
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
    /// Shorter repetitions (still `--reps` of them, 5 by default, so that the report ranks):
    /// for CI and a first look.
    #[arg(long)]
    quick: bool,
    /// Build every implementation again, even where an earlier run's build metrics are
    /// reusable (nothing the build reads changed), and check every kernel matrix cell again,
    /// even where an earlier run's check is reusable (same binary, kernel and checks).
    #[arg(long)]
    rebuild: bool,
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
    if let Some(unknown) = opts.libs.iter().flatten().find(|l| libs::by_name(l).is_none()) {
        let known: Vec<&str> = libs::LIBS.iter().map(|l| l.name).collect();
        return Err(harness::bad_input!("--libs: unknown library `{unknown}`; one of: {}", known.join(", ")));
    }
    // Checked now, not after the measurements.
    if let Some(k) = &opts.kernels {
        super::kernels::entries("--kernels", k, harness::kernels::ALL)?;
    }
    let out = match &opts.out {
        Some(dir) => dir.clone(),
        None => workspace.join("reports").join(metrics::record::timestamp_for_path()),
    };
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut ctx = Ctx::new(workspace, &out, opts.reps, opts.quick, quiet)?;
    ctx.rebuild = opts.rebuild;
    // Per use case three steps per library (source, build, conformance), then a warm-up and
    // the repetitions of every library and the references: the estimate.
    let nlibs = libs::LIBS.len();
    ctx.plan(selected.len() * (nlibs * 3 + (ctx.reps as usize + 1) * (nlibs + 1)));

    let mut run = Run { dir: out.clone(), ..Default::default() };
    let mut versions = BTreeMap::new();
    // Interrupted (SIGINT/SIGTERM), the measurements stop; what they measured until then is
    // still written and rendered, marked partial.
    let stopped = measure_all(&ctx, workspace, opts, &selected, &mut run, &mut versions).err();

    for lib in libs::LIBS {
        let Some(own_costs) = lib.own_costs else { continue };
        if stopped.is_none() && run.capabilities.iter().any(|c| c.lib == lib.name && c.status.is_implemented()) {
            match own_costs(&ctx) {
                Ok(findings) => run.findings.extend(findings),
                Err(e) => run.failures.push(failure("*", lib.name, Stage::Measure, &e)),
            }
        }
    }

    let mut settings = BTreeMap::new();
    settings.insert("reps".into(), opts.reps.into());
    settings.insert("quick".into(), opts.quick.into());
    settings.insert("usecases".into(), selected.iter().map(|u| u.name()).collect::<Vec<_>>().into());
    // The harness' own cost: it must stay light (samples go to histograms, not memory). The
    // report and the kernel matrix come after the data is saved: their share is added below.
    let (peak_kib, _) = peak_rss_kib();
    settings.insert("harness_peak_rss_kib".into(), peak_kib.into());
    settings.insert("harness_elapsed_s".into(), ctx.elapsed().as_secs().into());
    let mut meta = RunMeta::new(settings);

    if let (Some(kernels), None) = (&opts.kernels, &stopped) {
        let names: Vec<String> = selected.iter().map(|u| u.name().to_string()).collect();
        ctx.step("kernel matrix");
        // Its cells (wrong results on a kernel, a feature it lacks) are results the report
        // shows, not failures of the run: only a matrix that could not be made is.
        let libs = opts.libs.as_deref().unwrap_or(&[]);
        if let Err(e) = super::kernels::run(kernels, &names, libs, &ctx.bin_dir(), &out, !opts.rebuild) {
            meta.partial.push(format!("kernel matrix not made: {e:#}"));
        }
    }
    // Also a signal during the kernel matrix, which does not poll for it.
    let step = ctx.current_step();
    match (ctx.interrupted_by(), &stopped) {
        (Some(sig), _) => meta.partial.insert(0, format!("interrupted by {sig} during `{step}`; the steps after it did not run")),
        (None, Some(e)) => meta.partial.insert(0, format!("stopped by an error during `{step}`: {e:#}")),
        (None, None) => {}
    }
    meta.partial.extend(run.failures.iter().map(|f| {
        format!("{}/{}: {} failed; the values that depend on it are missing (see Failures)", f.usecase, f.lib, f.stage.as_str())
    }));
    run.meta = Some(meta);
    run.histograms = Some(ctx.take_histograms());
    run.environment = Some(Environment::collect(versions));
    run.provenance = ctx.take_provenance();
    run.save(&out)?;
    let files = metrics::report::render(&out)?;
    point_latest(workspace, &out);
    // The whole run's peaks into the run's metadata: the harness process itself, and the
    // largest process it waited for (a build, the VM guest, a loader).
    let (peak_kib, children_kib) = peak_rss_kib();
    if let Some(meta) = run.meta.as_mut() {
        meta.settings.insert("harness_peak_rss_kib".into(), peak_kib.into());
        meta.settings.insert("harness_children_peak_rss_kib".into(), children_kib.into());
        meta.settings.insert("harness_elapsed_s".into(), ctx.elapsed().as_secs().into());
        metrics::record::write_results(&out, meta, &run.rows)?;
    }

    ctx.say(&format!("report: {}", out.join("index.html").display()));
    ctx.say(&format!(
        "harness: {} s, peak memory {} MiB (largest child process {} MiB)",
        ctx.elapsed().as_secs(),
        peak_kib / 1024,
        children_kib / 1024
    ));
    for f in files {
        ctx.say(&format!("wrote {}", f.display()));
    }
    for f in &run.failures {
        eprintln!("FAILED {} {} ({}): {}", f.usecase, f.lib, f.stage.as_str(), f.error);
    }
    let partial = &run.meta.as_ref().expect("set above").partial;
    if !partial.is_empty() {
        eprintln!("PARTIAL report {}:\n  {}", out.display(), partial.join("\n  "));
    }
    if let Some(e) = stopped {
        return Err(e.context(format!("partial report written to {}", out.display())));
    }
    // A failed stage makes the run partial: success is a complete report.
    Ok(partial.is_empty())
}

/// Per use case, source, build and conformance of every library, then the interleaved
/// repetitions; an error only when the run must stop (interrupted).
fn measure_all(
    ctx: &Ctx,
    workspace: &Path,
    opts: &Options,
    selected: &[Box<dyn UseCase>],
    run: &mut Run,
    versions: &mut BTreeMap<String, metrics::record::Implementation>,
) -> Result<()> {
    for usecase in selected {
        // Build and check every library first; then the runtime repetitions, interleaved.
        let mut ready = Vec::new();
        for lib in libs::LIBS {
            if opts.libs.as_ref().is_some_and(|l| !l.iter().any(|x| x == lib.name)) {
                continue;
            }
            let capability = lib.capability(workspace, usecase.name());
            let present = capability.status.is_implemented();
            run.capabilities.push(capability);
            if !present {
                continue;
            }
            let imp = Implementation::at(workspace, usecase.name(), lib.name);
            versions.insert(lib.name.to_string(), measure::versions(workspace, &imp));
            ready.extend(prepare(ctx, usecase.as_ref(), &imp, run));
            ctx.check_interrupted()?;
        }
        interleave(ctx, usecase.as_ref(), ready, run)?;
    }
    Ok(())
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
            None => {
                return Err(harness::bad_input!(
                    "unknown use case `{t}`; one of: all, {}",
                    all.iter().map(|u| u.name()).collect::<Vec<_>>().join(", ")
                ))
            }
        }
    }
    Ok(picked)
}

/// Source, build and conformance of one implementation: the implementation with its binary
/// if it may be measured. A failing stage records a failure and skips the rest.
fn prepare(ctx: &Ctx, usecase: &dyn UseCase, imp: &Implementation, run: &mut Run) -> Option<Implementation> {
    let (u, l) = (imp.usecase.as_str(), imp.lib.as_str());
    ctx.step(&format!("{u}/{l}: source"));
    match measure::build::source(&ctx.workspace, imp) {
        Ok(rows) => run.rows.extend(rows),
        Err(e) => run.failures.push(failure(u, l, Stage::Measure, &e)),
    }

    ctx.step(&format!("{u}/{l}: build"));
    // Not an earlier run's binary: the kernel matrix checks only what this run built.
    let _ = std::fs::remove_file(ctx.bin_dir().join(imp.package()));
    let binary = match measure::build::build(ctx, imp) {
        Ok(built) => {
            run.rows.extend(built.rows);
            built.binary
        }
        Err(e) => {
            run.failures.push(failure(u, l, Stage::Build, &e));
            return None;
        }
    };
    // The measured build is the one the run's kernel matrix checks too (`make run` needs no
    // `make build`: ~10 min less from clean).
    if let Err(e) = install(&binary, &ctx.bin_dir().join(imp.package())) {
        run.failures.push(failure(u, l, Stage::Build, &e));
        return None;
    }
    let imp = imp.with_binary(binary);

    ctx.step(&format!("{u}/{l}: conformance"));
    match usecase.conformance(ctx, &imp) {
        Ok(mismatches) if mismatches.is_empty() => {}
        Ok(mismatches) => {
            let err = anyhow::anyhow!("{} conformance vectors failed:\n{}", mismatches.len(), mismatches.join("\n"));
            run.failures.push(failure(u, l, Stage::Conformance, &err));
            return None;
        }
        Err(e) => {
            run.failures.push(failure(u, l, Stage::Conformance, &e));
            return None;
        }
    }
    Some(imp)
}

/// The runtime repetitions, interleaved: a warm-up round (rows dropped) unless the use case
/// measures in the guest, then round 1 of every library, of the references and of what they
/// measure together ([`UseCase::together`]), round 2, ... so that drift of the machine over the
/// run spreads over all of them instead of favouring whoever ran first. Each round starts one
/// subject later than the one before (round r: subject r first, the references among the
/// subjects), so that no library always follows the same one — whatever one leaves behind for
/// the next (deferred frees, caches) is spread over all, not a constant of the order that every
/// run repeats. An implementation that fails a round is recorded and leaves the rounds.
fn interleave(ctx: &Ctx, usecase: &dyn UseCase, mut imps: Vec<Implementation>, run: &mut Run) -> Result<()> {
    let u = usecase.name();
    let first = if usecase.warm_up() { 0 } else { 1 };
    let mut references_failed = false;
    for rep in first..=ctx.reps {
        ctx.set_rep(rep);
        let round = if rep == 0 { "warm-up".to_string() } else { format!("repetition {rep}/{}", ctx.reps) };
        let keep = rep > 0;
        let mut failed = Vec::new();
        // Slots 0..imps.len() are the libraries, the last one the references.
        let subjects = imps.len() + 1;
        for slot in (0..subjects).map(|k| (k + rep.saturating_sub(1) as usize) % subjects) {
            let Some(imp) = imps.get(slot) else {
                if !references_failed {
                    ctx.step(&format!("{u}/{REFERENCES}: {round}"));
                    match usecase.references(ctx) {
                        Ok(rows) if keep => run.rows.extend(rows),
                        Ok(_) => {}
                        Err(e) => {
                            run.failures.push(failure(u, REFERENCES, Stage::Measure, &e.context(round.clone())));
                            references_failed = true;
                        }
                    }
                    ctx.check_interrupted()?;
                }
                continue;
            };
            ctx.step(&format!("{u}/{}: {round}", imp.lib));
            match usecase.measure(ctx, imp) {
                Ok(rows) if keep => run.rows.extend(rows),
                Ok(_) => {}
                Err(e) => {
                    run.failures.push(failure(u, &imp.lib, Stage::Load, &e.context(round.clone())));
                    failed.push(slot);
                }
            }
            ctx.check_interrupted()?;
        }
        failed.sort_unstable();
        for i in failed.into_iter().rev() {
            imps.remove(i);
        }
        if keep {
            // In turns too: the guest measures the libraries one after another.
            let mut turn = imps.clone();
            if !turn.is_empty() {
                let by = rep.saturating_sub(1) as usize % turn.len();
                turn.rotate_left(by);
            }
            let results = match usecase.together(ctx, &turn, !references_failed) {
                Ok(results) => results,
                // Nobody measured: each subject has failed this round.
                Err(e) => {
                    let subjects = imps.iter().map(|i| i.lib.clone()).chain((!references_failed).then(|| REFERENCES.to_string()));
                    subjects.map(|s| (s, Err(anyhow::anyhow!("{e:#}")))).collect()
                }
            };
            for (subject, result) in results {
                match result {
                    Ok(rows) => run.rows.extend(rows),
                    Err(e) => {
                        let stage = if subject == REFERENCES { Stage::Measure } else { Stage::Load };
                        run.failures.push(failure(u, &subject, stage, &e.context(round.clone())));
                        references_failed |= subject == REFERENCES;
                        imps.retain(|i| i.lib != subject);
                    }
                }
            }
            ctx.check_interrupted()?;
        }
    }
    Ok(())
}

/// Copies `binary` to `to` through a temporary file renamed over it: a running copy of the old
/// one (`text file busy`) is not disturbed.
fn install(binary: &Path, to: &Path) -> Result<()> {
    let dir = to.parent().context("an implementation binary has a directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = to.with_extension("installing");
    std::fs::copy(binary, &tmp).with_context(|| format!("copying {} to {}", binary.display(), tmp.display()))?;
    std::fs::rename(&tmp, to).with_context(|| format!("installing {}", to.display()))
}

/// Peak resident set (KiB) of the harness process and of the largest child it waited for
/// (`getrusage`'s `ru_maxrss` of `RUSAGE_SELF` and `RUSAGE_CHILDREN`).
fn peak_rss_kib() -> (u64, u64) {
    let max_rss = |who| {
        // SAFETY: getrusage only writes the zeroed struct it is given.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } != 0 {
            return 0;
        }
        usage.ru_maxrss.max(0) as u64
    };
    (max_rss(libc::RUSAGE_SELF), max_rss(libc::RUSAGE_CHILDREN))
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
