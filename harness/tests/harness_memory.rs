//! The harness' own memory under its heaviest repetition: comtrace's full (not `--quick`)
//! repetition for one library, whose tracer prints a record per socket at tens of thousands a
//! second. Its lines are kept as text until taken (as parsed JSON each took ~1 KB, and a
//! 3-second closed loop left ~100k of them waiting): the process' peak must stay far below the
//! 500 MB budget of a whole `run all`.

use harness::process::{Implementation, TempDir};

fn peak_rss_kib() -> u64 {
    // SAFETY: getrusage only writes the zeroed struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) }, 0);
    usage.ru_maxrss as u64
}

#[test]
fn comtrace_full_repetition_stays_small() {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let workspace = harness::process::workspace_dir();
    let out = TempDir::new("memory").unwrap();
    let ctx = harness::measure::Ctx::new(&workspace, out.path(), 1, false, true).unwrap();
    ctx.set_rep(1);
    let before = peak_rss_kib();
    let usecase = harness::usecases::by_name("comtrace").unwrap();
    let rows = usecase.measure(&ctx, &Implementation::require("comtrace", "libbpf-rs")).unwrap();
    let peak = peak_rss_kib();
    let conns: f64 = rows.iter().filter(|r| r.metric == "conn_per_s" && r.lib == "libbpf-rs").map(|r| r.value).sum();
    eprintln!("peak RSS {before} KiB before, {peak} KiB after; {conns:.0} connections/s traced in the closed loop");
    assert!(peak < 150 * 1024, "the harness peaked at {peak} KiB in one comtrace repetition");
}
