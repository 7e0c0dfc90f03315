//! lsmbpf in the VM guest (the host kernel has no BPF LSM): one guest boot per library runs the
//! scenario of `harness::usecases::lsmbpf::bed` and every test here judges one part of its report.
//! Each test checks first that `bpf` is an active LSM and that the hook ran, since an LSM program
//! attached while the BPF LSM is inactive silently does nothing.

use std::sync::OnceLock;

use harness::usecases::lsmbpf::bed::{self as lsmbpf, Phase, Report, PROBE_COMM};
use harness::process::Implementation;

/// The report of `lib`'s scenario, computed by the first test that asks (a failed boot fails
/// every test of that library with the same message).
fn report(lib: &str) -> &'static Report {
    static AYA: OnceLock<Result<Report, String>> = OnceLock::new();
    static LIBBPF_RS: OnceLock<Result<Report, String>> = OnceLock::new();
    static LIBBPF: OnceLock<Result<Report, String>> = OnceLock::new();
    static REDBPF: OnceLock<Result<Report, String>> = OnceLock::new();
    static CILIUM_EBPF: OnceLock<Result<Report, String>> = OnceLock::new();
    let cell = match lib {
        "aya" => &AYA,
        "libbpf-rs" => &LIBBPF_RS,
        "libbpf" => &LIBBPF,
        "redbpf" => &REDBPF,
        "cilium-ebpf" => &CILIUM_EBPF,
        other => panic!("no lsmbpf implementation with {other}"),
    };
    let result = cell.get_or_init(|| {
        let run = || {
            let imp = Implementation::new(lsmbpf::USECASE, lib)?;
            lsmbpf::run_in_guest(&imp, env!("CARGO_BIN_EXE_lsmbpf-guest").as_ref(), 0)
        };
        run().map_err(|e| format!("{e:#}"))
    });
    match result {
        Ok(r) => {
            assert!(r.bpf_lsm_active(), "bpf is not an active LSM in the guest: {}", r.lsm);
            r
        }
        Err(e) => panic!("{lib}: {e}"),
    }
}

/// The phase, after checking that its program ran and that its loader left cleanly.
fn phase<'a>(r: &'a Report, name: &str) -> &'a Phase {
    let p = r.phase(name).unwrap();
    assert!(p.counter("calls") > 0, "{name}: the hook never ran: {:?}", p.counters);
    assert_eq!(p.exit_code, Some(0), "{name}: loader exit code");
    assert!(p.exit_line, "{name}: no `exit` line");
    assert!(p.prog_gone, "{name}: the program outlived its loader");
    p
}

fn assert_cases(r: &Report, prefix: &str) {
    let cases: Vec<_> = r.cases.iter().filter(|c| c.name.starts_with(prefix)).collect();
    assert!(!cases.is_empty(), "no cases {prefix}*");
    let failed: Vec<String> = cases
        .iter()
        .filter(|c| !c.pass())
        .map(|c| format!("{}: chroot {} expected errno {}, got {}", c.name, c.target, c.expected, c.observed))
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

fn enforce_denies_only_a_containerized_chroot_to_root(lib: &str) {
    let r = report(lib);
    let p = phase(r, "enforce");
    assert_cases(r, "enforce/");
    let c = &p.counters;
    assert_eq!(
        (p.counter("calls"), p.counter("allow_host"), p.counter("allow_other"), p.counter("deny"), p.counter("audit")),
        (4, 2, 1, 1, 0),
        "counters {c:?}"
    );
    assert_eq!(p.ready["mode"], "enforce");
    assert_eq!(p.events.len(), 1, "events {:?}", p.events);
    let ev = &p.events[0];
    assert_eq!(ev["verdict"], "deny");
    assert_eq!(ev["path"], "/");
    assert_eq!(ev["comm"], PROBE_COMM);
    assert_ne!(ev["pidns"].as_u64(), Some(r.host_pidns), "event in the host PID namespace: {ev}");
    assert_eq!(ev["mntns"].as_u64(), Some(r.host_mntns), "{ev}");
    assert!(ev["pid"].as_u64().unwrap_or(0) > 1, "pid as seen from the host: {ev}");
}

fn denial_is_gone_after_the_loader_exits(lib: &str) {
    let r = report(lib);
    phase(r, "enforce");
    assert_cases(r, "after_exit/");
}

fn audit_allows_and_reports(lib: &str) {
    let r = report(lib);
    let p = phase(r, "audit");
    assert_cases(r, "audit/");
    assert_eq!(p.ready["mode"], "audit");
    assert_eq!((p.counter("audit"), p.counter("deny")), (1, 0), "counters {:?}", p.counters);
    assert_eq!(p.events.len(), 1, "events {:?}", p.events);
    assert_eq!(p.events[0]["verdict"], "audit");
    assert_eq!(p.events[0]["path"], "/");
}

fn mount_namespace_criterion(lib: &str) {
    let r = report(lib);
    let p = phase(r, "mnt");
    assert_cases(r, "mnt/");
    assert_eq!(p.ready["containerized"], "mnt");
    assert_eq!(p.counter("deny"), 1, "counters {:?}", p.counters);
    assert_ne!(p.events[0]["mntns"].as_u64(), Some(r.host_mntns), "{}", p.events[0]);
}

fn an_earlier_denial_is_respected(lib: &str) {
    let r = report(lib);
    assert_cases(r, "prior_deny/");
    let enforcer = phase(r, "prior_deny_enforcer");
    let auditor = phase(r, "prior_deny");
    assert_eq!(enforcer.counter("deny"), 1, "enforcing loader {:?}", enforcer.counters);
    // Kernel 6.1 stops at the first denial, so the auditing program does not even run for the
    // denied chroot; where a kernel does run it, it must pass the denial on (`prior_deny`).
    assert_eq!(auditor.counter("audit"), 0, "the auditing program overrode a denial: {:?}", auditor.counters);
    assert_eq!(
        auditor.counter("calls"),
        auditor.counter("allow_host") + auditor.counter("prior_deny"),
        "auditing loader {:?}",
        auditor.counters
    );
    assert!(auditor.events.is_empty(), "the auditing program reported a denied chroot: {:?}", auditor.events);
}

macro_rules! for_each_lib {
    ($($lib:ident => $name:literal),*) => {$(
        mod $lib {
            #[test]
            fn enforce_denies_only_a_containerized_chroot_to_root() {
                super::enforce_denies_only_a_containerized_chroot_to_root($name)
            }
            #[test]
            fn denial_is_gone_after_the_loader_exits() {
                super::denial_is_gone_after_the_loader_exits($name)
            }
            #[test]
            fn audit_allows_and_reports() {
                super::audit_allows_and_reports($name)
            }
            #[test]
            fn mount_namespace_criterion() {
                super::mount_namespace_criterion($name)
            }
            #[test]
            fn an_earlier_denial_is_respected() {
                super::an_earlier_denial_is_respected($name)
            }
        }
    )*};
}

for_each_lib!(aya => "aya", libbpf_rs => "libbpf-rs", libbpf => "libbpf", redbpf => "redbpf", cilium_ebpf => "cilium-ebpf");
