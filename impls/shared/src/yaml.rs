//! Reading a use case's YAML file with errors the contract's way (file, field, reason).

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::InputError;

/// Reads and deserializes `path`.
pub fn load<T: DeserializeOwned>(path: &Path) -> Result<(T, String), InputError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| InputError::in_file(path, "", format!("cannot read: {e}")))?;
    Ok((parse(&text, path)?, text))
}

/// Deserializes `text`; `path` is only used in error messages.
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, InputError> {
    yaml_serde::from_str(text).map_err(|e| error(path, &e))
}

/// yaml_serde says where (`rules.ipv4: unknown field ...`); keep its path as the field.
pub fn error(path: &Path, e: &yaml_serde::Error) -> InputError {
    let msg = e.to_string();
    match msg.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') && !field.is_empty() => InputError::in_file(path, field, reason),
        _ => InputError::in_file(path, "", format!("invalid YAML: {msg}")),
    }
}
