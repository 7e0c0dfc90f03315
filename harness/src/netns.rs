//! Test networks that clean up after themselves.
//!
//! * [`NetNs`]: a network namespace `bpfeval-<prefix>-<pid>-<n>` made with `ip netns add`, with
//!   loopback up, deleted on drop (also during a panic's unwind). Anything inside it (veths,
//!   XDP programs attached to them) goes with it.
//! * [`VethPair`]: a veth pair between two namespaces (or both ends in one), with MACs and
//!   optional addresses, IPv6 disabled by default so the link stays silent.
//! * [`NetNs::run_in`] / [`NetNs::spawn_in`]: run code on a thread that joined the namespace
//!   (`setns(CLONE_NEWNET)`), so sockets it opens (raw `AF_PACKET` channels too) live inside.
//! * [`cleanup_stale`] / [`cleanup_all`]: remove namespaces a crashed or killed run left behind
//!   (for a later `harness clean`).
//!
//! Every name the harness creates starts with [`NS_PREFIX`].

use std::fs;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;

use anyhow::{bail, Context, Result};
use serde_json::Value;

/// Prefix of every namespace the harness creates.
pub const NS_PREFIX: &str = "bpfeval-";

/// Where `ip netns` keeps its namespace handles.
pub const NETNS_RUN_DIR: &str = "/var/run/netns";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Runs a command, returning stdout; the error carries the command line and its stderr.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<String> {
    let out =
        Command::new(program).args(args).output().with_context(|| format!("running `{program}` (is it installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A network namespace owned by this process; deleted on drop.
#[derive(Debug)]
pub struct NetNs {
    name: String,
}

impl NetNs {
    /// Creates `bpfeval-<prefix>-<pid>-<n>` and brings its loopback up.
    pub fn new(prefix: &str) -> Result<NetNs> {
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            bail!("namespace prefix `{prefix}` must be non-empty ASCII letters, digits, - or _");
        }
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let name = format!("{NS_PREFIX}{prefix}-{}-{n}", std::process::id());
        run_cmd("ip", &["netns", "add", &name])?;
        // From here on, drop deletes it even if the rest fails.
        let ns = NetNs { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace handle `ip netns` bind-mounted (`/var/run/netns/<name>`).
    pub fn path(&self) -> PathBuf {
        PathBuf::from(NETNS_RUN_DIR).join(&self.name)
    }

    /// `ip -n <ns> <args>`.
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// `ip netns exec <ns> <program> <args>`.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String> {
        let mut all = vec!["netns", "exec", self.name.as_str(), program];
        all.extend_from_slice(args);
        run_cmd("ip", &all)
    }

    /// Sets a sysctl inside the namespace (`net.*` keys are per namespace).
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        self.exec("sysctl", &["-q", "-w", &format!("{key}={value}")])?;
        Ok(())
    }

    /// `ip -j -d link show dev <ifname>` as JSON.
    pub fn link(&self, ifname: &str) -> Result<Value> {
        let text = self.ip(&["-j", "-d", "link", "show", "dev", ifname])?;
        let v: Value = serde_json::from_str(&text).with_context(|| format!("parsing `ip -j link` output: {text}"))?;
        v.get(0).cloned().with_context(|| format!("no link {ifname} in {}", self.name))
    }

    /// Interface index of `ifname` inside the namespace.
    pub fn ifindex(&self, ifname: &str) -> Result<u32> {
        let link = self.link(ifname)?;
        link["ifindex"].as_u64().map(|i| i as u32).with_context(|| format!("no ifindex in {link}"))
    }

    /// The XDP program(s) attached to `ifname`, or `None` when nothing is attached.
    pub fn xdp(&self, ifname: &str) -> Result<Option<XdpAttachment>> {
        Ok(XdpAttachment::from_link(&self.link(ifname)?))
    }

    /// Joins the namespace with the *calling thread* (`setns(CLONE_NEWNET)`). Only for threads
    /// the caller made for this purpose: the thread stays in the namespace until it ends.
    pub fn enter_current_thread(&self) -> Result<()> {
        enter(&self.path())
    }

    /// Runs `f` on a new thread inside the namespace and returns its result; sockets `f` opens
    /// live in the namespace. A panic in `f` is propagated.
    pub fn run_in<F, T>(&self, f: F) -> Result<T>
    where
        F: FnOnce() -> T + Send,
        T: Send,
    {
        let path = self.path();
        std::thread::scope(|s| {
            let h = s.spawn(move || -> Result<T> {
                enter(&path)?;
                Ok(f())
            });
            match h.join() {
                Ok(r) => r,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        })
    }

    /// Like [`NetNs::run_in`] without waiting: `f` runs on a named thread inside the namespace.
    /// The namespace must outlive the thread (join it before dropping the `NetNs`).
    pub fn spawn_in<F, T>(&self, thread_name: &str, f: F) -> Result<JoinHandle<Result<T>>>
    where
        F: FnOnce() -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path();
        std::thread::Builder::new()
            .name(thread_name.to_string())
            .spawn(move || {
                enter(&path)?;
                f()
            })
            .context("spawning a thread")
    }
}

fn enter(path: &std::path::Path) -> Result<()> {
    let f = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns on a namespace fd; affects only the calling thread.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error()).with_context(|| format!("setns({})", path.display()));
    }
    Ok(())
}

impl Drop for NetNs {
    fn drop(&mut self) {
        if let Err(e) = run_cmd("ip", &["netns", "delete", &self.name]) {
            eprintln!("warning: could not delete network namespace {}: {e:#}", self.name);
        }
    }
}

/// What `ip link` reports about XDP on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdpAttachment {
    /// 1 = native (driver), 2 = generic (skb), 3 = offloaded, 4 = several.
    pub mode: u32,
    /// Ids of the attached programs.
    pub prog_ids: Vec<u32>,
}

impl XdpAttachment {
    pub const MODE_NATIVE: u32 = 1;
    pub const MODE_SKB: u32 = 2;

    /// Parses the `xdp` object of one `ip -j link` entry.
    pub fn from_link(link: &Value) -> Option<XdpAttachment> {
        let xdp = link.get("xdp")?;
        let mode = xdp["mode"].as_u64().unwrap_or(0) as u32;
        let mut prog_ids: Vec<u32> = xdp["attached"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p["prog"]["id"].as_u64()).map(|i| i as u32).collect())
            .unwrap_or_default();
        if let Some(id) = xdp["prog"]["id"].as_u64() {
            if !prog_ids.contains(&(id as u32)) {
                prog_ids.push(id as u32);
            }
        }
        Some(XdpAttachment { mode, prog_ids })
    }
}

/// One end of a [`VethPair`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VethEnd {
    /// Name of the namespace the end lives in.
    pub ns: String,
    pub ifname: String,
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Addresses with prefix length, as given (`10.0.0.1/24`, `2001:db8::1/64`).
    pub addrs: Vec<String>,
}

impl VethEnd {
    /// The MAC as `aa:bb:cc:dd:ee:ff`.
    pub fn mac_string(&self) -> String {
        format_mac(&self.mac)
    }
}

/// How to make a [`VethPair`].
#[derive(Debug, Clone)]
pub struct VethConfig {
    pub a_name: String,
    pub b_name: String,
    pub a_mac: [u8; 6],
    pub b_mac: [u8; 6],
    pub a_addrs: Vec<String>,
    pub b_addrs: Vec<String>,
    /// Disable IPv6 on both ends before they go up, so the kernel sends nothing by itself
    /// (no router solicitations, DAD or MLD) and every frame on the link is the test's own.
    /// Raw `AF_PACKET` sockets still send and see IPv6 frames. Needs no IPv6 `addrs`.
    pub quiet: bool,
}

impl Default for VethConfig {
    fn default() -> Self {
        VethConfig {
            a_name: "veth-a".into(),
            b_name: "veth-b".into(),
            a_mac: [0x02, 0xbe, 0xef, 0x00, 0x00, 0x0a],
            b_mac: [0x02, 0xbe, 0xef, 0x00, 0x00, 0x0b],
            a_addrs: Vec::new(),
            b_addrs: Vec::new(),
            quiet: true,
        }
    }
}

/// A veth pair; end `a` in one namespace, end `b` in another (or the same). Deleted on drop
/// (and in any case with its namespace).
#[derive(Debug)]
pub struct VethPair {
    pub a: VethEnd,
    pub b: VethEnd,
}

impl VethPair {
    pub fn new(a_ns: &NetNs, b_ns: &NetNs, cfg: &VethConfig) -> Result<VethPair> {
        let (a_mac, b_mac) = (format_mac(&cfg.a_mac), format_mac(&cfg.b_mac));
        a_ns.ip(&[
            "link",
            "add",
            &cfg.a_name,
            "address",
            &a_mac,
            "type",
            "veth",
            "peer",
            "name",
            &cfg.b_name,
            "address",
            &b_mac,
            "netns",
            b_ns.name(),
        ])?;
        let mut pair = VethPair {
            a: VethEnd {
                ns: a_ns.name().into(),
                ifname: cfg.a_name.clone(),
                ifindex: 0,
                mac: cfg.a_mac,
                addrs: vec![],
            },
            b: VethEnd {
                ns: b_ns.name().into(),
                ifname: cfg.b_name.clone(),
                ifindex: 0,
                mac: cfg.b_mac,
                addrs: vec![],
            },
        };
        for (ns, ifname, addrs) in [(a_ns, &cfg.a_name, &cfg.a_addrs), (b_ns, &cfg.b_name, &cfg.b_addrs)] {
            if cfg.quiet {
                ns.sysctl(&format!("net.ipv6.conf.{ifname}.disable_ipv6"), "1")?;
            }
            for addr in addrs {
                if addr.contains(':') {
                    ns.ip(&["addr", "add", addr, "dev", ifname, "nodad"])?;
                } else {
                    ns.ip(&["addr", "add", addr, "dev", ifname])?;
                }
            }
        }
        a_ns.ip(&["link", "set", &cfg.a_name, "up"])?;
        b_ns.ip(&["link", "set", &cfg.b_name, "up"])?;
        pair.a.ifindex = a_ns.ifindex(&cfg.a_name)?;
        pair.b.ifindex = b_ns.ifindex(&cfg.b_name)?;
        pair.a.addrs = cfg.a_addrs.clone();
        pair.b.addrs = cfg.b_addrs.clone();
        Ok(pair)
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Gone already if its namespace went first; nothing to report then.
        let _ = run_cmd("ip", &["-n", &self.a.ns, "link", "del", &self.a.ifname]);
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// Names of all network namespaces with the harness prefix.
pub fn list_ours() -> Result<Vec<String>> {
    let mut names = Vec::new();
    match fs::read_dir(NETNS_RUN_DIR) {
        Ok(dir) => {
            for entry in dir.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(NS_PREFIX) {
                    names.push(name);
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {NETNS_RUN_DIR}")),
    }
    names.sort();
    Ok(names)
}

/// The pid encoded in a harness namespace name (`bpfeval-<prefix>-<pid>-<n>`).
fn creator_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(NS_PREFIX)?;
    let mut parts = rest.rsplitn(3, '-');
    let _n: u32 = parts.next()?.parse().ok()?;
    let pid = parts.next()?.parse().ok()?;
    parts.next()?; // the prefix
    Some(pid)
}

/// Whether a harness namespace was left behind: the process that created it (the pid in its
/// name) is gone, or its name does not follow `bpfeval-<prefix>-<pid>-<n>`.
pub fn is_stale(name: &str) -> bool {
    !creator_pid(name).is_some_and(|pid| PathBuf::from(format!("/proc/{pid}")).exists())
}

/// Deletes harness namespaces whose creating process is gone (a crashed or killed run);
/// namespaces of live harness processes are left alone. Returns the names deleted.
pub fn cleanup_stale() -> Result<Vec<String>> {
    let mut deleted = Vec::new();
    for name in list_ours()? {
        if is_stale(&name) {
            run_cmd("ip", &["netns", "delete", &name])?;
            deleted.push(name);
        }
    }
    Ok(deleted)
}

/// Deletes every harness namespace, including those of running harness processes.
pub fn cleanup_all() -> Result<Vec<String>> {
    let names = list_ours()?;
    for name in &names {
        run_cmd("ip", &["netns", "delete", name])?;
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creator_pid_parses() {
        assert_eq!(creator_pid("bpfeval-conf-aya-1234-7"), Some(1234));
        assert_eq!(creator_pid("bpfeval-x-1-0"), Some(1));
        assert_eq!(creator_pid("bpfeval-1-0"), None);
        assert_eq!(creator_pid("other-x-1-0"), None);
    }

    #[test]
    fn namespace_veth_and_cleanup_on_panic() {
        crate::bpf::check_privileges().unwrap();
        let (name_a, name_b) = {
            let a = NetNs::new("selftest").unwrap();
            let b = NetNs::new("selftest").unwrap();
            let cfg = VethConfig { a_addrs: vec!["10.99.0.1/24".into()], ..Default::default() };
            let pair = VethPair::new(&a, &b, &cfg).unwrap();
            assert_eq!(pair.a.mac_string(), "02:be:ef:00:00:0a");
            assert!(pair.b.ifindex > 0);
            assert!(a.xdp("veth-a").unwrap().is_none());
            // A socket opened by run_in lives in the namespace: it sees the veth.
            let idx = a
                .run_in(|| {
                    let c = std::ffi::CString::new("veth-a").unwrap();
                    // SAFETY: valid C string.
                    unsafe { libc::if_nametoindex(c.as_ptr()) }
                })
                .unwrap();
            assert_eq!(idx, pair.a.ifindex);
            let disabled = a.exec("cat", &["/proc/sys/net/ipv6/conf/veth-a/disable_ipv6"]).unwrap();
            assert_eq!(disabled.trim(), "1");
            (a.name().to_string(), b.name().to_string())
        };
        assert!(!PathBuf::from(NETNS_RUN_DIR).join(&name_a).exists());
        assert!(!PathBuf::from(NETNS_RUN_DIR).join(&name_b).exists());

        // Drop runs while a panic unwinds.
        let mut name = String::new();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let ns = NetNs::new("selftest-panic").unwrap();
            name = ns.name().to_string();
            panic!("deliberate");
        }));
        assert!(r.is_err());
        assert!(!name.is_empty());
        assert!(!PathBuf::from(NETNS_RUN_DIR).join(&name).exists(), "{name} left behind");
    }
}

/// A veth pair in the host namespace, deleted on drop (also when a test fails). There a
/// leftover attachment survives the test (a namespace would take it away with its interfaces),
/// so checks that nothing is left behind attach here.
pub struct HostVeth {
    pub a: String,
    pub b: String,
}

impl HostVeth {
    /// `bfe<tag><pid>a` and `...b`, both up. IFNAMSIZ is 16: keep `tag` to a few characters.
    pub fn new(tag: &str) -> Result<HostVeth> {
        let base = format!("bfe{tag}{}", std::process::id() % 100_000);
        let (a, b) = (format!("{base}a"), format!("{base}b"));
        run_cmd("ip", &["link", "add", &a, "type", "veth", "peer", "name", &b])?;
        let v = HostVeth { a, b };
        for i in [&v.a, &v.b] {
            run_cmd("ip", &["link", "set", "dev", i, "up"])?;
        }
        Ok(v)
    }
}

impl Drop for HostVeth {
    fn drop(&mut self) {
        let _ = run_cmd("ip", &["link", "del", "dev", &self.a]);
    }
}
