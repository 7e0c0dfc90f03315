//! `load_attach_ms` must rank alike in two runs (every pair one calls significantly different,
//! ordered the same way by the other): packetfilter's libraries, 5 repetitions
//! each, interleaved, measured twice as `harness run` measures them (`measure::load::load_rows`:
//! the median of 5 starts per repetition at real-time priority), ranked as the report ranks a
//! metric on its own (`stats::rank`: Welch, Holm across its comparisons; the report corrects
//! across all of its comparisons, which only calls fewer). On a shared 2-core machine one start per repetition had flipped the
//! ranking between two `make reproduce` runs. About 3 minutes: `cargo test --release -p harness
//! --test load_time_ranking -- --ignored` (make reproduce checks the whole report the same way).

use std::collections::BTreeMap;

use harness::measure::load;
use harness::process::{Implementation, TempDir};
use harness::usecases::packetfilter::{self, Bed};
use metrics::stats::{median, rank, Ranking};

fn one_run(libs: &[Implementation], bed: &Bed, args: &[&str]) -> (Ranking, BTreeMap<String, Vec<f64>>) {
    let mut samples: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for rep in 1..=5 {
        for imp in libs {
            let rows = load::load_rows(imp, rep, || load::start(imp, args, &bed.filter)).unwrap();
            let ms = rows.iter().find(|r| r.metric == "load_attach_ms").unwrap().value;
            samples.entry(imp.lib.clone()).or_default().push(ms);
        }
    }
    let costs: Vec<Option<&[f64]>> = libs.iter().map(|i| Some(samples[&i.lib].as_slice())).collect();
    (rank(&costs, false, None), samples)
}

#[test]
#[ignore = "about 3 minutes; run on its own"]
fn packetfilter_load_time_ranks_alike_twice() {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let libs: Vec<Implementation> = harness::process::available_libs("packetfilter")
        .iter()
        .map(|l| Implementation::require("packetfilter", l))
        .collect();
    assert!(libs.len() >= 3, "{libs:?}");
    let dir = TempDir::new("load-rank").unwrap();
    let config = packetfilter::write_config(dir.path()).unwrap();
    let args = ["--config", config.to_str().unwrap(), "--iface", packetfilter::FILTER_IF];
    let bed = Bed::new().unwrap();
    let (first, a) = one_run(&libs, &bed, &args);
    let (second, b) = one_run(&libs, &bed, &args);
    let names: Vec<&str> = libs.iter().map(|i| i.lib.as_str()).collect();
    eprintln!("libraries {names:?}\nfirst {first:?}: {a:?}\nsecond {second:?}: {b:?}");
    // The rule of compare --rankings: every pair either run calls significantly different is
    // ordered alike (by median) by the other; significance need not be reached twice.
    for (this, other) in [(&first, &b), (&second, &a)] {
        let Ranking::Ranked { leaders } = this else { continue };
        for &x in leaders {
            for y in (0..libs.len()).filter(|y| !leaders.contains(y)) {
                let (mx, my) = (median(&other[names[x]]), median(&other[names[y]]));
                assert!(mx <= my, "{} ranked significantly before {}, but the other run has {mx} ms vs {my} ms", names[x], names[y]);
            }
        }
    }
}
