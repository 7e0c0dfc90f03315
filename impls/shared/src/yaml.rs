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

/// yaml_serde says where (`rules.ipv4: unknown field ...`); keep its path as the field. At the
/// top level it gives no path: a missing, unknown or repeated key is then the field itself.
pub fn error(path: &Path, e: &yaml_serde::Error) -> InputError {
    let msg = e.to_string();
    match msg.split_once(": ") {
        Some((field, reason)) if !field.contains(' ') && !field.is_empty() => InputError::in_file(path, field, reason),
        _ => match ["missing field `", "unknown field `", "duplicate field `"]
            .iter()
            .find_map(|kind| msg.strip_prefix(kind)?.split('`').next())
        {
            Some(key) if !key.is_empty() => InputError::in_file(path, key, msg.clone()),
            _ => InputError::in_file(path, "", format!("invalid YAML: {msg}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Top {
        #[allow(dead_code)]
        port: u16,
    }

    #[test]
    fn top_level_keys_are_named_as_the_field() {
        for (text, field) in [("port: 1\nprot: 2\n", "prot"), ("{}\n", "port"), ("port: x\n", "port")] {
            let e = parse::<Top>(text, Path::new("t.yml")).unwrap_err();
            assert_eq!(e.field, field, "{text:?}: {e}");
            assert!(e.to_string().starts_with("t.yml: field `"), "{e}");
        }
        // Found by fuzz/*_config: text that is no YAML has no field; the message says so.
        let e = parse::<Top>("port: \"1\u{1b}\"\n", Path::new("t.yml")).unwrap_err();
        assert!(e.field.is_empty() && e.reason.starts_with("invalid YAML: "), "{e}");
    }
}
