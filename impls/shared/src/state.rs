//! Records under `/run/bpf-eval/` of what outlives a SIGKILL: changes that are not BPF links
//! (a replaced root qdisc, an added `clsact`) and the harness's run lock. Each record names its
//! owner by pid *and* start time, so a pid the kernel handed to another process since is not
//! taken for the owner. `harness clean` undoes the records whose owner is gone.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

/// `/run` is a tmpfs: the records vanish with a reboot, as do the things they describe.
pub const STATE_DIR: &str = "/run/bpf-eval";

/// A process, recognisable again later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    pub pid: u32,
    /// Field 22 of `/proc/<pid>/stat` (clock ticks since boot): differs for a reused pid.
    pub start: u64,
    pub cmdline: String,
}

impl Owner {
    pub fn current() -> Owner {
        let pid = std::process::id();
        Owner { pid, start: start_time(pid).unwrap_or(0), cmdline: cmdline(pid).unwrap_or_default() }
    }

    /// Whether this very process still runs (not merely a process with its pid).
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// Start time of `pid` (field 22 of `/proc/<pid>/stat`), `None` if there is no such process.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may hold spaces and parentheses: count from the last ')'.
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(19)?.parse().ok()
}

/// The parent of `pid` (field 4 of `/proc/<pid>/stat`).
pub fn parent_pid(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 1..].split_whitespace().nth(1)?.parse().ok()
}

/// The command line of `pid`, arguments joined by spaces.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a)).collect::<Vec<_>>().join(" "))
}

/// A directory under [`STATE_DIR`], created if missing.
pub fn dir(name: &str) -> Result<PathBuf> {
    let d = Path::new(STATE_DIR).join(name);
    fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// Writes `value` as JSON to `path` atomically (a reader never sees half a record).
pub fn write<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, serde_json::to_vec(value)?).with_context(|| format!("writing {}", tmp.display()))?;
    fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))
}

/// Every record of type `T` in `dir` (records that do not parse are returned as errors).
pub fn read_all<T: for<'de> Deserialize<'de>>(dir: &Path) -> Vec<(PathBuf, Result<T>)> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "json") {
                let r = fs::read(&p).map_err(anyhow::Error::from).and_then(|b| Ok(serde_json::from_slice(&b)?));
                out.push((p, r));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_recognises_itself_and_not_a_reused_pid() {
        let me = Owner::current();
        assert!(me.alive());
        assert!(me.start > 0 && me.cmdline.contains("bpfeval_shared"), "{me:?}");
        assert!(!Owner { start: me.start + 1, ..me.clone() }.alive());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(start_time(pid).is_none());
    }
}
