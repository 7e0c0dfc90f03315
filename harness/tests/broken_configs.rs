//! Broken configs end to end: every implementation (every library built in target/impls) of
//! every use case gets every file of `tests/broken-configs/<usecase>/` and must exit 2 with a
//! message naming the file, the field and the reason, having loaded nothing and left nothing.
//!
//! A corpus file starts with `# expect-field: F` (`-` when no field applies: a YAML syntax error
//! names its line instead) and `# expect-reason: R` (a substring of the message). YAML files are
//! passed as `--config`; comtrace has no config file, so its `.args` files hold a command line,
//! one argument a line. `@IFACE@` becomes an interface of a veth pair the test made, so that an
//! implementation that wrongly went on would attach there, where a leftover survives; `@TMP@` a
//! fresh directory.
//!
//! Nothing loaded: the ids of two programs the test loads before and after an implementation's
//! runs are adjacent (the kernel numbers programs in order, and under the run lock no other test
//! loads any). Nothing left: the pair's XDP, qdiscs and filters and the `bpfeval*` pins are as
//! before. Needs root and `make build`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use harness::bpf;
use harness::cleanup;
use harness::netns::HostVeth;
use harness::process::{all_built_libs, workspace_dir, Implementation, TempDir};

/// A loader rejecting its input has no reason to take long; one that does not reject it would
/// run until stopped.
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);
const MIN_CASES: usize = 20;

struct Broken {
    name: String,
    field: String,
    reason: String,
    /// `.args` file: the command line; else a config file's text.
    args: Option<Vec<String>>,
    text: String,
}

fn corpus(usecase: &str) -> Vec<Broken> {
    let dir = workspace_dir().join("harness/tests/broken-configs").join(usecase);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    let cases: Vec<Broken> = paths.iter().map(|p| parse_case(p)).collect();
    assert!(cases.len() >= MIN_CASES, "{}: {} broken configs, want at least {MIN_CASES}", dir.display(), cases.len());
    cases
}

fn parse_case(path: &Path) -> Broken {
    let text = std::fs::read_to_string(path).unwrap();
    let header = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .unwrap_or_else(|| panic!("{}: no `# {key}:` line", path.display()))
            .trim()
            .to_string()
    };
    let args = (path.extension().and_then(|e| e.to_str()) == Some("args"))
        .then(|| text.lines().filter(|l| !l.starts_with('#')).map(String::from).collect());
    Broken {
        name: path.file_name().unwrap().to_string_lossy().into_owned(),
        field: header("expect-field"),
        reason: header("expect-reason"),
        args,
        text: text.clone(),
    }
}

/// The id a program loaded now gets (the program is unloaded again at once).
fn next_prog_id() -> u32 {
    bpf::load_constant_xdp("empty_pass", bpf::XDP_PASS).unwrap().info().unwrap().id
}

/// Runs `imp` on one broken input; what is wrong with the outcome, if anything.
fn check_one(imp: &Implementation, case: &Broken, veth: &HostVeth, tmp: &TempDir) -> Option<String> {
    let tmp_dir = tmp.path().display().to_string();
    let fill = |s: &str| s.replace("@IFACE@", &veth.a).replace("@TMP@", &tmp_dir);
    // The file the message must name: the config, or a path on the command line.
    let (args, file) = match &case.args {
        Some(args) => {
            let args: Vec<String> = args.iter().map(|a| fill(a)).collect();
            let file = args.iter().find(|a| a.starts_with(&tmp_dir)).cloned();
            (args, file)
        }
        None => {
            let path = tmp.write(&format!("{}-{}", imp.lib, case.name), fill(&case.text)).unwrap();
            let path = path.display().to_string();
            (vec!["--config".to_string(), path.clone()], Some(path))
        }
    };
    let what = format!("{}-{} on {}", imp.usecase, imp.lib, case.name);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut running = match imp.spawn(&args, None) {
        Ok(r) => r,
        Err(e) => return Some(format!("{what}: {e:#}")),
    };
    let code = running.exit_code(EXIT_TIMEOUT);
    let stderr = running.stderr();
    let mut wrong = Vec::new();
    match code {
        Ok(2) => {}
        Ok(c) => wrong.push(format!("exit code {c}, not 2")),
        Err(e) => wrong.push(format!("no exit: {e:#}")),
    }
    if let Some(file) = file.filter(|f| !stderr.contains(f.as_str())) {
        wrong.push(format!("the file {file} is not named"));
    }
    if case.field != "-" && !stderr.contains(&case.field) {
        wrong.push(format!("the field `{}` is not named", case.field));
    }
    if !stderr.contains(&case.reason) {
        wrong.push(format!("the reason (`{}`) is not given", case.reason));
    }
    (!wrong.is_empty()).then(|| format!("{what}: {}; stderr: {}", wrong.join(", "), stderr.trim()))
}

fn check_usecase(usecase: &str, tag: &str) {
    bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let cases = corpus(usecase);
    let libs = all_built_libs(usecase).unwrap_or_else(|e| panic!("{e:#}"));
    let veth = HostVeth::new(tag).unwrap();
    let tmp = TempDir::new(&format!("broken-{tag}")).unwrap();
    // One implementation at a time: another test's probe programs would fall between ours.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let mut failures = Vec::new();
    let started = Instant::now();
    for lib in &libs {
        let imp = Implementation::require(usecase, lib);
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let before = cleanup::leftovers(&[&veth.a, &veth.b]);
        let first = next_prog_id();
        failures.extend(cases.iter().filter_map(|c| check_one(&imp, c, &veth, &tmp)));
        let last = next_prog_id();
        if last != first + 1 {
            failures.push(format!(
                "{usecase}-{lib}: {} BPF program(s) were loaded while it ran on broken configs (ids {}..{last})",
                last - first - 1,
                first + 1
            ));
        }
        let after = cleanup::leftovers(&[&veth.a, &veth.b]);
        if after != before {
            failures.push(format!("{usecase}-{lib}: left behind:\nbefore {before:#?}\nafter {after:#?}"));
        }
    }
    eprintln!(
        "{usecase}: {} broken inputs x {} libraries ({}) in {:.1} s",
        cases.len(),
        libs.len(),
        libs.join(", "),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn packetfilter_broken_configs() {
    check_usecase("packetfilter", "p");
}

#[test]
fn loadbalancer_broken_configs() {
    check_usecase("loadbalancer", "l");
}

#[test]
fn jittergen_broken_configs() {
    check_usecase("jittergen", "j");
}

#[test]
fn lsmbpf_broken_configs() {
    check_usecase("lsmbpf", "s");
}

#[test]
fn comtrace_broken_command_lines() {
    check_usecase("comtrace", "c");
}
