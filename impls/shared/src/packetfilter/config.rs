//! The packetfilter `config.yml`, as in the thesis:
//!
//! ```yaml
//! rules:
//!   interface: eth0
//!   ipv4:
//!     default: allow        # allow | block
//!     allow: [10.0.0.1]
//!     block: [10.0.0.0/8]   # CIDR prefixes are our extension
//!   ipv6:
//!     default: allow
//!     block: ["2001:db8::/32"]
//! ```
//! Every field but `rules` may be left out (defaults: allow, empty lists). Unknown keys are
//! errors, so a typo never silently turns a rule off. `rules.capacity` (our extension): how many
//! rules the maps are sized for at start, so that a reload may grow the set that far.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use ipnet::IpNet;
use serde::Deserialize;

use crate::InputError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Allow,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    V4,
    V6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListKind {
    Block,
    Allow,
}

impl ListKind {
    pub fn abi(self) -> u8 {
        match self {
            ListKind::Block => super::abi::LIST_BLOCK,
            ListKind::Allow => super::abi::LIST_ALLOW,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    rules: RawRules,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    interface: Option<String>,
    capacity: Option<u32>,
    ipv4: Option<RawFamily>,
    ipv6: Option<RawFamily>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFamily {
    default: Option<Action>,
    allow: Option<Vec<yaml_serde::Value>>,
    block: Option<Vec<yaml_serde::Value>>,
}

/// One rule, with the config path it came from (`rules.ipv4.block[3]`) for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub family: Family,
    pub list: ListKind,
    pub net: IpNet,
    pub field: String,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub interface: Option<String>,
    /// `rules.capacity`, checked to hold the rules; read at start only.
    pub capacity: Option<u32>,
    pub rules: Ruleset,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ruleset {
    pub default_v4: Option<Action>,
    pub default_v6: Option<Action>,
    /// Rule `i` has rule id `i` within its generation (see `abi`).
    pub rules: Vec<Rule>,
}

impl Ruleset {
    pub fn default_drop(&self, family: Family) -> bool {
        let d = match family {
            Family::V4 => self.default_v4,
            Family::V6 => self.default_v6,
        };
        d == Some(Action::Block)
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let (raw, _) = crate::yaml::load(path)?;
        Self::validate(raw, path)
    }

    /// Parses `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InputError> {
        Self::validate(crate::yaml::parse(text, path)?, path)
    }

    fn validate(raw: RawConfig, path: &Path) -> Result<Self, InputError> {
        let mut rules = Ruleset::default();
        let mut seen: HashMap<(Family, ListKind, IpNet), String> = HashMap::new();
        for (family, raw_family) in [(Family::V4, raw.rules.ipv4), (Family::V6, raw.rules.ipv6)] {
            let raw_family = raw_family.unwrap_or_default();
            let fam = if family == Family::V4 { "ipv4" } else { "ipv6" };
            match family {
                Family::V4 => rules.default_v4 = raw_family.default,
                Family::V6 => rules.default_v6 = raw_family.default,
            }
            // Block first: that is the order the kernel programs consult the lists in.
            for (list, entries, name) in
                [(ListKind::Block, raw_family.block, "block"), (ListKind::Allow, raw_family.allow, "allow")]
            {
                for (i, value) in entries.unwrap_or_default().iter().enumerate() {
                    let field = format!("rules.{fam}.{name}[{i}]");
                    let net = parse_entry(value, family).map_err(|r| InputError::in_file(path, &field, r))?;
                    if let Some(first) = seen.insert((family, list, net), field.clone()) {
                        return Err(InputError::in_file(path, &field, format!("duplicate of {first} ({net})")));
                    }
                    rules.rules.push(Rule { family, list, net, field });
                }
            }
        }
        if let Some(iface) = &raw.rules.interface {
            if iface.is_empty() {
                return Err(InputError::in_file(path, "rules.interface", "must not be empty"));
            }
        }
        match raw.rules.capacity {
            Some(0) => return Err(InputError::in_file(path, "rules.capacity", "must be at least 1")),
            Some(c) if (c as usize) < rules.rules.len() => {
                let why = format!("{c} is fewer than the {} rules of this file", rules.rules.len());
                return Err(InputError::in_file(path, "rules.capacity", why));
            }
            _ => {}
        }
        Ok(Config { interface: raw.rules.interface, capacity: raw.rules.capacity, rules })
    }
}

fn parse_entry(value: &yaml_serde::Value, family: Family) -> Result<IpNet, String> {
    let text = value.as_str().ok_or_else(|| format!("expected an address or prefix as a string, found {value:?}"))?;
    let net: IpNet = match text.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => match text.parse::<IpAddr>() {
            Ok(addr) => IpNet::from(addr),
            Err(_) => return Err(format!("`{text}` is not an IP address or CIDR prefix")),
        },
    };
    match (family, net) {
        (Family::V4, IpNet::V4(_)) | (Family::V6, IpNet::V6(_)) => {}
        (Family::V4, IpNet::V6(_)) => return Err(format!("`{text}` is IPv6 but listed under ipv4")),
        (Family::V6, IpNet::V4(_)) => return Err(format!("`{text}` is IPv4 but listed under ipv6")),
    }
    if net.trunc() != net {
        return Err(format!("`{text}` has host bits set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, InputError> {
        Config::parse(s, Path::new("test.yml"))
    }

    #[test]
    fn thesis_config_parses() {
        let c = parse(
            "rules:\n  interface: eth1\n  ipv4:\n    default: allow\n    allow:\n      - 192.168.1.1\n    block:\n      - 10.0.0.1\n  ipv6:\n    default: block\n    allow:\n      - ::1\n    block:\n",
        )
        .unwrap();
        assert_eq!(c.interface.as_deref(), Some("eth1"));
        assert!(!c.rules.default_drop(Family::V4));
        assert!(c.rules.default_drop(Family::V6));
        assert_eq!(c.rules.rules.len(), 3);
        assert_eq!(c.rules.rules[0].field, "rules.ipv4.block[0]");
        assert_eq!(c.rules.rules[0].net.to_string(), "10.0.0.1/32");
        assert_eq!(c.rules.rules[2].net.to_string(), "::1/128");
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("rules:\n  ipv4:\n    block: [10.0.0.0/8, 300.1.1.1]\n").unwrap_err();
        assert_eq!(e.field, "rules.ipv4.block[1]");
        let e = parse("rules:\n  ipv6:\n    allow: [10.0.0.1]\n").unwrap_err();
        assert!(e.reason.contains("IPv4 but listed under ipv6"), "{e}");
        let e = parse("rules:\n  ipv4:\n    blok: []\n").unwrap_err();
        assert_eq!(e.field, "rules.ipv4");
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = parse("rules:\n  ipv4:\n    default: maybe\n").unwrap_err();
        assert!(e.to_string().contains("test.yml"), "{e}");
        let e = parse("rules:\n  ipv4:\n    block: [10.0.0.1/8]\n").unwrap_err();
        assert!(e.reason.contains("host bits"), "{e}");
        let e = parse("rules:\n  ipv4:\n    block: [10.0.0.1, 10.0.0.1/32]\n").unwrap_err();
        assert!(e.reason.contains("duplicate of rules.ipv4.block[0]"), "{e}");
        let e = parse("rules:\n  capacity: 1\n  ipv4:\n    block: [10.0.0.1, 10.0.0.2]\n").unwrap_err();
        assert_eq!(e.field, "rules.capacity");
        assert!(e.reason.contains("fewer than the 2 rules"), "{e}");
        assert_eq!(parse("rules:\n  capacity: 0\n").unwrap_err().field, "rules.capacity");
        assert_eq!(parse("rules:\n  capacity: 2\n  ipv4:\n    block: [10.0.0.1]\n").unwrap().capacity, Some(2));
    }
}
