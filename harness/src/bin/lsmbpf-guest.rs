//! Runs the lsmbpf scenario inside the VM guest for each implementation given, one after the
//! other, and prints each one's report as one JSON line (see `harness::usecases::lsmbpf::bed`),
//! or `{"lib": …, "error": …}` where the scenario could not run:
//! `lsmbpf-guest <bench iterations> <lib>=<implementation binary>…`.

use anyhow::{Context, Result};
use harness::usecases::lsmbpf::bed::{guest_scenario, USECASE};
use harness::process::Implementation;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((iterations, imps)) = args.split_first().filter(|(_, imps)| !imps.is_empty()) else {
        anyhow::bail!("usage: lsmbpf-guest <bench iterations> <lib>=<implementation binary>…");
    };
    let iterations = iterations.parse().context("bench iterations")?;
    let mut failed = false;
    for arg in imps {
        let (lib, binary) = arg.split_once('=').with_context(|| format!("`{arg}`: expected <lib>=<binary>"))?;
        let imp = Implementation { usecase: USECASE.into(), lib: lib.into(), binary: binary.into() };
        // One implementation's failure does not take the others' measurements with it.
        match guest_scenario(&imp, iterations) {
            Ok(report) => println!("{}", serde_json::to_string(&report)?),
            Err(e) => {
                failed = true;
                println!("{}", serde_json::json!({"lib": lib, "error": format!("{e:#}")}));
            }
        }
    }
    anyhow::ensure!(!failed, "the scenario failed for some implementation (see its line)");
    Ok(())
}
