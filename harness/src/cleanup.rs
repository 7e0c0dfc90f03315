//! What a SIGKILL can leave behind, found and removed (`harness clean`). A BPF link dies with
//! the last fd, so a killed process leaves only what is not a link, or not ours to hold:
//!
//! * network namespaces `bpfeval-*` whose creator is gone, with the processes inside;
//! * in the host namespace, XDP programs attached through netlink (RedBPF has no bpf_link) and
//!   cls_bpf filters (jittergen's netlink attach) of ours that no process holds any more;
//! * qdiscs jittergen changed, recorded in `/run/bpf-eval/qdisc/` by their owner before the
//!   change (`bpfeval_shared::jittergen::qdisc::Change`), put back when the owner is gone;
//! * bpffs pins: xdp-filter's (the reference) and any `bpfeval*`; xdp-filter's lock, left by an
//!   xdp-filter killed with its namespace, which fails every later xdp-filter;
//! * qemu guests (`BPFEVAL-GUEST` on their command line) whose harness is gone.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use bpfeval_shared::jittergen::qdisc::{Change, RECORDS};
use bpfeval_shared::state;
use serde_json::Value;

use crate::bpf::{self, Prog};
use crate::netns::{self, XdpAttachment};

/// Kernel names of the programs the harness attaches; the implementations' are named after
/// their use case ([`crate::usecases::NAMES`]).
pub const HARNESS_PROGRAMS: &[&str] = &["empty_pass", "empty_drop", "lb_peer_pass"];

/// The mark of our qemu guests' kernel command line (see `vm.rs`).
const GUEST_MARK: &str = "BPFEVAL-GUEST=";

/// Removes everything stale; returns what it removed, by name.
pub fn all_stale() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    removed.extend(stale_guests());
    removed.extend(stale_namespaces()?);
    removed.extend(orphaned_attachments()?);
    removed.extend(recorded_qdiscs()?);
    removed.extend(pins()?);
    removed.extend(crate::reference::remove_stale_lock());
    Ok(removed)
}

/// Pids of all processes but this one.
fn other_pids() -> Vec<u32> {
    let me = std::process::id();
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter(|p| *p != me)
                .collect()
        })
        .unwrap_or_default()
}

fn stale_guests() -> Vec<String> {
    let mut removed = Vec::new();
    for pid in other_pids() {
        let Some(cmd) = state::cmdline(pid) else {
            continue;
        };
        // qemu dies with its harness thread (PR_SET_PDEATHSIG); one that was reparented to init
        // outlived it anyway.
        if cmd.starts_with("qemu-system") && cmd.contains(GUEST_MARK) && state::parent_pid(pid) == Some(1)
        {
            // SAFETY: kill(2) on a qemu process of ours.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            removed.push(format!("qemu guest (pid {pid})"));
        }
    }
    removed
}

fn stale_namespaces() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    // Processes inside a stale namespace (implementations, references) go first, so that their
    // BPF links close with their file descriptors; the xdp-filter reference is unloaded so
    // that its pins go too.
    for ns in netns::list_ours()? {
        if !netns::is_stale(&ns) {
            continue;
        }
        let out = Command::new("ip").args(["netns", "pids", &ns]).output()?;
        for pid in String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse::<i32>().ok())
        {
            // SAFETY: kill(2) on a pid that `ip netns pids` reports inside our namespace.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            removed.push(format!("process {pid} in {ns}"));
        }
        // A killed xdp-filter left its lock, and the unload would fail on it.
        removed.extend(crate::reference::remove_stale_lock());
        crate::reference::unload_xdp_filter(&ns);
    }
    removed.extend(
        netns::cleanup_stale()?
            .into_iter()
            .map(|n| format!("network namespace {n}")),
    );
    Ok(removed)
}

/// Ids of the programs some process (not this one) holds an fd of, directly or through a link.
fn held_programs() -> BTreeSet<u32> {
    other_pids()
        .into_iter()
        .flat_map(|p| bpf::prog_ids_of_pid(p).unwrap_or_default())
        .collect()
}

/// The name of program `id` if it is one of ours.
fn our_program(id: u32) -> Option<String> {
    let name = Prog::from_id(id).ok()?.info().ok()?.name;
    crate::usecases::NAMES
        .iter()
        .chain(HARNESS_PROGRAMS)
        .any(|n| bpf::name_matches(&name, n))
        .then_some(name)
}

/// XDP programs and cls_bpf filters of ours in the host namespace that nobody holds: a killed
/// loader attached them through netlink. Programs held by a live process are its business.
fn orphaned_attachments() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let links: Value = serde_json::from_str(&netns::run_cmd("ip", &["-d", "-j", "link", "show"])?)
        .context("parsing `ip -j link show`")?;
    let mut held: Option<BTreeSet<u32>> = None;
    for link in links.as_array().into_iter().flatten() {
        let Some(ifname) = link["ifname"].as_str() else {
            continue;
        };
        if let Some(xdp) = XdpAttachment::from_link(link) {
            for id in xdp.prog_ids {
                let Some(name) = our_program(id) else {
                    continue;
                };
                if held.get_or_insert_with(held_programs).contains(&id) {
                    continue;
                }
                // Driver, generic or offloaded: each mode is detached by its own keyword.
                for kw in ["xdpdrv", "xdpgeneric", "xdpoffload"] {
                    let _ = netns::run_cmd("ip", &["link", "set", "dev", ifname, kw, "off"]);
                }
                removed.push(format!("XDP program {name} (id {id}) on {ifname}"));
            }
        }
        for dir in ["ingress", "egress"] {
            let Ok(out) = netns::run_cmd("tc", &["-j", "filter", "show", "dev", ifname, dir])
            else {
                continue;
            };
            let filters: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
            for f in filters.as_array().into_iter().flatten() {
                // tc prints the handle as a hex string ("0x1").
                let handle = f["options"]["handle"]
                    .as_str()
                    .map(String::from)
                    .or_else(|| f["options"]["handle"].as_u64().map(|h| format!("{h:#x}")));
                let (Some(id), Some(pref), Some(handle)) = (
                    f["options"]["prog"]["id"].as_u64(),
                    f["pref"].as_u64(),
                    handle,
                ) else {
                    continue;
                };
                let id = id as u32;
                let Some(name) = our_program(id) else {
                    continue;
                };
                if held.get_or_insert_with(held_programs).contains(&id) {
                    continue;
                }
                let pref = pref.to_string();
                let del = ["filter", "del", "dev", ifname, dir, "pref", &pref, "handle", &handle, "bpf"];
                // A concurrent clean may have taken it (or its clsact) first.
                if netns::run_cmd("tc", &del).is_ok() {
                    removed.push(format!("TC {dir} filter {name} (id {id}, pref {pref}) on {ifname}"));
                }
            }
        }
    }
    Ok(removed)
}

/// Qdisc changes whose owner is gone: undone, and the record deleted.
fn recorded_qdiscs() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let dir = Path::new(state::STATE_DIR).join(RECORDS);
    for (path, change) in state::read_all::<Change>(&dir) {
        match change {
            Ok(c) if c.owner.alive() => continue,
            Ok(c) => {
                if let Some(what) = c
                    .undo()
                    .with_context(|| format!("undoing {}", path.display()))?
                {
                    removed.push(what);
                }
            }
            Err(e) => eprintln!("warning: {}: {e:#} (removed)", path.display()),
        }
        fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(removed)
}

/// xdp-filter pins its maps globally; if its namespace vanished before it was unloaded, they
/// stay behind. Our own pins are named `bpfeval*`.
fn pins() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let mut paths = vec![Path::new(crate::reference::XDP_FILTER_PINS).to_path_buf()];
    if let Ok(d) = fs::read_dir("/sys/fs/bpf") {
        paths.extend(
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("bpfeval"))
                .map(|e| e.path()),
        );
    }
    for p in paths {
        if p.is_dir() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        } else if p.exists() {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        } else {
            continue;
        }
        removed.push(format!("pin {}", p.display()));
    }
    Ok(removed)
}

/// What a run can leave on `ifaces` (host namespace: XDP, qdiscs, TC filters) and in bpffs
/// (`bpfeval*` pins), one line each: equal before and after means nothing was left.
pub fn leftovers(ifaces: &[&str]) -> Vec<String> {
    let json = |program: &str, args: &[&str]| -> Value {
        netns::run_cmd(program, args).ok().and_then(|o| serde_json::from_str(&o).ok()).unwrap_or(Value::Null)
    };
    let mut s = Vec::new();
    for iface in ifaces {
        let link = json("ip", &["-d", "-j", "link", "show", "dev", iface]);
        s.push(format!("{iface} xdp: {}", link[0].get("xdp").cloned().unwrap_or(Value::Null)));
        for q in json("tc", &["-j", "qdisc", "show", "dev", iface]).as_array().into_iter().flatten() {
            s.push(format!("{iface} qdisc {} {} parent {}", q["kind"], q["handle"], q["parent"]));
        }
        for dir in ["ingress", "egress"] {
            if let Ok(out) = netns::run_cmd("tc", &["-j", "filter", "show", "dev", iface, dir]) {
                s.push(format!("{iface} filters {dir}: {}", out.trim()));
            }
        }
    }
    for e in fs::read_dir("/sys/fs/bpf").into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("bpfeval") {
            s.push(format!("pin {name}"));
        }
    }
    s
}
