//! The jittergen `config.yml`. The thesis' single-rule form works unchanged:
//!
//! ```yaml
//! outIf: eth0
//! action: jitter              # drop | jitter | reorder
//! match: {percent: 50, protocol: udp, port: 5000}   # protocol: ip | tcp | udp
//! jitter: {minDelayMs: 10, maxDelayMs: 30}
//! reorder: {delayMs: 20}      # sections of other actions are ignored
//! ```
//! Extensions: `baseDelayMs` (a fixed delay of every matched packet), `jitter.keepOrder`
//! (default true), IPv6 (a rule matches both families), several rules under `rules:` (a list of
//! rule objects; the first one whose protocol and port match a packet decides; not together
//! with a top-level rule), `fq:` (the qdisc the loader installs) and `tcAttach` (auto | tcx |
//! netlink). Unknown keys are errors, so a typo never silently turns a rule off.
//!
//! `port` matches the source or the destination port; it needs `protocol: tcp` or `udp`.
//! `percent` is the share of matched packets the action applies to (0–100, fractions allowed).
//! Delays are in milliseconds (fractions allowed); a rule's largest delay may not exceed
//! [`MAX_DELAY_MS`].

use std::path::Path;

use serde::Deserialize;

use super::abi;
use crate::InputError;

/// The largest delay a rule may give (base + the action's largest). fq's horizon is set above
/// it (see [`FqConfig::horizon_ms`]), so fq never drops a packet this program scheduled.
pub const MAX_DELAY_MS: f64 = 60_000.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Drop,
    Jitter,
    Reorder,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Ip,
    Tcp,
    Udp,
}

/// How the TC program is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TcAttach {
    /// TCX where the kernel has it (>= 6.6), else netlink clsact; decided by probing.
    #[default]
    Auto,
    Tcx,
    Netlink,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawMatch {
    percent: Option<f64>,
    protocol: Option<Protocol>,
    port: Option<u16>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawJitter {
    min_delay_ms: Option<f64>,
    max_delay_ms: Option<f64>,
    keep_order: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawReorder {
    delay_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    action: Option<Action>,
    #[serde(rename = "match")]
    matches: Option<RawMatch>,
    jitter: Option<RawJitter>,
    reorder: Option<RawReorder>,
    base_delay_ms: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFq {
    install: Option<bool>,
    flow_limit: Option<u32>,
    limit: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    out_if: Option<String>,
    // The thesis' single rule, at the top level.
    action: Option<Action>,
    #[serde(rename = "match")]
    matches: Option<RawMatch>,
    jitter: Option<RawJitter>,
    reorder: Option<RawReorder>,
    base_delay_ms: Option<f64>,
    rules: Option<Vec<RawRule>>,
    fq: Option<RawFq>,
    tc_attach: Option<TcAttach>,
}

/// What a rule does to the share of matched packets it acts on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Effect {
    Drop,
    Jitter { min_ms: f64, max_ms: f64, keep_order: bool },
    Reorder { delay_ms: f64 },
}

/// One validated rule, with the config path it came from (`rules[1]`, or `` for the top level).
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub field: String,
    pub protocol: Protocol,
    /// `None`: any port.
    pub port: Option<u16>,
    pub percent: f64,
    pub base_delay_ms: f64,
    pub effect: Effect,
}

impl Rule {
    /// The rule as the kernel program reads it (`abi::Rule`).
    pub fn abi(&self) -> abi::Rule {
        let ns = |ms: f64| (ms * 1e6).round() as u64;
        let chance = ((self.percent / 100.0) * abi::CHANCE_ALL as f64).round() as u64;
        let (action, flags, min_ns, span_ns) = match self.effect {
            Effect::Drop => (abi::ACTION_DROP, 0, 0, 0),
            Effect::Jitter { min_ms, max_ms, keep_order } => {
                let flags = if keep_order { abi::FLAG_KEEP_ORDER } else { 0 };
                (abi::ACTION_JITTER, flags, ns(min_ms), ns(max_ms) - ns(min_ms))
            }
            Effect::Reorder { delay_ms } => (abi::ACTION_REORDER, 0, ns(delay_ms), 0),
        };
        abi::Rule {
            chance: chance.min(abi::CHANCE_ALL),
            base_ns: ns(self.base_delay_ms),
            min_ns,
            span_ns,
            action,
            flags,
            port: self.port.unwrap_or(0),
            protocol: match self.protocol {
                Protocol::Ip => abi::PROTO_ANY,
                Protocol::Tcp => abi::PROTO_TCP,
                Protocol::Udp => abi::PROTO_UDP,
            },
        }
    }

    /// The largest delay the rule gives a packet, in ms.
    pub fn max_delay_ms(&self) -> f64 {
        self.base_delay_ms
            + match self.effect {
                Effect::Drop => 0.0,
                Effect::Jitter { max_ms, .. } => max_ms,
                Effect::Reorder { delay_ms } => delay_ms,
            }
    }

    /// Whether the rule delays any packet (and so needs fq).
    pub fn delays(&self) -> bool {
        self.max_delay_ms() > 0.0
    }

    /// `rules[1]`, or `(top level)` for the thesis' single rule.
    pub fn name(&self) -> &str {
        if self.field.is_empty() {
            "(top level)"
        } else {
            &self.field
        }
    }
}

/// The `fq` root qdisc the loader installs when a rule delays packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FqConfig {
    /// false: leave the qdisc alone (the user runs fq, or mq with fq children, already).
    pub install: bool,
    /// Packets per flow (fq's default of 100 drops most of a delayed burst).
    pub flow_limit: u32,
    /// Packets in the whole qdisc.
    pub limit: u32,
    /// fq drops packets scheduled further ahead than this: the largest delay plus a second,
    /// and not below fq's own default of 10 s.
    pub horizon_ms: u32,
}

pub const DEFAULT_FLOW_LIMIT: u32 = 10_000;
pub const DEFAULT_LIMIT: u32 = 100_000;

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub interface: Option<String>,
    pub rules: Vec<Rule>,
    pub fq: FqConfig,
    pub tc_attach: TcAttach,
}

impl Config {
    pub fn load(path: &Path) -> Result<Self, InputError> {
        let (raw, _) = crate::yaml::load(path)?;
        Self::from_raw(raw, path)
    }

    /// Parses `text`; `path` is only used in error messages.
    pub fn parse(text: &str, path: &Path) -> Result<Self, InputError> {
        Self::from_raw(crate::yaml::parse(text, path)?, path)
    }

    fn from_raw(raw: RawConfig, path: &Path) -> Result<Self, InputError> {
        let err = |field: &str, reason: String| InputError::in_file(path, field, reason);
        let top = RawRule {
            action: raw.action,
            matches: raw.matches,
            jitter: raw.jitter,
            reorder: raw.reorder,
            base_delay_ms: raw.base_delay_ms,
        };
        let has_top = top.action.is_some() || top.matches.is_some() || top.base_delay_ms.is_some();
        let raw_rules: Vec<(String, RawRule)> = match raw.rules {
            Some(_) if has_top => {
                return Err(err("rules", "a top-level action/match and `rules` cannot be combined".into()))
            }
            Some(list) => list.into_iter().enumerate().map(|(i, r)| (format!("rules[{i}]"), r)).collect(),
            None if top.action.is_some() => vec![(String::new(), top)],
            None => return Err(err("action", "no rule: give `action` (and `match`), or a `rules` list".into())),
        };
        if raw_rules.is_empty() {
            return Err(err("rules", "the list is empty".into()));
        }
        if raw_rules.len() > abi::MAX_RULES as usize {
            return Err(err("rules", format!("{} rules; at most {} are supported", raw_rules.len(), abi::MAX_RULES)));
        }
        let rules = raw_rules.into_iter().map(|(field, r)| rule(path, field, r)).collect::<Result<Vec<_>, _>>()?;

        let fq = raw.fq.unwrap_or_default();
        let max_delay = rules.iter().map(Rule::max_delay_ms).fold(0.0, f64::max);
        let fq = FqConfig {
            install: fq.install.unwrap_or(true),
            flow_limit: positive(path, "fq.flowLimit", fq.flow_limit.unwrap_or(DEFAULT_FLOW_LIMIT))?,
            limit: positive(path, "fq.limit", fq.limit.unwrap_or(DEFAULT_LIMIT))?,
            horizon_ms: (max_delay.ceil() as u32 + 1000).max(10_000),
        };
        Ok(Config { interface: raw.out_if, rules, fq, tc_attach: raw.tc_attach.unwrap_or_default() })
    }

    /// Whether any rule delays packets, so that an `fq` root qdisc is needed.
    pub fn needs_fq(&self) -> bool {
        self.rules.iter().any(Rule::delays)
    }
}

fn positive(path: &Path, field: &str, v: u32) -> Result<u32, InputError> {
    if v == 0 {
        return Err(InputError::in_file(path, field, "must be at least 1"));
    }
    Ok(v)
}

/// A delay in ms: finite, not negative.
fn delay(path: &Path, field: String, v: Option<f64>, default: Option<f64>) -> Result<f64, InputError> {
    let v = v.or(default).ok_or_else(|| InputError::in_file(path, &field, "missing"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(InputError::in_file(path, field, format!("{v} is not a delay in ms (0 or more)")));
    }
    Ok(v)
}

fn rule(path: &Path, field: String, raw: RawRule) -> Result<Rule, InputError> {
    let at = |name: &str| if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
    let action = raw.action.ok_or_else(|| InputError::in_file(path, at("action"), "missing (drop, jitter or reorder)"))?;
    let m = raw.matches.unwrap_or_default();
    let percent = m.percent.unwrap_or(100.0);
    if !(0.0..=100.0).contains(&percent) {
        return Err(InputError::in_file(path, at("match.percent"), format!("{percent} is not between 0 and 100")));
    }
    let protocol = m.protocol.unwrap_or(Protocol::Ip);
    let port = match (m.port, protocol) {
        (None | Some(0), _) => None,
        (Some(p), Protocol::Tcp | Protocol::Udp) => Some(p),
        (Some(_), Protocol::Ip) => {
            return Err(InputError::in_file(path, at("match.port"), "a port needs `protocol: tcp` or `udp`"))
        }
    };
    let base_delay_ms = delay(path, at("baseDelayMs"), raw.base_delay_ms, Some(0.0))?;
    let effect = match action {
        Action::Drop => Effect::Drop,
        Action::Jitter => {
            let j = raw.jitter.ok_or_else(|| InputError::in_file(path, at("jitter"), "missing for action jitter"))?;
            let min_ms = delay(path, at("jitter.minDelayMs"), j.min_delay_ms, None)?;
            let max_ms = delay(path, at("jitter.maxDelayMs"), j.max_delay_ms, None)?;
            if max_ms < min_ms {
                return Err(InputError::in_file(
                    path,
                    at("jitter.maxDelayMs"),
                    format!("{max_ms} is below minDelayMs {min_ms}"),
                ));
            }
            Effect::Jitter { min_ms, max_ms, keep_order: j.keep_order.unwrap_or(true) }
        }
        Action::Reorder => {
            let r = raw.reorder.ok_or_else(|| InputError::in_file(path, at("reorder"), "missing for action reorder"))?;
            let delay_ms = delay(path, at("reorder.delayMs"), r.delay_ms, None)?;
            if delay_ms == 0.0 {
                return Err(InputError::in_file(path, at("reorder.delayMs"), "must be above 0 to reorder anything"));
            }
            Effect::Reorder { delay_ms }
        }
    };
    let rule = Rule { field: field.clone(), protocol, port, percent, base_delay_ms, effect };
    if rule.max_delay_ms() > MAX_DELAY_MS {
        return Err(InputError::in_file(
            path,
            if field.is_empty() { "action".to_string() } else { field },
            format!("delays up to {} ms; at most {MAX_DELAY_MS} ms are supported", rule.max_delay_ms()),
        ));
    }
    Ok(rule)
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
            "outIf: eth1\naction: jitter\nmatch:\n  percent: 50\n  protocol: udp\n  port: 5000\njitter:\n  minDelayMs: 10\n  maxDelayMs: 30\nreorder:\n  delayMs: 20\n",
        )
        .unwrap();
        assert_eq!(c.interface.as_deref(), Some("eth1"));
        assert_eq!(c.rules.len(), 1);
        let r = &c.rules[0];
        assert_eq!(r.name(), "(top level)");
        assert_eq!(r.effect, Effect::Jitter { min_ms: 10.0, max_ms: 30.0, keep_order: true });
        let a = r.abi();
        assert_eq!((a.action, a.flags, a.port, a.protocol), (abi::ACTION_JITTER, abi::FLAG_KEEP_ORDER, 5000, 17));
        assert_eq!((a.min_ns, a.span_ns, a.base_ns), (10_000_000, 20_000_000, 0));
        assert_eq!(a.chance, 1 << 31);
        assert!(c.needs_fq());
        assert_eq!(c.fq.horizon_ms, 10_000);
        assert_eq!(c.tc_attach, TcAttach::Auto);
    }

    #[test]
    fn rules_list_and_drop_only() {
        let c = parse(
            "outIf: x\nrules:\n  - action: drop\n    match: {percent: 1, protocol: ip}\n  - action: reorder\n    match: {protocol: tcp, port: 80}\n    reorder: {delayMs: 40000}\n    baseDelayMs: 5\n",
        )
        .unwrap();
        assert_eq!(c.rules[0].abi().chance, (0.01f64 * 4294967296.0).round() as u64);
        assert_eq!(c.rules[1].abi().chance, abi::CHANCE_ALL);
        assert_eq!(c.rules[1].max_delay_ms(), 40_005.0);
        assert_eq!(c.fq.horizon_ms, 41_005);
        let drop_only = parse("action: drop\nmatch: {percent: 10}\n").unwrap();
        assert!(!drop_only.needs_fq());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("action: jitter\njitter: {minDelayMs: 30, maxDelayMs: 10}\n").unwrap_err();
        assert_eq!(e.field, "jitter.maxDelayMs");
        let e = parse("action: drop\nmatch: {percent: 101}\n").unwrap_err();
        assert_eq!(e.field, "match.percent");
        let e = parse("action: drop\nmatch: {protocol: ip, port: 80}\n").unwrap_err();
        assert_eq!(e.field, "match.port");
        let e = parse("rules:\n  - action: reorder\n").unwrap_err();
        assert_eq!(e.field, "rules[0].reorder");
        let e = parse("action: shake\n").unwrap_err();
        assert!(e.to_string().contains("test.yml"), "{e}");
        let e = parse("action: drop\nmatch: {prot: udp}\n").unwrap_err();
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = parse("action: jitter\njitter: {minDelayMs: 1, maxDelayMs: 70000}\n").unwrap_err();
        assert!(e.reason.contains("at most"), "{e}");
        let e = parse("action: drop\nrules: []\n").unwrap_err();
        assert_eq!(e.field, "rules");
        let e = parse("outIf: x\n").unwrap_err();
        assert_eq!(e.field, "action");
    }
}
