//! Shared by the build scripts here (`#[path]`): they run another cargo, whose toolchain and
//! settings must come from its own directory, not from the cargo running the build script.

use std::process::Command;

/// Removes what cargo tells its build scripts (`CARGO_*`, `RUST*`, ...) from `command`'s
/// environment, keeping where cargo and rustup live.
pub fn clean_cargo_env(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO") && key != "CARGO_HOME") || (key.starts_with("RUST") && key != "RUSTUP_HOME") {
            command.env_remove(key.as_ref());
        }
    }
}
