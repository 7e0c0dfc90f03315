//! comtrace has no config file: its command line (one argument per line of the input) is
//! accepted, or rejected as a usage error (exit code 2) or an input error naming the flag.
#![no_main]

use bpfeval_shared::comtrace::cli::Args;
use clap::Parser;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let argv = std::iter::once("comtrace").chain(text.lines());
    match Args::try_parse_from(argv) {
        Ok(args) => {
            if let Err(e) = args.validate() {
                assert!(e.field.starts_with("--") && !e.reason.is_empty(), "{e:?}");
            }
        }
        Err(e) => assert!(
            matches!(e.kind(), clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion)
                || e.exit_code() == bpfeval_shared::error::EXIT_BAD_INPUT,
            "{e}"
        ),
    }
});
