//! Bad input to `harness kernels` and `harness merge`: exit code 2, a message naming the
//! argument or file and field and why, and nothing started. "Nothing started" is observed, not
//! assumed: the commands run with a PATH whose `qemu-system-x86_64`, `apt-get`, `sha256sum` and
//! `dpkg-deb` (what a kernel fetch or a guest boot runs first) record that they were called; a
//! valid `harness kernels` under the same PATH must trip them (the control).

use std::path::{Path, PathBuf};
use std::process::Command;

use harness::process::TempDir;
use metrics::report::kernels::{write_csv, Cell};

const TRIPWIRES: &[&str] = &["qemu-system-x86_64", "apt-get", "sha256sum", "dpkg-deb"];

struct Bed {
    dir: TempDir,
}

impl Bed {
    fn new() -> Bed {
        let dir = TempDir::new("kernels-input").unwrap();
        std::fs::create_dir(dir.path().join("bin")).unwrap();
        for t in TRIPWIRES {
            let script = format!("#!/bin/sh\necho {t} >> {}\nexit 1\n", dir.path().join("started").display());
            let p = dir.write(&format!("bin/{t}"), script).unwrap();
            Command::new("chmod").arg("+x").arg(&p).status().unwrap();
        }
        Bed { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Runs `harness ARGS`: exit code, stderr.
    fn harness(&self, args: &[&str]) -> (i32, String) {
        let path = format!("{}:{}", self.path("bin").display(), std::env::var("PATH").unwrap_or_default());
        let out = Command::new(env!("CARGO_BIN_EXE_harness")).args(args).env("PATH", path).output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }

    fn started(&self) -> String {
        std::fs::read_to_string(self.path("started")).unwrap_or_default()
    }

    /// Asserts exit 2, every needle in stderr, nothing started, `out` not created.
    fn refused(&self, args: &[&str], needles: &[&str], out: &Path) {
        let (code, stderr) = self.harness(args);
        assert_eq!(code, 2, "{args:?}: exit code; stderr: {stderr}");
        for n in needles {
            assert!(stderr.contains(n), "{args:?}: stderr must name {n:?}: {stderr}");
        }
        assert_eq!(self.started(), "", "{args:?} started something");
        assert!(!out.exists(), "{args:?} created {}", out.display());
    }

    /// A run directory `name` with an environment.json of revision `rev` and a valid kernels.csv.
    fn run_dir(&self, name: &str, rev: &str) -> PathBuf {
        let dir = self.path(name);
        std::fs::create_dir(&dir).unwrap();
        let env = metrics::record::Environment { git_revision: Some(rev.into()), ..Default::default() };
        std::fs::write(dir.join("environment.json"), serde_json::to_string(&env).unwrap()).unwrap();
        let cell = Cell {
            usecase: "packetfilter".into(),
            lib: "aya".into(),
            kernel: "6.12".into(),
            status: "pass".into(),
            detail: "6 cases, 40 vectors".into(),
            ..Default::default()
        };
        write_csv(&dir.join("kernels.csv"), &[cell]).unwrap();
        dir
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn kernels_refuses_bad_arguments_before_starting_anything() {
    let bed = Bed::new();
    let out = bed.path("out");
    let o = s(&out);
    let file = bed.dir.write("a-file", "").unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--kernels", "6.1,9.9"], &["--kernels", "\"9.9\"", "5.10,6.1,6.12,7.2,host"]),
        (&["--kernels", "6.1,,7.2"], &["--kernels", "malformed", "empty entry"]),
        (&["--kernels", "6.1,6.1"], &["--kernels", "twice"]),
        (&["--kernels", "6.12", "--usecases", "packetfiltr"], &["--usecases", "\"packetfiltr\""]),
        (&["--kernels", "6.12", "--libs", "aya,ayya"], &["--libs", "\"ayya\"", "libbpf-rs"]),
    ];
    for (args, needles) in cases {
        let mut a = vec!["kernels", "--out", o];
        a.extend_from_slice(args);
        bed.refused(&a, needles, &out);
    }
    let (code, stderr) = bed.harness(&["kernels", "--kernels", "6.12", "--out", s(&file)]);
    assert_eq!(code, 2, "--out FILE: {stderr}");
    assert!(stderr.contains(s(&file)) && stderr.contains("not a directory"), "{stderr}");
    assert_eq!(bed.started(), "");
    // The control: valid arguments reach the kernel fetch (a tripwire fails it: exit 1, not 2).
    let (code, stderr) =
        bed.harness(&["kernels", "--kernels", "6.12", "--usecases", "packetfilter", "--libs", "aya", "--out", o]);
    assert_ne!(code, 2, "valid arguments refused: {stderr}");
    assert!(!bed.started().is_empty(), "valid arguments started nothing; stderr: {stderr}");
}

#[test]
fn merge_refuses_bad_runs_before_writing_anything() {
    let bed = Bed::new();
    let out = bed.path("merged");
    let a = bed.run_dir("a", "1111");
    let b = bed.run_dir("b", "1111");
    let other_rev = bed.run_dir("other-rev", "2222");
    let not_run = bed.path("not-a-run");
    std::fs::create_dir(&not_run).unwrap();
    let bad_json = bed.run_dir("bad-json", "1111");
    std::fs::write(bad_json.join("environment.json"), "{\"git_revision\": ").unwrap();
    let no_rev = bed.run_dir("no-rev", "1111");
    std::fs::write(no_rev.join("environment.json"), "{\"arch\":\"x86_64\",\"cores\":2,\"timestamp\":\"\",\"command_line\":[],\"git_revision\":null}").unwrap();
    let bad_csv = bed.run_dir("bad-csv", "1111");
    std::fs::write(bad_csv.join("kernels.csv"), "usecase,lib,kernel,status,detail\npacketfilter,aya,6.12\n").unwrap();
    let bad_status = bed.run_dir("bad-status", "1111");
    std::fs::write(bad_status.join("kernels.csv"), "usecase,lib,kernel,status,detail\npacketfilter,aya,6.12,passed,x\n")
        .unwrap();
    let no_csv = bed.run_dir("no-csv", "1111");
    std::fs::remove_file(no_csv.join("kernels.csv")).unwrap();
    let missing = bed.path("missing");
    let env = |d: &Path| d.join("environment.json").display().to_string();
    let csv = |d: &Path| d.join("kernels.csv").display().to_string();
    let cases: Vec<(&Path, Vec<String>)> = vec![
        (&missing, vec![s(&missing).into(), "no such run directory".into()]),
        (&not_run, vec![s(&not_run).into(), "not a run".into(), "environment.json".into()]),
        (&bad_json, vec![env(&bad_json), "corrupt JSON".into()]),
        (&no_rev, vec![env(&no_rev), "git_revision".into(), "missing".into()]),
        (&other_rev, vec![env(&other_rev), "git_revision".into(), "2222".into(), "1111".into()]),
        (&bad_csv, vec![csv(&bad_csv), "corrupt CSV".into(), "line".into()]),
        (&bad_status, vec![csv(&bad_status), "field status".into(), "\"passed\"".into()]),
        (&no_csv, vec![s(&no_csv).into(), "no kernels.csv".into()]),
    ];
    for (bad, needles) in &cases {
        let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
        bed.refused(&["merge", s(&a), s(bad), "--out", s(&out)], &needles, &out);
    }
    bed.refused(&["merge", s(&a), s(&a), "--out", s(&out)], &["second run named \"a\""], &out);
    // The control: two valid runs merge, one host column each.
    let (code, stderr) = bed.harness(&["merge", s(&a), s(&b), "--out", s(&out)]);
    assert_eq!(code, 0, "valid runs: {stderr}");
    let cells = metrics::report::kernels::load(&out).unwrap().expect("merged kernels.csv");
    let hosts: Vec<&str> = cells.iter().map(|c| c.host.as_str()).collect();
    assert_eq!(hosts, ["a", "b"]);
}
