//! lsmbpf's bad input, on the host: exit code 2, a message naming file, field and reason, and
//! nothing loaded (validation happens before the first BPF call, so the host kernel's lack of a
//! BPF LSM does not matter here).

use std::time::Duration;

use harness::process::{Implementation, TempDir};

fn run(lib: &str, args: &[&str]) -> (i32, String) {
    let imp = Implementation::require("lsmbpf", lib);
    let mut running = imp.spawn(args, None).unwrap();
    let code = running.exit_code(Duration::from_secs(20)).unwrap();
    assert!(running.history().iter().all(|l| l.event() != "ready"), "{lib} {args:?} got ready");
    (code, running.stderr())
}

fn bad_config_files(lib: &str) {
    let dir = TempDir::new("lsmbpf-input").unwrap();
    let bad_mode = dir.write("mode.yml", "mode: deny\n").unwrap();
    let unknown = dir.write("unknown.yml", "mode: audit\ncriterion: pid\n").unwrap();
    let bad_ns = dir.write("ns.yml", "containerized: uts\n").unwrap();
    let missing = dir.path().join("missing.yml");
    for (file, needle) in [
        (&bad_mode, "field `mode`"),
        (&unknown, "criterion"),
        (&bad_ns, "field `containerized`"),
        (&missing, "cannot read"),
    ] {
        let (code, stderr) = run(lib, &["--config", file.to_str().unwrap()]);
        assert_eq!(code, 2, "{lib} {}: {stderr}", file.display());
        assert!(stderr.contains(file.to_str().unwrap()) && stderr.contains(needle), "{lib}: {stderr}");
    }
}

fn bad_flags(lib: &str) {
    for args in
        [&["--mode", "deny"][..], &["--containerized", "net"], &["--stats-interval-ms", "-1"], &["--iface", "lo"]]
    {
        let (code, stderr) = run(lib, args);
        assert_eq!(code, 2, "{lib} {args:?}: {stderr}");
    }
}

#[test]
fn bad_config_files_exit_2_naming_file_and_field_aya() {
    bad_config_files("aya");
}

#[test]
fn bad_config_files_exit_2_naming_file_and_field_libbpf_rs() {
    bad_config_files("libbpf-rs");
}

#[test]
fn bad_config_files_exit_2_naming_file_and_field_libbpf() {
    bad_config_files("libbpf");
}

#[test]
fn bad_config_files_exit_2_naming_file_and_field_redbpf() {
    bad_config_files("redbpf");
}

#[test]
fn bad_flags_exit_2_aya() {
    bad_flags("aya");
}

#[test]
fn bad_flags_exit_2_libbpf_rs() {
    bad_flags("libbpf-rs");
}

#[test]
fn bad_flags_exit_2_libbpf() {
    bad_flags("libbpf");
}

#[test]
fn bad_flags_exit_2_redbpf() {
    bad_flags("redbpf");
}

#[test]
fn bad_config_files_exit_2_naming_file_and_field_cilium_ebpf() {
    bad_config_files("cilium-ebpf");
}

#[test]
fn bad_flags_exit_2_cilium_ebpf() {
    bad_flags("cilium-ebpf");
}
