//! What every fuzz target checks of a rejected input: the contract's message (file, field or
//! place, reason), never a panic.

use std::path::Path;

use bpfeval_shared::InputError;

/// The path the targets parse "from" (only used in messages).
pub const PATH: &str = "/fuzz/config.yml";

pub fn path() -> &'static Path {
    Path::new(PATH)
}

/// A rejection names the file, says why, and names the field or, for text that is no YAML of
/// the expected shape, the place in the file.
pub fn check_rejected(e: &InputError) {
    assert_eq!(e.file.as_deref(), Some(path()), "the file is not named: {e:?}");
    assert!(!e.reason.trim().is_empty(), "no reason: {e:?}");
    assert!(e.to_string().contains(PATH), "the message does not name the file: {e}");
    assert!(!e.field.is_empty() || e.reason.contains("line "), "neither a field nor a place: {e}");
}

/// Checks a config parser's outcome: accepted, or rejected the contract's way.
pub fn check<T>(result: Result<T, InputError>) -> Option<T> {
    result.map_err(|e| check_rejected(&e)).ok()
}
