//! Reference programs measured next to the libraries. xdp-filter (xdp-tools) runs as the real
//! tool: loaded by its own command line into a namespace of ours, unloaded on drop.

use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::bpf::Prog;
use crate::netns::NetNs;

/// Where xdp-filter pins its maps (in the host's bpffs, whichever namespace it runs in).
pub const XDP_FILTER_PINS: &str = "/sys/fs/bpf/xdp-filter";

/// xdp-filter's lock (xdp-tools' RUNDIR): every command takes it and removes it on exit, and
/// fails while it exists, whoever holds it. A SIGKILLed xdp-filter (`harness clean` kills what
/// runs in a dead run's namespace) leaves it behind, and every later xdp-filter fails with
/// "Unable to read PID from lockfile" until it is removed.
pub const XDP_FILTER_LOCK: &str = "/run/xdp-filter.lck";

/// Removes xdp-filter's lock if no xdp-filter holds it: its pid is gone (or now another
/// program's), or it is empty and older than a holder between creating and writing it could be.
/// Returns what it removed.
pub fn remove_stale_lock() -> Option<String> {
    let path = Path::new(XDP_FILTER_LOCK);
    let text = std::fs::read_to_string(path).ok()?;
    let holder = text.trim().parse::<u32>().ok();
    let stale = match holder {
        Some(pid) => !is_xdp_filter(pid),
        None => path.metadata().and_then(|m| m.modified()).ok()?.elapsed().map_or(false, |a| a > Duration::from_secs(5)),
    };
    if !stale || std::fs::remove_file(path).is_err() {
        return None;
    }
    Some(match holder {
        Some(pid) => format!("xdp-filter lock {XDP_FILTER_LOCK} of dead pid {pid}"),
        None => format!("empty xdp-filter lock {XDP_FILTER_LOCK}"),
    })
}

/// Whether `pid` is a live (not zombie) xdp-filter, by the name the kernel gave it at exec.
fn is_xdp_filter(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    // `pid (comm) state ...`; comm may hold parentheses: the state follows the last ')'.
    let (Some(a), Some(b)) = (stat.find('('), stat.rfind(')')) else {
        return false;
    };
    &stat[a + 1..b] == "xdp-filter" && stat[b + 1..].split_whitespace().next() != Some("Z")
}

/// Runs xdp-filter in the network namespace `ns` only. Not through `ip netns exec`: that also
/// makes a mount namespace without the host's bpffs, where xdp-filter keeps its state.
/// One at a time in this process; another process's xdp-filter holding the lock is waited for
/// (bounded), a stale lock removed.
fn xdp_filter(ns: &str, args: &[&str]) -> Result<()> {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut tries = 0;
    loop {
        if let Some(what) = remove_stale_lock() {
            eprintln!("warning: removed the stale {what}");
        }
        let out = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/{ns}"))
            .arg("xdp-filter")
            .args(args)
            // This kernel refuses libxdp's dispatcher program; load xdp-filter's program directly.
            .env("LIBXDP_SKIP_DISPATCHER", "1")
            .output()
            .context("running xdp-filter (apt: xdp-tools)")?;
        if out.status.success() {
            return Ok(());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        tries += 1;
        // Nothing was done: another xdp-filter held the lock (it may be gone already).
        if tries < 100 && (err.contains("lockfile") || err.contains("program lock")) {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let held = std::fs::read_to_string(XDP_FILTER_LOCK)
            .map(|pid| format!(" ({XDP_FILTER_LOCK} still held by live pid {} after {tries} tries)", pid.trim()))
            .unwrap_or_default();
        bail!("xdp-filter {}: {}{held}", args.join(" "), err.trim());
    }
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
