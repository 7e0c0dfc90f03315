//! Bad input: the contract says exit code 2, a message naming file, field and reason, and
//! nothing attached. Loaders validate everything before they load a program, so returning
//! an `InputError` early is enough to keep the "nothing attached" promise.

use std::fmt;
use std::path::{Path, PathBuf};

/// Exit code for bad input (config file, CLI values, unknown interface).
pub const EXIT_BAD_INPUT: i32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file the problem is in, or `None` for a command-line value.
    pub file: Option<PathBuf>,
    /// Dotted path of the offending field, e.g. `rules.ipv4.block[3]`.
    pub field: String,
    pub reason: String,
}

impl InputError {
    pub fn in_file(file: &Path, field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { file: Some(file.to_path_buf()), field: field.into(), reason: reason.into() }
    }

    pub fn cli(flag: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { file: None, field: flag.into(), reason: reason.into() }
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.file {
            Some(file) if self.field.is_empty() => write!(f, "{}: {}", file.display(), self.reason),
            Some(file) => write!(f, "{}: field `{}`: {}", file.display(), self.field, self.reason),
            None => write!(f, "command line `{}`: {}", self.field, self.reason),
        }
    }
}

impl std::error::Error for InputError {}

/// Prints an error the contract's way and exits: 2 for bad input, 1 for anything else.
pub fn exit_with(err: anyhow::Error) -> ! {
    let code = if err.downcast_ref::<InputError>().is_some() { EXIT_BAD_INPUT } else { 1 };
    eprintln!("error: {err:#}");
    std::process::exit(code)
}
