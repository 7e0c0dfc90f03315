//! Per-packet cost of every packetfilter implementation (and the empty-program floor) through
//! BPF_PROG_TEST_RUN, as Criterion benchmarks: `cargo bench -p harness` (root, after `make build`).
//! The frames, configuration and test bed are the harness's own, so these numbers and the
//! harness's `test_run_ns` measure the same thing.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use harness::bpf::{self, Prog, TestRun};
use harness::process::{available_libs, Implementation};
use harness::usecases::packetfilter::{classes, Bed};

/// Criterion asks for the time of `iters` runs. The kernel runs the program `repeat` times in
/// one call and reports the mean; few repeats would let the call's fixed cost into that mean,
/// so at least 10,000 run and the mean is scaled to `iters`.
fn kernel_time(prog: &Prog, frame: &[u8], iters: u64) -> Duration {
    let repeat = iters.clamp(10_000, u32::MAX as u64) as u32;
    let r = prog.test_run(&TestRun { data_in: frame, repeat, ..Default::default() }).expect("BPF_PROG_TEST_RUN");
    r.duration.mul_f64(iters as f64)
}

fn packetfilter(c: &mut Criterion) {
    bpf::check_privileges().expect("benchmarks load BPF programs: run as root");
    let bed = Bed::new().expect("test bed");
    let dir = harness::process::TempDir::new("bench").expect("temp dir");
    let mut group = c.benchmark_group("packetfilter");

    let floor = bpf::load_constant_xdp("empty_pass", bpf::XDP_PASS).expect("empty program");
    for (class, src) in classes() {
        let frame = bed.frame(src).expect("frame");
        group.bench_function(format!("empty/{class}"), |b| b.iter_custom(|n| kernel_time(&floor, &frame, n)));
    }
    for lib in available_libs("packetfilter") {
        let imp = Implementation::require("packetfilter", &lib);
        let mut filter = bed.start(&imp, dir.path()).expect("start the implementation");
        let prog = Prog::from_id(filter.prog_id).expect("its program");
        for (class, src) in classes() {
            let frame = bed.frame(src).expect("frame");
            group.bench_function(format!("{lib}/{class}"), |b| b.iter_custom(|n| kernel_time(&prog, &frame, n)));
        }
        drop(prog);
        filter.stop(Duration::from_secs(10)).expect("clean exit");
    }
    group.finish();
}

criterion_group!(benches, packetfilter);
criterion_main!(benches);
