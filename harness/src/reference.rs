//! Reference programs measured next to the libraries. xdp-filter (xdp-tools) runs as the real
//! tool: loaded by its own command line into a namespace of ours, unloaded on drop.

use std::net::IpAddr;
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::bpf::Prog;
use crate::netns::NetNs;

/// Where xdp-filter pins its maps (in the host's bpffs, whichever namespace it runs in).
pub const XDP_FILTER_PINS: &str = "/sys/fs/bpf/xdp-filter";

/// Runs xdp-filter in the network namespace `ns` only. Not through `ip netns exec`: that also
/// makes a mount namespace without the host's bpffs, where xdp-filter keeps its state.
fn xdp_filter(ns: &str, args: &[&str]) -> Result<()> {
    let out = Command::new("nsenter")
        .arg(format!("--net=/var/run/netns/{ns}"))
        .arg("xdp-filter")
        .args(args)
        // This kernel refuses libxdp's dispatcher program; load xdp-filter's program directly.
        .env("LIBXDP_SKIP_DISPATCHER", "1")
        .output()
        .context("running xdp-filter (apt: xdp-tools)")?;
    if !out.status.success() {
        bail!("xdp-filter {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

/// Best effort, for cleanup paths.
pub fn unload_xdp_filter(ns: &str) {
    let _ = xdp_filter(ns, &["unload", "--all"]);
}

/// xdp-filter attached to `iface` in native mode, default allow, denying `blocked` sources.
pub struct XdpFilter<'a> {
    ns: &'a NetNs,
    iface: String,
}

impl<'a> XdpFilter<'a> {
    pub fn load(ns: &'a NetNs, iface: &str, blocked: &[IpAddr]) -> Result<XdpFilter<'a>> {
        xdp_filter(ns.name(), &["load", "--mode", "native", "--policy", "allow", iface])?;
        let guard = XdpFilter { ns, iface: iface.into() };
        for addr in blocked {
            xdp_filter(ns.name(), &["ip", &addr.to_string(), "--mode", "src"])?;
        }
        Ok(guard)
    }

    /// The program xdp-filter attached.
    pub fn prog(&self) -> Result<Prog> {
        let xdp = self.ns.xdp(&self.iface)?.context("xdp-filter attached no program")?;
        Prog::from_id(*xdp.prog_ids.first().context("no program id")?)
    }
}

impl Drop for XdpFilter<'_> {
    fn drop(&mut self) {
        let _ = xdp_filter(self.ns.name(), &["unload", &self.iface]);
    }
}
