//! Smoke test of the kernel matrix (`harness kernels`; the full matrix is in `make run`): the
//! packetfilter binaries of every library on Debian's 6.12 kernel, in one VM guest boot, must
//! load, attach, pass the conformance vectors and the veth traffic check, and report the
//! verifier's instruction count of their program. Fetches the kernel package on first use.

use harness::kernels::{self, PASS};

#[test]
fn packetfilter_of_every_library_passes_on_debian_6_12() {
    harness::bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    // Every library the registry can build here (libbpfgo cannot: it is listed, not built).
    let libs: Vec<&str> = harness::libs::LIBS.iter().filter(|l| l.buildable()).map(|l| l.name).collect();
    assert!(libs.len() >= 5, "{libs:?}");
    let (imps, missing) = kernels::implementations(&harness::process::impls_dir(), &["packetfilter"], &libs);
    assert!(missing.is_empty(), "not built: {missing:?} (run `make build`)");
    let cells = kernels::run_kernel("6.12", &imps, env!("CARGO_BIN_EXE_kernels-guest").as_ref())
        .unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(cells.len(), libs.len(), "{cells:?}");
    for c in &cells {
        assert_eq!((c.kernel.as_str(), c.status.as_str()), ("6.12", PASS), "{c:?}");
        assert!(c.detail.contains("vectors") && c.detail.contains("veth traffic pass"), "{c:?}");
        // 6.12 reports verified_insns (since 5.16): a positive count for the one program.
        let n: Option<u32> = c.verified_insns.strip_prefix("packetfilter=").and_then(|n| n.parse().ok());
        assert!(n.is_some_and(|n| n > 0), "{c:?}");
    }
}
