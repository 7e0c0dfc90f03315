//! Runs the kernel matrix's checks (`harness::kernels::check_all`) inside a VM guest:
//! `kernels-guest USECASE=LIB=PATH...`, one JSON `Cell` line per implementation on stdout.

use anyhow::{Context, Result};
use harness::process::Implementation;

fn main() -> Result<()> {
    let mut imps = Vec::new();
    for a in std::env::args().skip(1) {
        let mut parts = a.splitn(3, '=');
        let (Some(u), Some(l), Some(p)) = (parts.next(), parts.next(), parts.next()) else {
            anyhow::bail!("argument {a:?}: expected USECASE=LIB=PATH");
        };
        imps.push(Implementation { usecase: u.into(), lib: l.into(), binary: p.into() });
    }
    harness::kernels::check_all(&imps, |c| {
        println!("{}", serde_json::to_string(&c).context("serializable").unwrap_or_default());
    });
    Ok(())
}
