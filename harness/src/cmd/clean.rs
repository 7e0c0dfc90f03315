//! `harness clean`: removes what a crashed or killed run left behind. Everything the project
//! creates is named with the `bpfeval-` prefix or is one of our programs, so nothing else is
//! touched; what a live harness or implementation still holds is left alone.

use anyhow::Result;
use harness::cleanup;

pub fn run() -> Result<Vec<String>> {
    cleanup::all_stale()
}
