//! Scenario files: `scenarios/packetfilter/vectors.yaml`, the packetfilter conformance vectors,
//! and a reference model of the packetfilter policy the vectors are checked against.
//!
//! ```yaml
//! cases:
//!   - name: single-ipv4-block
//!     description: ...                 # optional
//!     config:                          # the thesis config.yml, inline, without `interface`
//!       rules:
//!         ipv4: {default: allow, block: [10.0.0.1]}
//!     packets:
//!       - name: from-blocked
//!         frame: {ipv4: {src: 10.0.0.1}}   # a frames::FrameSpec
//!         expect: drop                     # pass | drop (the XDP verdict)
//!         verdict: drop_block              # the one `verdicts` counter that goes up
//!         rule: rules.ipv4.block[0]        # for pass_allow / drop_block: the rule counted
//! ```
//! A packet with `kernel_refuses: true` is shorter than an Ethernet header. Whether the kernel
//! runs a program on it (5.10 does, newer kernels refuse with EINVAL) or on a frame over a page
//! depends on the kernel: the conformance run asks it ([`crate::conformance::KernelLimits`]). A
//! frame it refuses must be refused alike and move no counter; one it runs is checked like any.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use bpfeval_shared::packetfilter::{abi, Config, Family, ListKind, Ruleset};
use serde::{Deserialize, Serialize};
use yaml_serde::Value;

use crate::frames::{self, FrameSpec};

/// Reads a scenario file and hands its text to `parse`; errors name the file.
pub fn load_with<T>(path: &Path, parse: impl FnOnce(&str) -> Result<T>) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse(&text).with_context(|| path.display().to_string())
}

/// `scenarios/packetfilter/vectors.yaml` in the workspace.
pub fn packetfilter_vectors_path() -> PathBuf {
    crate::process::workspace_dir().join("scenarios").join("packetfilter").join("vectors.yaml")
}

/// The XDP outcome of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    Pass,
    Drop,
}

impl Expect {
    /// The XDP return code (`XDP_PASS` = 2, `XDP_DROP` = 1).
    pub fn xdp_retval(self) -> u32 {
        match self {
            Expect::Pass => crate::bpf::XDP_PASS,
            Expect::Drop => crate::bpf::XDP_DROP,
        }
    }
}

/// One of the six verdict counters of the `verdicts` map (names as in stats lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    PassNonIp,
    PassAllow,
    PassDefault,
    DropBlock,
    DropDefault,
    DropMalformed,
}

impl Verdict {
    pub const ALL: [Verdict; 6] = [
        Verdict::PassNonIp,
        Verdict::PassAllow,
        Verdict::PassDefault,
        Verdict::DropBlock,
        Verdict::DropDefault,
        Verdict::DropMalformed,
    ];

    /// Index in the `verdicts` map (`abi::VERDICT_*`).
    pub fn index(self) -> u32 {
        match self {
            Verdict::PassNonIp => abi::VERDICT_PASS_NON_IP,
            Verdict::PassAllow => abi::VERDICT_PASS_ALLOW,
            Verdict::PassDefault => abi::VERDICT_PASS_DEFAULT,
            Verdict::DropBlock => abi::VERDICT_DROP_BLOCK,
            Verdict::DropDefault => abi::VERDICT_DROP_DEFAULT,
            Verdict::DropMalformed => abi::VERDICT_DROP_MALFORMED,
        }
    }

    /// The counter name (`pass_non_ip`, ...), as in `abi::VERDICT_NAMES`.
    pub fn name(self) -> &'static str {
        abi::VERDICT_NAMES[self.index() as usize]
    }

    /// Whether the packet goes on (pass) or not (drop).
    pub fn expect(self) -> Expect {
        match self {
            Verdict::PassNonIp | Verdict::PassAllow | Verdict::PassDefault => Expect::Pass,
            _ => Expect::Drop,
        }
    }

    /// Whether the verdict comes from a rule (and so names one).
    pub fn has_rule(self) -> bool {
        matches!(self, Verdict::PassAllow | Verdict::DropBlock)
    }
}

/// The whole vectors file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vectors {
    pub cases: Vec<Case>,
}

/// One configuration and the packets checked against it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The thesis `config.yml` (with `rules:` at the top), without `rules.interface`.
    pub config: Value,
    pub packets: Vec<PacketVector>,
}

/// One frame and what the filter must do with it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PacketVector {
    pub name: String,
    pub frame: FrameSpec,
    pub expect: Expect,
    pub verdict: Verdict,
    /// The rule (`rules.ipv4.block[2]`) counted in `rule_hits`, for `pass_allow` and `drop_block`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// A kernel may refuse to run a program on this frame (see the module docs).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernel_refuses: bool,
}

impl Vectors {
    /// Reads and checks a vectors file (see [`Vectors::check`]).
    pub fn load(path: &Path) -> Result<Vectors> {
        load_with(path, Vectors::parse)
    }

    /// Parses and checks the text of a vectors file.
    pub fn parse(text: &str) -> Result<Vectors> {
        let v: Vectors = yaml_serde::from_str(text).context("parsing")?;
        v.check().context("checking")?;
        Ok(v)
    }

    /// The packetfilter vectors of the workspace.
    pub fn packetfilter() -> Result<Vectors> {
        Vectors::load(&packetfilter_vectors_path())
    }

    /// Number of packet vectors over all cases.
    pub fn packet_count(&self) -> usize {
        self.cases.iter().map(|c| c.packets.len()).sum()
    }

    /// Consistency: unique names, configs that the shared parser accepts, frames that build,
    /// `expect` agreeing with `verdict`, `rule` given exactly for rule verdicts, and every
    /// expectation agreeing with the reference [`model`].
    pub fn check(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for case in &self.cases {
            ensure!(names.insert(case.name.as_str()), "duplicate case name `{}`", case.name);
            let config = case.parsed_config().with_context(|| format!("case `{}`", case.name))?;
            ensure!(config.interface.is_none(), "case `{}`: leave `rules.interface` out", case.name);
            let mut pnames = std::collections::HashSet::new();
            for p in &case.packets {
                let at = || format!("case `{}`, packet `{}`", case.name, p.name);
                ensure!(pnames.insert(p.name.as_str()), "{}: duplicate packet name", at());
                ensure!(p.verdict.expect() == p.expect, "{}: `expect` contradicts verdict {}", at(), p.verdict.name());
                ensure!(
                    p.verdict.has_rule() == p.rule.is_some(),
                    "{}: `rule` is required for pass_allow/drop_block and only there",
                    at()
                );
                let frame = p.frame.build().with_context(at)?;
                crate::conformance::check_kernel_refuses(p.kernel_refuses, &frame).with_context(at)?;
                let (verdict, rule) = model(&config.rules, &frame);
                if verdict != p.verdict || rule != p.rule {
                    bail!(
                        "{}: the vector says {} ({:?}) but the reference model says {} ({:?})\n{}",
                        at(),
                        p.verdict.name(),
                        p.rule,
                        verdict.name(),
                        rule,
                        frames::hex(&frame)
                    );
                }
            }
        }
        Ok(())
    }
}

impl Case {
    /// The config as the shared parser reads it.
    pub fn parsed_config(&self) -> Result<Config> {
        Ok(Config::parse(&self.config_yaml(None)?, Path::new("<vectors>"))?)
    }

    /// The config as YAML text, with `rules.interface` set to `iface` if given.
    pub fn config_yaml(&self, iface: Option<&str>) -> Result<String> {
        let mut config = self.config.clone();
        if let Some(iface) = iface {
            let rules = config
                .get_mut("rules")
                .and_then(Value::as_mapping_mut)
                .with_context(|| format!("case `{}`: config has no `rules` mapping", self.name))?;
            rules.insert(Value::from("interface"), Value::from(iface));
        }
        Ok(yaml_serde::to_string(&config)?)
    }
}

/// The packetfilter policy, as a plain function of a config and a frame: the verdict counter
/// that must go up and, for rule verdicts, the rule (`rules.ipv4.block[0]`) counted.
///
/// Frame < 14 bytes, a cut-off VLAN tag or a third tag, an IPv4 header shorter than 20 bytes,
/// not version 4, IHL < 5 or IHL*4 bytes missing, an IPv6 header shorter than 40 bytes or not
/// version 6: `drop_malformed`. Other ethertypes: `pass_non_ip`. IP: the block list first, then
/// the allow list, each longest-prefix; no match: the family's default.
pub fn model(rules: &Ruleset, frame: &[u8]) -> (Verdict, Option<String>) {
    const MALFORMED: (Verdict, Option<String>) = (Verdict::DropMalformed, None);
    if frame.len() < 14 {
        return MALFORMED;
    }
    let be16 = |at: usize| u16::from_be_bytes([frame[at], frame[at + 1]]);
    let mut ethertype = be16(12);
    let mut off = 14;
    let mut tags = 0;
    while ethertype == frames::ETHERTYPE_VLAN || ethertype == frames::ETHERTYPE_QINQ {
        if tags == 2 || frame.len() < off + 4 {
            return MALFORMED;
        }
        ethertype = be16(off + 2);
        off += 4;
        tags += 1;
    }
    let l3 = &frame[off..];
    let src: IpAddr = match ethertype {
        frames::ETHERTYPE_IPV4 => {
            if l3.len() < 20 || l3[0] >> 4 != 4 {
                return MALFORMED;
            }
            let ihl = usize::from(l3[0] & 0x0f);
            if ihl < 5 || l3.len() < ihl * 4 {
                return MALFORMED;
            }
            IpAddr::from(<[u8; 4]>::try_from(&l3[12..16]).unwrap())
        }
        frames::ETHERTYPE_IPV6 => {
            if l3.len() < 40 || l3[0] >> 4 != 6 {
                return MALFORMED;
            }
            IpAddr::from(<[u8; 16]>::try_from(&l3[8..24]).unwrap())
        }
        _ => return (Verdict::PassNonIp, None),
    };
    let family = if src.is_ipv4() { Family::V4 } else { Family::V6 };
    for (list, verdict) in [(ListKind::Block, Verdict::DropBlock), (ListKind::Allow, Verdict::PassAllow)] {
        let best = rules
            .rules
            .iter()
            .filter(|r| r.family == family && r.list == list && r.net.contains(&src))
            .max_by_key(|r| r.net.prefix_len());
        if let Some(rule) = best {
            return (verdict, Some(rule.field.clone()));
        }
    }
    if rules.default_drop(family) {
        (Verdict::DropDefault, None)
    } else {
        (Verdict::PassDefault, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdict_names_follow_the_abi() {
        for v in Verdict::ALL {
            let yaml = yaml_serde::to_string(&v).unwrap();
            assert_eq!(yaml.trim(), v.name());
        }
    }

    #[test]
    fn the_workspace_vectors_are_consistent() {
        let v = Vectors::packetfilter().unwrap_or_else(|e| panic!("{e:#}"));
        assert!(v.cases.len() >= 10, "only {} cases", v.cases.len());
    }

    #[test]
    fn a_wrong_expectation_is_caught() {
        let text = r#"
cases:
  - name: x
    config: {rules: {ipv4: {block: [10.0.0.1]}}}
    packets:
      - {name: p, frame: {ipv4: {src: 10.0.0.1}}, expect: pass, verdict: pass_default}
"#;
        let v: Vectors = yaml_serde::from_str(text).unwrap();
        let e = v.check().unwrap_err();
        assert!(format!("{e:#}").contains("reference model says drop_block"), "{e:#}");
    }

    #[test]
    fn config_gets_the_interface() {
        let case = Case {
            name: "x".into(),
            description: None,
            config: yaml_serde::from_str("rules: {ipv4: {default: block}}").unwrap(),
            packets: vec![],
        };
        let text = case.config_yaml(Some("veth0")).unwrap();
        let c = Config::parse(&text, Path::new("x")).unwrap();
        assert_eq!(c.interface.as_deref(), Some("veth0"));
    }
}
