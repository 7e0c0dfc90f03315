//! lsmbpf in the harness. The host kernel has no BPF LSM, so conformance and measurements run
//! the scenario of [`bed`] in the VM guest: the decision matrix (one row per chroot
//! case), the cost of chroot("/") with the program over without it (a ratio from one guest:
//! absolute times under TCG are emulated), the loader's load and attach times (emulated too:
//! compare libraries, not kernels), and the verifier's statistics of the program as the guest
//! kernel saw them. Source and build metrics come from the generic steps of `run`.

pub mod bed;

use anyhow::{Context, Result};
use metrics::record::Row;

use super::UseCase;
use bed::{self as lsmbpf, Report, USECASE};
use crate::kernels::{self, Features};
use crate::measure::Ctx;
use crate::process::Implementation;

pub struct LsmBpf;

/// Every check of the scenario the tests make, as mismatch lines (empty: conformant).
pub fn mismatches(r: &Report) -> Vec<String> {
    let mut out = Vec::new();
    if !r.bpf_lsm_active() {
        out.push(format!("bpf is not an active LSM in the guest: {}", r.lsm.trim()));
    }
    for c in r.cases.iter().filter(|c| !c.pass()) {
        out.push(format!("{}: chroot {} expected errno {}, got {}", c.name, c.target, c.expected, c.observed));
    }
    for p in &r.phases {
        if p.counter("calls") == 0 {
            out.push(format!("{}: the hook never ran", p.name));
        }
        if p.exit_code != Some(0) || !p.exit_line || !p.prog_gone {
            out.push(format!(
                "{}: loader exit {:?}, exit line {}, program gone {}",
                p.name, p.exit_code, p.exit_line, p.prog_gone
            ));
        }
    }
    let verdicts = |name: &str| -> Vec<String> {
        r.phase(name)
            .map(|p| p.events.iter().map(|e| e["verdict"].as_str().unwrap_or("?").to_string()).collect())
            .unwrap_or_default()
    };
    for (phase, expected) in
        [("enforce", vec!["deny"]), ("audit", vec!["audit"]), ("mnt", vec!["deny"]), ("prior_deny", vec![])]
    {
        let got = verdicts(phase);
        if got != expected {
            out.push(format!("{phase}: events {got:?}, expected {expected:?}"));
        }
    }
    out
}

/// Whether the program under test made the decision of case `c`. In `prior_deny` an enforcing
/// program attached after it runs first, and where that one denies, the kernel (6.1) stops
/// there: the program under test sees such a case only if its `prior_deny` counter moved.
fn exercised(r: &Report, c: &lsmbpf::Case) -> bool {
    match c.name.split_once('/') {
        Some(("prior_deny", _)) if c.expected != 0 => r.phase("prior_deny").is_ok_and(|p| p.counter("prior_deny") > 0),
        _ => true,
    }
}

/// One repetition's rows of a library's guest report.
fn rows(ctx: &Ctx, r: &Report) -> Result<Vec<Row>> {
    let lib = r.lib.as_str();
    let mut rows = Vec::new();
    for rep in ctx.rep_range() {
        for c in &r.cases {
            let row = |metric: &str, v: bool| Row::new(USECASE, lib, metric, "bool", rep, v as u8 as f64).with_class(&c.name);
            let exercised = exercised(r, c);
            rows.push(row("decision_exercised", exercised));
            // A decision the program under test never made is not a pass.
            if exercised {
                rows.push(row("decision_pass", c.pass()));
            }
        }
        let bench = r.bench.as_ref().context("the guest ran no bench")?;
        rows.push(Row::new(USECASE, lib, "chroot_cost_ratio", "×", rep, bench.ratio()));
        let enforce = r.phase("enforce")?;
        // Named as in `measure::load::program_rows`: class = program, rss without one.
        for (metric, value) in &enforce.program {
            let row = match metric.as_str() {
                "rss_kib" => Row::new(USECASE, lib, metric, "KiB", rep, *value),
                "verified_insns" => Row::new(USECASE, lib, metric, "insns", rep, *value).with_class("lsmbpf"),
                _ => Row::new(USECASE, lib, metric, "bytes", rep, *value).with_class("lsmbpf"),
            };
            rows.push(row);
        }
        let ready = &enforce.ready;
        for (metric, field) in [("load_attach_ms", "load_ms"), ("attach_ms", "attach_ms")] {
            let ms = ready[field].as_f64().with_context(|| format!("no {field} in the ready line"))?;
            rows.push(Row::new(USECASE, lib, metric, "ms", rep, ms).with_class("vm_guest"));
        }
    }
    Ok(rows)
}

impl UseCase for LsmBpf {
    fn name(&self) -> &'static str {
        USECASE
    }

    fn conformance(&self, _ctx: &Ctx, imp: &Implementation) -> Result<Vec<String>> {
        let report = lsmbpf::run_in_guest(imp, &lsmbpf::guest_binary()?, 0)?;
        Ok(mismatches(&report))
    }

    fn warm_up(&self) -> bool {
        false
    }

    /// Everything is measured in the guest: [`UseCase::together`].
    fn measure(&self, _ctx: &Ctx, _imp: &Implementation) -> Result<Vec<Row>> {
        Ok(Vec::new())
    }

    /// One guest boot per repetition runs the scenario and the bench for every library in turn
    /// (a boot per library: 5 × ~5 s per repetition; together 14-18 s).
    fn together(&self, ctx: &Ctx, imps: &[Implementation], _references: bool) -> Result<Vec<(String, Result<Vec<Row>>)>> {
        ctx.step(&format!("{USECASE}: every library's scenario and bench in the VM guest"));
        let iterations = ctx.scaled(20_000, 5_000);
        let reports = lsmbpf::run_all_in_guest(imps, &lsmbpf::guest_binary()?, iterations)?;
        Ok(imps.iter().zip(reports).map(|(imp, r)| (imp.lib.clone(), r.and_then(|r| rows(ctx, &r)))).collect())
    }

    fn references(&self, _ctx: &Ctx) -> Result<Vec<Row>> {
        // The floor is in every row already: chroot_cost_ratio is relative to no program.
        Ok(Vec::new())
    }

    /// Runs in the guest already: the scenario directly.
    fn on_kernel(&self, imp: &Implementation, f: &Features) -> (String, String) {
        use kernels::{first_relevant, FAILS_TO_LOAD, PASS, WRONG_RESULTS};
        if !f.bpf_lsm {
            return (kernels::LACKS_FEATURE.into(), "BPF LSM not active (needs CONFIG_BPF_LSM and lsm=…,bpf)".into());
        }
        match lsmbpf::guest_scenario(imp, 0) {
            Err(e) => (FAILS_TO_LOAD.into(), first_relevant(&format!("{e:#}"))),
            Ok(r) => {
                let wrong: Vec<String> = r
                    .cases
                    .iter()
                    .filter(|c| !c.pass())
                    .map(|c| format!("{}: chroot {} expected errno {}, got {}", c.name, c.target, c.expected, c.observed))
                    .collect();
                let fired = r.phase("enforce").map(|p| p.counter("calls") > 0).unwrap_or(false);
                if !fired {
                    (WRONG_RESULTS.into(), "the hook never ran".into())
                } else if wrong.is_empty() {
                    (PASS.into(), format!("{} chroot cases", r.cases.len()))
                } else {
                    (WRONG_RESULTS.into(), wrong.join("; "))
                }
            }
        }
    }
}
