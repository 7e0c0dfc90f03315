//! The lsmbpf `config.yml` (optional; the command line overrides it):
//!
//! ```yaml
//! mode: enforce          # enforce | audit
//! containerized: pid     # pid | mnt: the namespace that, when it differs from the loader's,
//!                        # makes a process containerized
//! ```
//! Unknown keys are errors, so a typo never silently changes the policy.

use std::path::Path;

use clap::ValueEnum;
use serde::Deserialize;

use super::abi;
use crate::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Deny (-EPERM) a containerized process's chroot to "/".
    #[default]
    Enforce,
    /// Allow it, and report it as an event.
    Audit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Criterion {
    /// The PID namespace differs from the loader's (the thesis' definition).
    #[default]
    Pid,
    /// The mount namespace differs from the loader's.
    Mnt,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Audit => "audit",
        }
    }

    pub fn abi(self) -> u32 {
        match self {
            Mode::Enforce => abi::MODE_ENFORCE,
            Mode::Audit => abi::MODE_AUDIT,
        }
    }
}

impl Criterion {
    pub fn as_str(self) -> &'static str {
        match self {
            Criterion::Pid => "pid",
            Criterion::Mnt => "mnt",
        }
    }

    pub fn abi(self) -> u32 {
        match self {
            Criterion::Pid => abi::CRITERION_PID_NS,
            Criterion::Mnt => abi::CRITERION_MNT_NS,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub mode: Mode,
    #[serde(default)]
    pub containerized: Criterion,
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, InputError> {
        // An empty file is a valid config with every default.
        let (config, _) = crate::yaml::load::<Option<Config>>(path)?;
        Ok(config.unwrap_or_default())
    }

    /// Parses `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Config, InputError> {
        crate::yaml::parse::<Option<Config>>(text, path).map(Option::unwrap_or_default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, InputError> {
        Config::parse(text, Path::new("c.yml"))
    }

    #[test]
    fn defaults_and_values() {
        assert_eq!(parse("").unwrap(), Config::default());
        assert_eq!(
            parse("mode: audit\ncontainerized: mnt\n").unwrap(),
            Config { mode: Mode::Audit, containerized: Criterion::Mnt }
        );
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = parse("mode: deny\n").unwrap_err();
        assert_eq!(e.field, "mode", "{e}");
        let e = parse("criterion: pid\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `criterion`"), "{e}");
        let e = parse("containerized: uts\n").unwrap_err();
        assert_eq!(e.field, "containerized", "{e}");
    }
}
