//! The qdiscs jittergen changes, through rtnetlink (no `tc` binary needed, so the loader works
//! in a minimal VM guest too), each behind a guard that puts things back on drop — on a normal
//! exit, on an error path and during a panic's unwind (not after SIGKILL: qdiscs are not BPF
//! links, nothing reclaims them when the process dies).
//!
//! * [`RootFq`]: the `fq` root qdisc that honours the departure times the program sets. It
//!   replaces the interface's root qdisc and restores it afterwards: a kernel default (handle
//!   `0:`, e.g. `noqueue` on veth, `mq`/`pfifo_fast` on NICs) by deleting the root again, a
//!   classless qdisc by creating it again with the kind, handle and options it was dumped with.
//!   A classful root (htb, prio, ...) is refused: replacing it would destroy its classes and
//!   filters, which cannot be restored.
//! * [`ClsactGuard`]: remembers whether the interface had a `clsact` qdisc before a netlink TC
//!   attach created one, and deletes it afterwards only if it did not.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::config::FqConfig;
use crate::state::{self, Owner};

const RTM_NEWQDISC: u16 = 36;
const RTM_DELQDISC: u16 = 37;
const RTM_GETQDISC: u16 = 38;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_REPLACE: u16 = 0x100;
const NLM_F_CREATE: u16 = 0x400;
const TCA_KIND: u16 = 1;
const TCA_OPTIONS: u16 = 2;
const TC_H_ROOT: u32 = 0xffff_ffff;
/// Parent of `clsact` (and `ingress`): `TC_H_CLSACT` = `TC_H_INGRESS`.
const TC_H_CLSACT: u32 = 0xffff_fff1;
const CLSACT_HANDLE: u32 = 0xffff_0000;

// fq's attributes (`enum` in <linux/pkt_sched.h>).
const TCA_FQ_PLIMIT: u16 = 1;
const TCA_FQ_FLOW_PLIMIT: u16 = 2;
const TCA_FQ_ORPHAN_MASK: u16 = 10;
const TCA_FQ_HORIZON: u16 = 14;
const TCA_FQ_HORIZON_DROP: u16 = 15;

/// Hash buckets fq uses for packets without a connected socket (forwarded ones, and the
/// delayed packets the program gives a flow of their own). fq's default is 1023; more buckets
/// make it rarer that two unrelated flows share one and wait for each other.
const FQ_ORPHAN_MASK: u32 = 0xffff;

/// Root qdisc kinds without classes: replacing one loses nothing that cannot be recreated.
const CLASSLESS: &[&str] = &[
    "noqueue", "pfifo", "bfifo", "pfifo_fast", "pfifo_head_drop", "fq", "fq_codel", "fq_pie", "sfq", "codel", "pie",
    "cake", "red", "choke", "sfb", "netem", "tbf",
];

/// One qdisc as the kernel dumped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qdisc {
    pub ifindex: u32,
    pub handle: u32,
    pub parent: u32,
    pub kind: String,
    /// The raw `TCA_OPTIONS` payload, to create it again exactly.
    pub options: Option<Vec<u8>>,
}

impl Qdisc {
    /// `fq 8001:` style, as `tc` prints it.
    pub fn describe(&self) -> String {
        format!("{} {:x}:", self.kind, self.handle >> 16)
    }
}

/// A route netlink socket with a running sequence number.
struct Netlink {
    fd: OwnedFd,
    seq: u32,
}

fn push_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len().next_multiple_of(4), 0);
}

/// `struct tcmsg`: family, pad, ifindex, handle, parent, info.
fn tcmsg(ifindex: u32, handle: u32, parent: u32) -> Vec<u8> {
    let mut b = vec![0u8; 4];
    b.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    b.extend_from_slice(&handle.to_ne_bytes());
    b.extend_from_slice(&parent.to_ne_bytes());
    b.extend_from_slice(&0u32.to_ne_bytes());
    b
}

/// Walks the attributes in `buf`: (type without flag bits, payload).
fn attrs(mut buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    std::iter::from_fn(move || {
        if buf.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([buf[0], buf[1]]) as usize;
        let kind = u16::from_ne_bytes([buf[2], buf[3]]) & 0x3fff;
        if len < 4 || len > buf.len() {
            return None;
        }
        let payload = &buf[4..len];
        buf = &buf[len.next_multiple_of(4).min(buf.len())..];
        Some((kind, payload))
    })
}

impl Netlink {
    fn open() -> Result<Netlink> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if fd < 0 {
            return Err(io::Error::last_os_error()).context("opening a route netlink socket");
        }
        // SAFETY: a new fd that nothing else owns.
        Ok(Netlink { fd: unsafe { OwnedFd::from_raw_fd(fd) }, seq: 1 })
    }

    fn send(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<u32> {
        self.seq += 1;
        let mut msg = Vec::with_capacity(16 + body.len());
        msg.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
        msg.extend_from_slice(&kind.to_ne_bytes());
        msg.extend_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(body);
        // SAFETY: sending a buffer we own; the kernel is the default destination of the socket.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error()).context("netlink send");
        }
        Ok(self.seq)
    }

    /// Receives the replies to request `seq` and hands each message (type, payload) to `f`
    /// until the kernel acknowledges (or a dump ends). An error reply becomes an `io::Error`.
    fn replies(&mut self, seq: u32, mut f: impl FnMut(u16, &[u8])) -> Result<()> {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: receiving into a buffer we own, of the stated size.
            let n = unsafe { libc::recv(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e).context("netlink recv");
            }
            let mut rest = &buf[..n as usize];
            while rest.len() >= 16 {
                let len = u32::from_ne_bytes(rest[0..4].try_into().unwrap()) as usize;
                let kind = u16::from_ne_bytes(rest[4..6].try_into().unwrap());
                let msg_seq = u32::from_ne_bytes(rest[8..12].try_into().unwrap());
                if len < 16 || len > rest.len() {
                    bail!("malformed netlink reply");
                }
                let payload = &rest[16..len];
                rest = &rest[len.next_multiple_of(4).min(rest.len())..];
                if msg_seq != seq {
                    continue;
                }
                match kind {
                    NLMSG_DONE => return Ok(()),
                    NLMSG_ERROR => {
                        let code = i32::from_ne_bytes(payload[0..4].try_into().unwrap());
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(io::Error::from_raw_os_error(-code).into());
                    }
                    _ => f(kind, payload),
                }
            }
        }
    }

    fn request(&mut self, kind: u16, flags: u16, body: &[u8]) -> Result<()> {
        let seq = self.send(kind, flags | NLM_F_ACK, body)?;
        self.replies(seq, |_, _| {})
    }

    fn qdiscs(&mut self, ifindex: u32) -> Result<Vec<Qdisc>> {
        let seq = self.send(RTM_GETQDISC, NLM_F_DUMP, &tcmsg(ifindex, 0, 0))?;
        let mut found = Vec::new();
        self.replies(seq, |kind, payload| {
            if kind != RTM_NEWQDISC || payload.len() < 20 {
                return;
            }
            let word = |o: usize| u32::from_ne_bytes(payload[o..o + 4].try_into().unwrap());
            let mut q = Qdisc { ifindex: word(4), handle: word(8), parent: word(12), kind: String::new(), options: None };
            for (t, v) in attrs(&payload[20..]) {
                match t {
                    TCA_KIND => q.kind = String::from_utf8_lossy(v).trim_end_matches('\0').to_string(),
                    TCA_OPTIONS => q.options = Some(v.to_vec()),
                    _ => {}
                }
            }
            if q.ifindex == ifindex {
                found.push(q);
            }
        })?;
        Ok(found)
    }
}

/// The qdiscs of interface `ifindex` (in the calling thread's network namespace).
pub fn qdiscs(ifindex: u32) -> Result<Vec<Qdisc>> {
    Netlink::open()?.qdiscs(ifindex)
}

/// The root qdisc of `ifindex`, if the kernel reports one.
pub fn root_qdisc(ifindex: u32) -> Result<Option<Qdisc>> {
    Ok(qdiscs(ifindex)?.into_iter().find(|q| q.parent == TC_H_ROOT))
}

/// An `fq` root qdisc installed by us; the previous root comes back on drop (or [`RootFq::restore`]).
#[derive(Debug)]
pub struct RootFq {
    ifindex: u32,
    previous: Option<Qdisc>,
    restored: bool,
    record: PathBuf,
}

impl RootFq {
    /// Replaces the root qdisc of `ifindex` with `fq` configured by `cfg`.
    pub fn install(ifindex: u32, cfg: &FqConfig) -> Result<RootFq> {
        let mut nl = Netlink::open()?;
        let previous = nl.qdiscs(ifindex)?.into_iter().find(|q| q.parent == TC_H_ROOT);
        if let Some(p) = &previous {
            if p.handle != 0 && !CLASSLESS.contains(&p.kind.as_str()) {
                bail!(
                    "the root qdisc is {} and may have classes that replacing it would destroy; remove it, or set `fq.install: false` and provide fq yourself",
                    p.describe()
                );
            }
        }
        let mut opts = Vec::new();
        push_attr(&mut opts, TCA_FQ_PLIMIT, &cfg.limit.to_ne_bytes());
        push_attr(&mut opts, TCA_FQ_FLOW_PLIMIT, &cfg.flow_limit.to_ne_bytes());
        push_attr(&mut opts, TCA_FQ_ORPHAN_MASK, &FQ_ORPHAN_MASK.to_ne_bytes());
        push_attr(&mut opts, TCA_FQ_HORIZON, &(cfg.horizon_ms.saturating_mul(1000)).to_ne_bytes());
        // Beyond the horizon fq drops rather than caps: the program never schedules that far,
        // so a drop there means a departure time set by someone else, which is theirs to see.
        push_attr(&mut opts, TCA_FQ_HORIZON_DROP, &[1u8]);
        let mut body = tcmsg(ifindex, 0, TC_H_ROOT);
        push_attr(&mut body, TCA_KIND, b"fq\0");
        push_attr(&mut body, TCA_OPTIONS, &opts);
        // Recorded before the change: a SIGKILL right after it leaves the record for `harness clean`.
        let record = Change::record(ifindex, ChangeKind::Root { previous: previous.clone() })?;
        let result = nl.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, &body);
        if result.is_err() {
            let _ = std::fs::remove_file(&record);
        }
        match result {
            Ok(()) => Ok(RootFq { ifindex, previous, restored: false, record }),
            Err(e) if e.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error) == Some(libc::ENOENT) => {
                bail!("this kernel has no `fq` qdisc (sch_fq), which delays need; the root qdisc was left unchanged")
            }
            Err(e) => Err(e).context("installing the fq root qdisc"),
        }
    }

    /// What was there before, as `tc` names it.
    pub fn previous(&self) -> String {
        match &self.previous {
            Some(q) => q.describe(),
            None => "none".into(),
        }
    }

    /// Puts the previous root qdisc back.
    pub fn restore(mut self) -> Result<()> {
        self.restored = true;
        Self::put_back(self.ifindex, self.previous.as_ref())?;
        let _ = std::fs::remove_file(&self.record);
        Ok(())
    }

    fn put_back(ifindex: u32, previous: Option<&Qdisc>) -> Result<()> {
        let mut nl = Netlink::open()?;
        match previous {
            // A kernel default: deleting our root makes the kernel attach its default again.
            None | Some(Qdisc { handle: 0, .. }) => {
                let body = tcmsg(ifindex, 0, TC_H_ROOT);
                match nl.request(RTM_DELQDISC, 0, &body) {
                    // Gone already (the interface went away with its qdiscs).
                    Err(e) if is_errno(&e, &[libc::ENOENT, libc::ENODEV, libc::EINVAL]) => Ok(()),
                    r => r.context("deleting the fq root qdisc"),
                }
            }
            Some(q) => {
                let mut body = tcmsg(ifindex, q.handle, TC_H_ROOT);
                push_attr(&mut body, TCA_KIND, format!("{}\0", q.kind).as_bytes());
                if let Some(o) = &q.options {
                    push_attr(&mut body, TCA_OPTIONS, o);
                }
                nl.request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, &body)
                    .with_context(|| format!("restoring the root qdisc {}", q.describe()))
            }
        }
    }
}

impl Drop for RootFq {
    fn drop(&mut self) {
        if !self.restored {
            match Self::put_back(self.ifindex, self.previous.as_ref()) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&self.record);
                }
                Err(e) => eprintln!("warning: {e:#}"),
            }
        }
    }
}

fn is_errno(e: &anyhow::Error, codes: &[i32]) -> bool {
    e.downcast_ref::<io::Error>().and_then(io::Error::raw_os_error).is_some_and(|c| codes.contains(&c))
}

/// Whether `ifindex` has a `clsact` qdisc.
pub fn has_clsact(ifindex: u32) -> Result<bool> {
    Ok(qdiscs(ifindex)?.iter().any(|q| q.parent == TC_H_CLSACT && q.kind == "clsact"))
}

/// Deletes the `clsact` qdisc of `ifindex` afterwards if it was not there when created.
#[derive(Debug)]
pub struct ClsactGuard {
    ifindex: u32,
    existed: bool,
    done: bool,
    /// The record of a clsact we are about to add (none if one existed).
    record: Option<PathBuf>,
}

impl ClsactGuard {
    /// `netlink`: the attach adds a clsact that outlives a SIGKILL, so it is recorded (a TCX
    /// link needs none).
    pub fn new(ifindex: u32, netlink: bool) -> Result<ClsactGuard> {
        let existed = has_clsact(ifindex)?;
        let record = if existed || !netlink { None } else { Some(Change::record(ifindex, ChangeKind::Clsact)?) };
        Ok(ClsactGuard { ifindex, existed, done: false, record })
    }

    /// Removes a `clsact` qdisc that appeared since [`ClsactGuard::new`] (call after detaching).
    pub fn finish(mut self) -> Result<()> {
        self.done = true;
        self.cleanup()
    }

    fn cleanup(&self) -> Result<()> {
        if !self.existed {
            delete_clsact(self.ifindex)?;
        }
        if let Some(r) = &self.record {
            let _ = std::fs::remove_file(r);
        }
        Ok(())
    }
}

fn delete_clsact(ifindex: u32) -> Result<bool> {
    if !has_clsact(ifindex)? {
        return Ok(false);
    }
    let mut body = tcmsg(ifindex, CLSACT_HANDLE, TC_H_CLSACT);
    push_attr(&mut body, TCA_KIND, b"clsact\0");
    match Netlink::open()?.request(RTM_DELQDISC, 0, &body) {
        Err(e) if is_errno(&e, &[libc::ENOENT, libc::ENODEV]) => Ok(false),
        r => r.context("deleting the clsact qdisc").map(|()| true),
    }
}

/// A qdisc change that is not a BPF link and so outlives a SIGKILL, recorded in
/// `/run/bpf-eval/qdisc/` for `harness clean` ([`Change::undo`]) while it is in place.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Change {
    pub owner: Owner,
    pub ifindex: u32,
    /// Checked before undoing: a new interface may have the old one's index.
    pub ifname: String,
    pub change: ChangeKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    /// The root qdisc was replaced by fq; `previous` is what was there.
    Root { previous: Option<Qdisc> },
    /// A clsact qdisc was added.
    Clsact,
}

/// The directory of [`Change`] records.
pub const RECORDS: &str = "qdisc";

impl Change {
    fn record(ifindex: u32, change: ChangeKind) -> Result<PathBuf> {
        let what = match change {
            ChangeKind::Root { .. } => "root",
            ChangeKind::Clsact => "clsact",
        };
        let c = Change { owner: Owner::current(), ifindex, ifname: ifname(ifindex).unwrap_or_default(), change };
        let path = state::dir(RECORDS)?.join(format!("{ifindex}-{what}-{}.json", c.owner.pid));
        state::write(&path, &c)?;
        Ok(path)
    }

    /// Undoes the change if the interface is still the one it was made on; says what it did
    /// (`None`: nothing left to undo).
    pub fn undo(&self) -> Result<Option<String>> {
        if ifname(self.ifindex).as_deref() != Some(self.ifname.as_str()) {
            return Ok(None);
        }
        match &self.change {
            ChangeKind::Root { previous } => {
                let now = root_qdisc(self.ifindex)?;
                if now.as_ref().map(|q| q.kind.as_str()) != Some("fq") {
                    return Ok(None);
                }
                RootFq::put_back(self.ifindex, previous.as_ref())?;
                let was = previous.as_ref().map_or_else(|| "the kernel default".to_string(), Qdisc::describe);
                Ok(Some(format!("fq root qdisc of {} (restored {was})", self.ifname)))
            }
            ChangeKind::Clsact => {
                Ok(delete_clsact(self.ifindex)?.then(|| format!("clsact qdisc of {} (added by pid {})", self.ifname, self.owner.pid)))
            }
        }
    }
}

fn ifname(ifindex: u32) -> Option<String> {
    let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
    let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
    if p.is_null() {
        return None;
    }
    // SAFETY: on success buf holds a NUL-terminated name.
    Some(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned())
}

impl Drop for ClsactGuard {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.cleanup() {
                eprintln!("warning: {e:#}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_round_trip() {
        let mut b = Vec::new();
        push_attr(&mut b, TCA_KIND, b"fq\0");
        push_attr(&mut b, TCA_FQ_PLIMIT, &7u32.to_ne_bytes());
        let got: Vec<(u16, Vec<u8>)> = attrs(&b).map(|(t, v)| (t, v.to_vec())).collect();
        assert_eq!(got, vec![(TCA_KIND, b"fq\0".to_vec()), (TCA_FQ_PLIMIT, 7u32.to_ne_bytes().to_vec())]);
        assert_eq!(b.len(), 8 + 8);
    }

    #[test]
    fn loopback_has_a_root_qdisc() {
        // Reads only: every interface has a root qdisc (noqueue on lo).
        let q = root_qdisc(1).unwrap().expect("lo has a root qdisc");
        assert_eq!(q.parent, TC_H_ROOT);
        assert!(!q.kind.is_empty());
    }
}
