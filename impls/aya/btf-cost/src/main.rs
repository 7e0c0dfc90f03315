//! The cost aya's loader pays for the kernel BTF, in isolation, as one JSON line:
//! `cargo run --release -p aya-btf-cost [-- REPS]`.
//!
//! `EbpfLoader::new()` parses `/sys/kernel/btf/vmlinux` (aya 0.14.0, src/bpf.rs), and
//! `Ebpf::load(data)` is `EbpfLoader::new().btf(Btf::from_sys_fs().ok().as_ref()).load(data)`:
//! a second parse, both results alive until the first is replaced. Each measurement runs in a
//! fresh process (this binary again), so no run inherits another's heap: wall time, growth of
//! VmRSS while the result is alive, and growth of the peak VmHWM; medians over REPS (default 5).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context as _, Result};
use aya::{Btf, EbpfLoader};

const KINDS: [&str; 3] = ["btf_parse", "loader_new", "ebpf_load_btf"];

/// A `kB` field of /proc/self/status.
fn status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with(field)).with_context(|| format!("no {field}"))?;
    Ok(line.split_whitespace().nth(1).context("no value")?.parse()?)
}

/// One measurement in this process: `[ms, rss_kb, peak_kb]`.
fn child(kind: &str) -> Result<[f64; 3]> {
    let (rss, hwm) = (status_kb("VmRSS:")?, status_kb("VmHWM:")?);
    let start = Instant::now();
    let alive: Box<dyn std::any::Any> = match kind {
        "btf_parse" => Box::new(Btf::from_sys_fs().context("parsing the kernel BTF")?),
        "loader_new" => Box::new(EbpfLoader::new()),
        // What `Ebpf::load` does before it reads the object.
        "ebpf_load_btf" => {
            let second = Btf::from_sys_fs().context("parsing the kernel BTF")?;
            let mut loader = EbpfLoader::new();
            loader.btf(Some(&second));
            drop(loader);
            Box::new(second)
        }
        _ => bail!("unknown measurement {kind}"),
    };
    let ms = start.elapsed().as_secs_f64() * 1e3;
    let grown = |now: u64, before: u64| now.saturating_sub(before) as f64;
    let out = [ms, grown(status_kb("VmRSS:")?, rss), grown(status_kb("VmHWM:")?, hwm)];
    drop(alive);
    Ok(out)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, kind] = args.as_slice() {
        if flag == "--child" {
            println!("{}", serde_json::to_string(&child(kind)?)?);
            return Ok(());
        }
    }
    let reps: usize = match args.first() {
        Some(n) => n.parse().context("usage: aya-btf-cost [REPS]")?,
        None => 5,
    };
    anyhow::ensure!(reps > 0, "REPS must be at least 1");
    let exe = std::env::current_exe()?;
    let mut record = serde_json::Map::new();
    record.insert("btf_bytes".into(), std::fs::metadata("/sys/kernel/btf/vmlinux")?.len().into());
    for kind in KINDS {
        let mut runs: [Vec<f64>; 3] = Default::default();
        for _ in 0..reps {
            let out = Command::new(&exe).args(["--child", kind]).output()?;
            if !out.status.success() {
                bail!("{kind}: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let values: [f64; 3] = serde_json::from_slice(&out.stdout)?;
            for (run, value) in runs.iter_mut().zip(values) {
                run.push(value);
            }
        }
        let [ms, rss, peak] = runs.map(median);
        record.insert(format!("{kind}_ms"), ms.into());
        record.insert(format!("{kind}_rss_kb"), rss.into());
        record.insert(format!("{kind}_peak_kb"), peak.into());
    }
    record.insert("reps".into(), reps.into());
    println!("{}", serde_json::Value::Object(record));
    Ok(())
}
