//! One measuring or testing process tree at a time: `harness run`, `harness lock -- CMD` (what
//! `make test` and `make run` go through) and every test binary (through
//! [`crate::bpf::check_privileges`]) take an exclusive `flock` on [`LOCK_PATH`]. The kernel
//! releases it when the holder dies, however it dies, so a killed run never blocks the next
//! one; the file also holds the holder's pid, start time and command line, for the refusal
//! message and to tell a stale record (pid gone, or reused by another command) from a live one.
//! A process whose ancestor holds the lock runs under it (`make test` -> cargo -> test binary).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use bpfeval_shared::state::{self, Owner};

pub const LOCK_PATH: &str = "/run/bpf-eval/run.lock";

/// [`LOCK_PATH`], or the file `BPF_EVAL_LOCK` names (the lock's own tests, which run under
/// `make test`'s lock, test a private one).
pub fn lock_path() -> String {
    std::env::var("BPF_EVAL_LOCK").unwrap_or_else(|_| LOCK_PATH.to_string())
}

/// Held until dropped (or the process ends).
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn is_ancestor(pid: u32) -> bool {
    let mut p = state::parent_pid(std::process::id());
    for _ in 0..64 {
        match p {
            Some(x) if x == pid => return true,
            Some(x) if x > 1 => p = state::parent_pid(x),
            _ => return false,
        }
    }
    false
}

fn read_record(file: &mut File) -> Option<Owner> {
    let mut text = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

impl Drop for RunLock {
    fn drop(&mut self) {
        // A clean release leaves no record behind, so only a killed holder's is called stale.
        let _ = self._file.set_len(0);
    }
}

/// Takes the lock, or refuses at once naming the holder. `None`: an ancestor holds it.
pub fn acquire() -> Result<Option<RunLock>> {
    state::dir("")?;
    let path = lock_path();
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("opening {path}"))?;
    let previous = read_record(&mut file);
    // SAFETY: flock on an fd this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EWOULDBLOCK) {
            return Err(err).with_context(|| format!("locking {path}"));
        }
        match previous {
            // This process (another thread took it) or an ancestor holds it.
            Some(o) if o.alive() && (o.pid == std::process::id() || is_ancestor(o.pid)) => return Ok(None),
            Some(o) if o.alive() => bail!(
                "another bpf-eval run is in progress: pid {} ({}) holds {path}; wait for it or stop it",
                o.pid,
                o.cmdline
            ),
            Some(o) => bail!(
                "{path} is held, by a process its record does not name (pid {} `{}` is gone): a child that inherited it? see `fuser {path}`",
                o.pid,
                o.cmdline
            ),
            None => bail!("{path} is held by another process (no record yet); see `fuser {path}`"),
        }
    }
    if let Some(o) = previous.filter(|o| o.pid != std::process::id()) {
        // The kernel released the flock of a dead holder: its record is stale.
        let why = match state::cmdline(o.pid) {
            None => "gone".to_string(),
            Some(c) => format!("pid now runs `{c}`"),
        };
        eprintln!("note: took over the stale lock of pid {} (`{}`: {why})", o.pid, o.cmdline);
    }
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(&serde_json::to_vec(&Owner::current())?)?;
    file.flush()?;
    Ok(Some(RunLock { _file: file }))
}

/// Takes the lock for the rest of this process (once; later calls see it held).
static HELD: OnceLock<Option<RunLock>> = OnceLock::new();

pub fn hold_for_process() -> Result<()> {
    // The test threads of one binary all come here: one takes the lock, the others wait for it
    // (without this, a second thread's flock fails on the first one's and finds no record yet).
    static TAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _taking = TAKING.lock().unwrap_or_else(|e| e.into_inner());
    if HELD.get().is_some() {
        return Ok(());
    }
    let lock = acquire()?;
    if lock.is_some() {
        // Statics are never dropped: clear the record at exit, so a clean end is not taken
        // for a killed holder by the next one.
        extern "C" fn clear() {
            if let Some(Some(l)) = HELD.get() {
                let _ = l._file.set_len(0);
            }
        }
        // SAFETY: registering a function that only truncates a file we own.
        unsafe { libc::atexit(clear) };
    }
    let _ = HELD.set(lock);
    Ok(())
}
