//! Costs of a library's own recommended path, measured in isolation (not through our tools), so
//! the report can say how much of a difference is the library's: findings with their numbers.

use std::process::Command;

use anyhow::{bail, Context, Result};
use metrics::record::Finding;

use super::Ctx;

/// aya's kernel BTF parse (`EbpfLoader::new()` parses /sys/kernel/btf/vmlinux at every load):
/// `aya-btf-cost` (impls/aya/btf-cost) times it and measures its memory; the JSON goes to
/// `library-costs/aya-btf-cost.json` in the run, and findings on load time and memory cite it.
pub fn aya_btf_cost(ctx: &Ctx) -> Result<Vec<Finding>> {
    let bin = ctx.workspace.join("target/release/aya-btf-cost");
    let reps = if ctx.quick { "3" } else { "7" };
    let out = Command::new(&bin).arg(reps).output().with_context(|| format!("running {} (make build)", bin.display()))?;
    if !out.status.success() {
        bail!("{}: {}", bin.display(), String::from_utf8_lossy(&out.stderr).trim());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("parsing aya-btf-cost's JSON")?;
    let dir = ctx.out.join("library-costs");
    std::fs::create_dir_all(&dir)?;
    metrics::record::write_json(&dir.join("aya-btf-cost.json"), &v)?;
    let n = |k: &str| v[k].as_f64().with_context(|| format!("aya-btf-cost: no `{k}`"));
    let (ms, rss, mib) = (n("loader_new_ms")?, n("loader_new_rss_kb")?, n("btf_bytes")? / 1048576.0);
    let cause = |what: &str| {
        format!(
            "aya's EbpfLoader::new() parses the whole kernel BTF ({mib:.1} MiB) at every load: {what}, measured in \
             isolation (aya-btf-cost, median of {reps}; Ebpf::load, the template's call, parses it twice)"
        )
    };
    Ok([("load_attach_ms", format!("{ms:.0} ms")), ("rss_kib", format!("+{:.1} MiB resident", rss / 1024.0))]
        .into_iter()
        .map(|(metric, what)| Finding {
            usecase: "*".into(),
            metric: metric.into(),
            libs: vec!["aya".into()],
            cause: cause(&what),
            evidence: vec!["library-costs/aya-btf-cost.json".into()],
        })
        .collect())
}
