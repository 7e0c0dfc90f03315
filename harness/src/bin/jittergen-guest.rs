//! Runs jittergen's wire scenarios (`harness::usecases::jittergen::bed::scenarios`) inside the VM
//! guest, whose kernel has fq and netem: for each implementation given with `--impl LIB=PATH`,
//! every scenario and (unless `--no-restore-checks`) the qdisc restore checks; with
//! `--references`, each scenario through netem configured the same way and through nothing. One
//! JSON line (`Outcome`) per run on stdout.
//! `harness::usecases::jittergen::bed::run_in_guest` boots the guest and reads them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use harness::usecases::jittergen::bed::{self as jg, Outcome};
use harness::process::Implementation;

fn emit(o: &Outcome) {
    println!("{}", serde_json::to_string(o).expect("serializable"));
}

fn main() -> Result<()> {
    let mut imps = Vec::new();
    let mut references = false;
    let mut restore = true;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--impl" => {
                let v = args.next().context("--impl LIB=PATH")?;
                let (lib, path) = v.split_once('=').context("--impl LIB=PATH")?;
                imps.push(Implementation { usecase: jg::USECASE.into(), lib: lib.into(), binary: PathBuf::from(path) });
            }
            "--references" => references = true,
            "--no-restore-checks" => restore = false,
            other => bail!("unknown argument `{other}`"),
        }
    }
    // One bed per subject for all its scenarios.
    let mut beds = BTreeMap::new();
    for sc in jg::scenarios() {
        for imp in &imps {
            emit(&jg::run_scenario(&mut beds, imp, &sc));
        }
        if references {
            if let Some(args) = sc.netem {
                emit(&jg::run_reference(&mut beds, &sc, Some(args)));
            }
            emit(&jg::run_reference(&mut beds, &sc, None));
        }
    }
    for imp in imps.iter().filter(|_| restore) {
        emit(&jg::restore_checks(imp));
    }
    Ok(())
}
