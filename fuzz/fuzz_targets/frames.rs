//! The frame model: the reference models read arbitrary bytes without panicking; a frame spec
//! survives a YAML round trip and builds the same frame again; and a well-formed IP frame built
//! from a spec is judged by the source address the spec gave it.
#![no_main]

use std::path::Path;

use harness::frames::{FrameSpec, ETHERTYPE_QINQ, ETHERTYPE_VLAN};
use harness::scenario::{model, Verdict};
use libfuzzer_sys::fuzz_target;

fn rules(config: &str) -> bpfeval_shared::packetfilter::Ruleset {
    bpfeval_shared::packetfilter::Config::parse(config, Path::new("fuzz.yml")).unwrap().rules
}

fuzz_target!(|data: &[u8]| {
    model(&rules("rules: {}\n"), data);
    let lb = bpfeval_shared::loadbalancer::Config::parse(
        "tcp_port: 80\nbackends: [\"02:00:00:00:00:0b\", \"02:00:00:00:00:0c\"]\n",
        Path::new("fuzz.yml"),
    )
    .unwrap();
    harness::usecases::loadbalancer::bed::Model::new(&lb).unwrap().classify(data);

    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(spec) = yaml_serde::from_str::<FrameSpec>(text) else { return };
    let again: FrameSpec = yaml_serde::from_str(&yaml_serde::to_string(&spec).unwrap()).unwrap();
    assert_eq!(spec, again, "YAML round trip");
    let Ok(frame) = spec.build() else { return };
    assert_eq!(again.build().unwrap(), frame, "the round-tripped spec builds another frame");

    // Untouched headers: no override, no cut, at most two tags the model knows.
    let plain = spec.ethertype.is_none()
        && spec.truncate.is_none()
        && spec.vlan.len() <= 2
        && spec.vlan.iter().all(|t| t.tpid == ETHERTYPE_VLAN || t.tpid == ETHERTYPE_QINQ);
    let src = match (&spec.ipv4, &spec.ipv6) {
        (Some(ip), None) if plain && ip.version.is_none() && ip.ihl.is_none() => ip.src.to_string(),
        (None, Some(ip)) if plain && ip.version.is_none() => ip.src.to_string(),
        _ => return,
    };
    let family = if src.contains(':') { "ipv6" } else { "ipv4" };
    let (verdict, rule) = model(&rules(&format!("rules:\n  {family}:\n    block: [\"{src}\"]\n")), &frame);
    assert_eq!(verdict, Verdict::DropBlock, "the model does not see source {src} in {}", harness::frames::hex(&frame));
    assert_eq!(rule.as_deref(), Some(format!("rules.{family}.block[0]").as_str()));
});
