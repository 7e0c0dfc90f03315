//! The loadbalancer `config.yml`. The thesis' file works unchanged:
//!
//! ```yaml
//! listenInterface: eth0
//! tcp_port: 8080
//! backends:
//!   - "08:00:27:aa:bb:01"
//!   - "08:00:27:aa:bb:02"
//! ```
//! Extensions (all optional):
//!
//! ```yaml
//! vips: [10.0.0.100, "2001:db8::100"]   # balance only TCP to these; none = any address
//! tcp_ports: [80, 443]                  # more ports (with or instead of tcp_port)
//! backends:
//!   - 10.0.0.11                         # by IP: MAC from the neighbour table
//!   - {mac: "08:00:27:aa:bb:02", weight: 3}
//!   - {ip: "2001:db8::12", weight: 2}
//! ```
//! Unknown keys are errors, so a typo never silently changes what is balanced.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use serde::Deserialize;
use yaml_serde::Value;

use super::abi;
use crate::InputError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(rename = "listenInterface")]
    listen_interface: Option<String>,
    tcp_port: Option<Value>,
    tcp_ports: Option<Vec<Value>>,
    vips: Option<Vec<Value>>,
    backends: Vec<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBackend {
    mac: Option<String>,
    ip: Option<String>,
    weight: Option<Value>,
}

/// How a backend is named in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServerAddr {
    Mac([u8; 6]),
    /// Resolved to a MAC through the neighbour table of the listen interface.
    Ip(IpAddr),
}

/// One entry of `backends`, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub addr: ServerAddr,
    pub weight: u32,
    /// Config path, `backends[2]`.
    pub field: String,
}

impl ServerSpec {
    /// The backend's identity: its MAC or IP as written canonically. The Maglev permutation of
    /// a backend is derived from it, so a restart, a reordered list or an unrelated change to
    /// the list keeps the backend's table entries.
    pub fn id(&self) -> String {
        match self.addr {
            ServerAddr::Mac(mac) => format_mac(&mac),
            ServerAddr::Ip(ip) => ip.to_string(),
        }
    }
}

/// A backend with its MAC known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    pub id: String,
    pub mac: [u8; 6],
    pub weight: u32,
    pub field: String,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub interface: Option<String>,
    /// Empty: TCP to any address on a balanced port is balanced (the thesis' behaviour).
    pub vips: Vec<IpAddr>,
    pub ports: Vec<u16>,
    pub servers: Vec<ServerSpec>,
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
        let err = |field: &str, reason: String| InputError::in_file(path, field, reason);

        if raw.listen_interface.as_deref() == Some("") {
            return Err(err("listenInterface", "must not be empty".into()));
        }

        let mut ports = Vec::new();
        let listed = raw.tcp_port.iter().map(|v| ("tcp_port".to_string(), v));
        let more = raw.tcp_ports.iter().flatten().enumerate().map(|(i, v)| (format!("tcp_ports[{i}]"), v));
        let mut seen_ports: HashMap<u16, String> = HashMap::new();
        for (field, value) in listed.chain(more) {
            let port = value
                .as_u64()
                .filter(|p| (1..=65535).contains(p))
                .ok_or_else(|| err(&field, format!("expected a TCP port 1-65535, found {}", show(value))))?
                as u16;
            if let Some(first) = seen_ports.insert(port, field.clone()) {
                return Err(err(&field, format!("port {port} is already listed as {first}")));
            }
            ports.push(port);
        }
        if ports.is_empty() {
            return Err(err("tcp_port", "no port to balance: give tcp_port or tcp_ports".into()));
        }
        if ports.len() > abi::MAX_PORTS as usize {
            return Err(err("tcp_ports", format!("at most {} ports", abi::MAX_PORTS)));
        }

        let mut vips = Vec::new();
        let mut seen_vips: HashMap<IpAddr, String> = HashMap::new();
        for (i, value) in raw.vips.iter().flatten().enumerate() {
            let field = format!("vips[{i}]");
            let vip = value
                .as_str()
                .and_then(|s| s.parse::<IpAddr>().ok())
                .ok_or_else(|| err(&field, format!("expected an IPv4 or IPv6 address, found {}", show(value))))?;
            if vip.is_unspecified() || vip.is_multicast() {
                return Err(err(&field, format!("{vip} is not a unicast address")));
            }
            if let Some(first) = seen_vips.insert(vip, field.clone()) {
                return Err(err(&field, format!("duplicate of {first}")));
            }
            vips.push(vip);
        }
        for (family, is) in [("IPv4", true), ("IPv6", false)] {
            if vips.iter().filter(|v| v.is_ipv4() == is).count() > abi::MAX_VIPS as usize {
                return Err(err("vips", format!("at most {} {family} VIPs", abi::MAX_VIPS)));
            }
        }

        let mut servers = Vec::new();
        let mut seen: HashMap<ServerAddr, String> = HashMap::new();
        for (i, value) in raw.backends.iter().enumerate() {
            let field = format!("backends[{i}]");
            let spec = parse_backend(value, &field).map_err(|(f, r)| err(&f, r))?;
            if let Some(first) = seen.insert(spec.addr, field.clone()) {
                return Err(err(&field, format!("{} is already listed as {first}", spec.id())));
            }
            servers.push(spec);
        }
        if servers.len() > abi::MAX_BACKENDS as usize {
            return Err(err("backends", format!("at most {} backends", abi::MAX_BACKENDS)));
        }
        Ok(Config { interface: raw.listen_interface, vips, ports, servers })
    }

    /// The backends with their MACs: IP backends are looked up in the neighbour table of
    /// `ifindex`. A backend that is not there, or two entries with one MAC, is bad input.
    pub fn resolve(&self, ifindex: u32, path: &Path) -> Result<Vec<Server>, InputError> {
        let mut out: Vec<Server> = Vec::with_capacity(self.servers.len());
        for s in &self.servers {
            let mac = match s.addr {
                ServerAddr::Mac(mac) => mac,
                ServerAddr::Ip(ip) => match super::neigh::lookup(ifindex, ip) {
                    Ok(Some(mac)) => mac,
                    Ok(None) => {
                        return Err(InputError::in_file(
                            path,
                            &s.field,
                            format!(
                                "{ip} has no usable entry in the neighbour table of the listen interface \
                                 (reach it once, e.g. ping it, or give its MAC)"
                            ),
                        ))
                    }
                    Err(e) => {
                        return Err(InputError::in_file(path, &s.field, format!("reading the neighbour table: {e}")))
                    }
                },
            };
            if let Some(other) = out.iter().find(|o| o.mac == mac) {
                return Err(InputError::in_file(
                    path,
                    &s.field,
                    format!("has the MAC {} of {} ({})", format_mac(&mac), other.field, other.id),
                ));
            }
            out.push(Server { id: s.id(), mac, weight: s.weight, field: s.field.clone() });
        }
        Ok(out)
    }
}

fn parse_backend(value: &Value, field: &str) -> Result<ServerSpec, (String, String)> {
    let addr_of = |text: &str, f: &str| -> Result<ServerAddr, (String, String)> {
        if let Ok(ip) = text.parse::<IpAddr>() {
            if ip.is_unspecified() || ip.is_multicast() {
                return Err((f.into(), format!("{ip} is not a unicast address")));
            }
            return Ok(ServerAddr::Ip(ip));
        }
        parse_mac(text).map(ServerAddr::Mac).map_err(|r| (f.to_string(), r))
    };
    match value {
        Value::String(text) => Ok(ServerSpec { addr: addr_of(text, field)?, weight: 1, field: field.into() }),
        Value::Mapping(_) => {
            let raw: RawBackend =
                yaml_serde::from_value(value.clone()).map_err(|e| (field.to_string(), e.to_string()))?;
            let addr = match (&raw.mac, &raw.ip) {
                (Some(mac), None) => ServerAddr::Mac(parse_mac(mac).map_err(|r| (format!("{field}.mac"), r))?),
                (None, Some(ip)) => match addr_of(ip, &format!("{field}.ip"))? {
                    a @ ServerAddr::Ip(_) => a,
                    ServerAddr::Mac(_) => return Err((format!("{field}.ip"), format!("`{ip}` is not an IP address"))),
                },
                _ => return Err((field.into(), "give exactly one of `mac` and `ip`".into())),
            };
            let weight = match &raw.weight {
                None => 1,
                Some(w) => w.as_u64().filter(|w| (1..=u64::from(abi::MAX_WEIGHT)).contains(w)).ok_or_else(|| {
                    (format!("{field}.weight"), format!("expected a weight 1-{}, found {}", abi::MAX_WEIGHT, show(w)))
                })? as u32,
            };
            Ok(ServerSpec { addr, weight, field: field.into() })
        }
        other => {
            Err((field.into(), format!("expected a MAC, an IP address or {{mac|ip, weight}}, found {}", show(other))))
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff` (or with `-`); multicast and all-zero MACs are refused.
pub fn parse_mac(text: &str) -> Result<[u8; 6], String> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let bad = || format!("`{text}` is neither a MAC address (aa:bb:cc:dd:ee:ff) nor an IP address");
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(format!("`{text}` is not a unicast MAC address"));
    }
    Ok(mac)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

fn show(v: &Value) -> String {
    yaml_serde::to_string(v).map(|s| s.trim().to_string()).unwrap_or_else(|_| format!("{v:?}"))
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
            "listenInterface: eth1\ntcp_port: 8080\nbackends:\n  - \"08:00:27:AA:BB:01\"\n  - 08:00:27:aa:bb:02\n",
        )
        .unwrap();
        assert_eq!(c.interface.as_deref(), Some("eth1"));
        assert_eq!(c.ports, vec![8080]);
        assert!(c.vips.is_empty());
        assert_eq!(c.servers.len(), 2);
        assert_eq!(c.servers[0].id(), "08:00:27:aa:bb:01");
        assert_eq!(c.servers[1].weight, 1);
        let s = c.resolve(1, Path::new("test.yml")).unwrap();
        assert_eq!(s[1].mac, [8, 0, 0x27, 0xaa, 0xbb, 2]);
    }

    #[test]
    fn extensions_parse() {
        let c = parse(
            "tcp_port: 80\ntcp_ports: [443, 8080]\nvips: [10.0.0.100, \"2001:db8::100\"]\nbackends:\n  - 10.0.0.11\n  - {mac: \"02:00:00:00:00:02\", weight: 3}\n  - {ip: \"2001:db8::12\", weight: 2}\n",
        )
        .unwrap();
        assert_eq!(c.ports, vec![80, 443, 8080]);
        assert_eq!(c.vips.len(), 2);
        assert_eq!(c.servers[0].addr, ServerAddr::Ip("10.0.0.11".parse().unwrap()));
        assert_eq!(c.servers[1].weight, 3);
        assert_eq!(c.servers[2].field, "backends[2]");
        assert!(parse("tcp_ports: [80]\nbackends: []\n").unwrap().servers.is_empty());
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse("tcp_port: 80\nbackends: [\"02:00:00:00:00:01\", \"02:00:00:00:00:zz\"]\n").unwrap_err();
        assert_eq!(e.field, "backends[1]");
        let e = parse("tcp_port: 80\nbackends: [\"03:00:00:00:00:01\"]\n").unwrap_err();
        assert!(e.reason.contains("unicast"), "{e}");
        let e = parse("tcp_port: 70000\nbackends: []\n").unwrap_err();
        assert_eq!(e.field, "tcp_port");
        let e = parse("tcp_port: 80\ntcp_ports: [80]\nbackends: []\n").unwrap_err();
        assert_eq!(e.field, "tcp_ports[0]");
        let e = parse("backends: []\n").unwrap_err();
        assert!(e.reason.contains("no port"), "{e}");
        let e = parse("tcp_port: 80\nvips: [10.0.0.1, 10.0.0.300]\nbackends: []\n").unwrap_err();
        assert_eq!(e.field, "vips[1]");
        let e = parse("tcp_port: 80\nbackends: [{mac: \"02:00:00:00:00:01\", weight: 0}]\n").unwrap_err();
        assert_eq!(e.field, "backends[0].weight");
        let e = parse("tcp_port: 80\nbackends: [{mac: \"02:00:00:00:00:01\", ip: 10.0.0.1}]\n").unwrap_err();
        assert!(e.reason.contains("exactly one"), "{e}");
        let e = parse("tcp_port: 80\nbackends: [10.0.0.1, 10.0.0.1]\n").unwrap_err();
        assert!(e.reason.contains("already listed as backends[0]"), "{e}");
        let e = parse("tcp_port: 80\nbakends: []\n").unwrap_err();
        assert!(e.reason.contains("unknown field"), "{e}");
        let e = parse("tcp_port: 80\nbackends: [{mac: \"02:00:00:00:00:01\", wieght: 2}]\n").unwrap_err();
        assert_eq!(e.field, "backends[0]");
        assert!(e.to_string().contains("test.yml"), "{e}");
    }
}
