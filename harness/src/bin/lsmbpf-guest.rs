//! Runs the lsmbpf scenario inside the VM guest and prints its report as one JSON line
//! (see `harness::usecases::lsmbpf::bed`):
//! `lsmbpf-guest <implementation binary> <lib> <bench iterations>`.

use anyhow::{Context, Result};
use harness::usecases::lsmbpf::bed::{guest_scenario, USECASE};
use harness::process::Implementation;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [binary, lib, iterations] = args.as_slice() else {
        anyhow::bail!("usage: lsmbpf-guest <implementation binary> <lib> <bench iterations>");
    };
    let imp = Implementation { usecase: USECASE.into(), lib: lib.clone(), binary: binary.into() };
    let iterations = iterations.parse().context("bench iterations")?;
    let report = guest_scenario(&imp, iterations)?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
