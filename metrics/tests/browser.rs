//! The rendered report in headless Chromium (Debian's `chromium`, scripts/apt-packages).
//! `BPF_EVAL_REPORT_DIR=DIR` checks that report instead of the fixture (`make test` does so for
//! target/ci-report).

use std::fs;
use std::path::PathBuf;

use metrics::record::{Capability, Row, Run, Status};

/// Two libraries, five repetitions, a capability short of native: enough for a summary.
fn fixture(dir: &std::path::Path) {
    let mut rows = Vec::new();
    for (lib, k) in [("aya", 1.0), ("libbpf-rs", 1.4)] {
        rows.push(Row::new("packetfilter", lib, "obj_bytes", "bytes", 1, 4096.0 * k));
        for rep in 1..=5 {
            let v = (60.0 + f64::from(rep)) * k;
            rows.push(Row::new("packetfilter", lib, "test_run_ns", "ns", rep, v).with_class("ipv4"));
        }
    }
    Run {
        rows,
        capabilities: vec![Capability {
            usecase: "packetfilter".into(),
            lib: "libbpf-rs".into(),
            status: Status::Hybrid,
            note: "Kernel side in C. A long explanation follows.".into(),
        }],
        ..Default::default()
    }
    .save(dir)
    .unwrap();
    metrics::render(dir).unwrap();
}

#[test]
fn report_opens_cleanly_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("BPF_EVAL_REPORT_DIR").map_or_else(
        || {
            fixture(tmp.path());
            let b = tmp.path().join("b");
            fs::create_dir_all(&b).unwrap();
            fixture(&b);
            metrics::report::compare_into(tmp.path(), &b, tmp.path()).unwrap();
            tmp.path().to_path_buf()
        },
        PathBuf::from,
    );
    let problems = metrics::browser::check_report(&dir).unwrap();
    assert!(problems.is_empty(), "{}:\n{}", dir.display(), problems.join("\n"));
}

/// The check must be able to fail: a broken report is caught on every count.
#[test]
fn broken_report_fails() {
    let tmp = tempfile::tempdir().unwrap();
    fixture(tmp.path());
    let index = tmp.path().join("index.html");
    let html = fs::read_to_string(&index).unwrap()
        .replace("<section id=\"summary\">", "<section id=\"gone\"><img src=\"plots/missing.png\"><a href=\"nowhere.html\">x</a><script>console.error('boom')</script>");
    fs::write(&index, html).unwrap();
    let problems = metrics::browser::check_report(tmp.path()).unwrap().join("\n");
    for expected in ["console", "missing.png", "nowhere.html", "no <section id=\"summary\">"] {
        assert!(problems.contains(expected), "{expected} not caught in:\n{problems}");
    }
}
