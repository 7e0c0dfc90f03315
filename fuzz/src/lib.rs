//! What every fuzz target checks of a rejected input: the contract's message (file, field or
//! place, reason), never a panic.

use std::path::Path;

use bpfeval_shared::InputError;

/// The path the targets parse "from" (only used in messages).
pub const PATH: &str = "/fuzz/config.yml";

pub fn path() -> &'static Path {
    Path::new(PATH)
}

/// A rejection names the file, says why, and names the field, or says the file is no valid YAML
/// at all (yaml_serde then gives a line, a byte position or, for several documents, nothing).
pub fn check_rejected(e: &InputError) {
    assert_eq!(e.file.as_deref(), Some(path()), "the file is not named: {e:?}");
    assert!(!e.reason.trim().is_empty(), "no reason: {e:?}");
    assert!(e.to_string().contains(PATH), "the message does not name the file: {e}");
    assert!(!e.field.is_empty() || e.reason.starts_with("invalid YAML: "), "neither a field nor invalid YAML: {e}");
}

/// Checks a config parser's outcome: accepted, or rejected the contract's way.
pub fn check<T>(result: Result<T, InputError>) -> Option<T> {
    result.map_err(|e| check_rejected(&e)).ok()
}
