//! Implementations as processes: where their binaries are, and a handle on a running one.
//!
//! Binaries live at `<workspace>/target/impls/<usecase>-<lib>` (`make build` puts them there);
//! the environment variable [`IMPLS_DIR_ENV`] (`BPFEVAL_IMPLS_DIR`) points elsewhere. A missing
//! binary is an error that says how to build it: tests must fail, never skip.
//!
//! [`Running`] reads the implementation's stdout JSON lines on a thread (see
//! `impls/shared/src/output.rs`), keeps its stderr for error messages, and on drop stops it
//! (SIGTERM, then SIGKILL after [`Running::KILL_AFTER`]). Should the harness die without
//! dropping it, the implementation gets SIGTERM from the kernel (`PR_SET_PDEATHSIG`) when the
//! thread that spawned it ends: keep a `Running` on the thread that made it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::netns::NetNs;

/// Environment variable that overrides the directory of implementation binaries.
pub const IMPLS_DIR_ENV: &str = "BPFEVAL_IMPLS_DIR";

/// The workspace root (the directory above this crate).
pub fn workspace_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("harness lives inside the workspace").to_path_buf()
}

/// Where implementation binaries are looked up: `$BPFEVAL_IMPLS_DIR`, else `<workspace>/target/impls`.
pub fn impls_dir() -> PathBuf {
    match std::env::var_os(IMPLS_DIR_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_dir().join("target").join("impls"),
    }
}

/// One library's build of one use case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Implementation {
    pub usecase: String,
    pub lib: String,
    pub binary: PathBuf,
}

impl Implementation {
    /// The binary `<impls dir>/<usecase>-<lib>`, or an error if it is not there.
    pub fn new(usecase: &str, lib: &str) -> Result<Implementation> {
        let binary = impls_dir().join(format!("{usecase}-{lib}"));
        if !is_executable(&binary) {
            bail!(
                "binary {} missing: run `make build` (or point {IMPLS_DIR_ENV} at a directory holding {usecase}-{lib})",
                binary.display()
            );
        }
        Ok(Implementation { usecase: usecase.into(), lib: lib.into(), binary })
    }

    /// The implementation's description with the binary where `make build` puts it under
    /// `workspace` (`<workspace>/target/impls/<usecase>-<lib>`, or in `$BPFEVAL_IMPLS_DIR`),
    /// whether or not it exists yet.
    pub fn at(workspace: &Path, usecase: &str, lib: &str) -> Implementation {
        let dir = match std::env::var_os(IMPLS_DIR_ENV) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => workspace.join("target").join("impls"),
        };
        Implementation { usecase: usecase.into(), lib: lib.into(), binary: dir.join(format!("{usecase}-{lib}")) }
    }

    /// The same implementation with its binary at `binary` (for example a fresh build).
    pub fn with_binary(&self, binary: PathBuf) -> Implementation {
        Implementation { binary, ..self.clone() }
    }

    /// Like [`Implementation::new`], panicking with the reason if the binary is missing.
    pub fn require(usecase: &str, lib: &str) -> Implementation {
        Implementation::new(usecase, lib).unwrap_or_else(|e| panic!("{e:#}"))
    }

    /// The Cargo package of this implementation (`<usecase>-<lib>`, like its binary).
    pub fn package(&self) -> String {
        format!("{}-{}", self.usecase, self.lib)
    }

    /// Its source directory, `<workspace>/impls/<lib>/<usecase>`.
    pub fn source_dir(&self, workspace: &Path) -> PathBuf {
        self.library().source_dir(workspace, &self.usecase)
    }

    /// Its kernel program's directory ([`crate::libs::Kernel`]).
    pub fn kernel_dir(&self, workspace: &Path) -> PathBuf {
        self.library().kernel_dir(workspace, &self.usecase)
    }

    /// Its library's entry in the registry (panics for a library the registry does not know).
    pub fn library(&self) -> &'static crate::libs::Library {
        crate::libs::get(&self.lib)
    }

    /// Starts the binary with `args`, inside `netns` if given (`ip netns exec`).
    pub fn spawn(&self, args: &[&str], netns: Option<&NetNs>) -> Result<Running> {
        Running::spawn(self, args, netns)
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false)
}

/// Libraries whose `<usecase>-<lib>` binary exists in [`impls_dir`], sorted.
pub fn available_libs(usecase: &str) -> Vec<String> {
    let prefix = format!("{usecase}-");
    let mut libs: Vec<String> = std::fs::read_dir(impls_dir())
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| is_executable(&e.path()))
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&prefix).map(String::from))
        .collect();
    libs.sort();
    libs
}

/// [`available_libs`], checked to hold every library the registry can build here and that has
/// a package for `usecase`: a test over "every implementation" fails on a missing one.
pub fn all_built_libs(usecase: &str) -> Result<Vec<String>> {
    use crate::libs::LIBS;
    let libs = available_libs(usecase);
    for l in LIBS.iter().filter(|l| l.buildable()) {
        if l.source_dir(&workspace_dir(), usecase).exists() && !libs.iter().any(|x| x == l.name) {
            bail!("{usecase}-{} not built: run `make build`", l.name);
        }
    }
    Ok(libs)
}

/// One stdout line of an implementation, kept as text (shared by the history and the unconsumed
/// lines): a tracer prints thousands of records a second, and as parsed JSON each took ~1 KB.
#[derive(Debug, Clone)]
pub struct Line {
    text: Arc<str>,
    event: Arc<str>,
    /// When the harness read it.
    pub at: Instant,
}

impl Line {
    fn new(text: String, at: Instant) -> Line {
        #[derive(serde::Deserialize)]
        struct Event {
            #[serde(default)]
            event: Value,
        }
        let event = match serde_json::from_str::<Event>(&text) {
            Ok(e) if text.trim_start().starts_with('{') => e.event.as_str().unwrap_or("").into(),
            _ => "_text".into(),
        };
        Line { text: text.into(), event, at }
    }

    /// The `event` field.
    pub fn event(&self) -> &str {
        &self.event
    }

    /// The parsed JSON object; a line that is not JSON becomes `{"event": "_text", "text": ...}`.
    pub fn value(&self) -> Value {
        serde_json::from_str::<Value>(&self.text)
            .ok()
            .filter(Value::is_object)
            .unwrap_or_else(|| serde_json::json!({ "event": "_text", "text": &*self.text }))
    }
}

/// A running implementation.
pub struct Running {
    child: Child,
    lib: String,
    lines: Receiver<Line>,
    /// Lines read from the channel but not yet consumed by a `wait_for*` call.
    pending: VecDeque<Line>,
    /// Every line seen so far, in order.
    history: Vec<Line>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
    command: String,
}

impl Running {
    /// How long drop waits after SIGTERM before SIGKILL.
    pub const KILL_AFTER: Duration = Duration::from_secs(10);

    /// Starts `imp` with `args`, inside `netns` if given.
    pub fn spawn(imp: &Implementation, args: &[&str], netns: Option<&NetNs>) -> Result<Running> {
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns.name()]).arg(&imp.binary);
                c
            }
            None => Command::new(&imp.binary),
        };
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // If the harness dies without running drop (SIGKILL, a test timeout), the implementation
        // gets SIGTERM and detaches instead of staying attached. The kernel sends it when the
        // *thread* that spawned it ends, so keep a `Running` on the thread that made it.
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let command = format!("{:?}", cmd);
        let mut child = cmd.spawn().with_context(|| format!("starting {command}"))?;
        let stdout = child.stdout.take().expect("piped");
        let mut stderr_pipe = child.stderr.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        let out_reader = std::thread::Builder::new()
            .name(format!("{}-stdout", imp.lib))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(text) = line else { break };
                    if tx.send(Line::new(text, Instant::now())).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the stdout reader")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err_reader = std::thread::Builder::new()
            .name(format!("{}-stderr", imp.lib))
            .spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stderr_pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n])),
                    }
                }
            })
            .context("spawning the stderr reader")?;
        Ok(Running {
            child,
            lib: imp.lib.clone(),
            lines: rx,
            pending: VecDeque::new(),
            history: Vec::new(),
            stderr,
            readers: vec![out_reader, err_reader],
            status: None,
            command,
        })
    }

    /// Process id of what was spawned. With a netns this is `ip netns exec`, which execs the
    /// implementation in place, so it is the implementation's pid too; the `ready` line's
    /// `pid` field is the authoritative one ([`Running::ready_pid`]).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the process wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Every stdout line seen so far (consumed or not).
    pub fn history(&self) -> &[Line] {
        &self.history
    }

    fn describe(&self) -> String {
        let stderr = self.stderr();
        let status = self.status.map(|s| format!(", {s}")).unwrap_or_default();
        format!(
            "{} ({}{status}); stderr: {}",
            self.lib,
            self.command,
            if stderr.is_empty() { "(empty)" } else { stderr.trim() }
        )
    }

    /// Moves lines from the reader thread into `pending`, waiting until `deadline` for at least
    /// one. Returns false when the deadline passed or stdout closed with nothing new.
    fn fill(&mut self, deadline: Instant) -> bool {
        let now = Instant::now();
        let wait = deadline.saturating_duration_since(now);
        match self.lines.recv_timeout(wait) {
            Ok(line) => {
                self.history.push(line.clone());
                self.pending.push_back(line);
                while let Ok(line) = self.lines.try_recv() {
                    self.history.push(line.clone());
                    self.pending.push_back(line);
                }
                true
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => {
                // stdout closed: the process is exiting; give it a moment to be reaped.
                let _ = self.wait_exit(Duration::from_secs(2));
                false
            }
        }
    }

    /// Waits for the next not yet consumed line that satisfies `pred` and consumes it (and every
    /// line before it). Fails on timeout or when the process ends first, with its stderr.
    pub fn wait_for_line(
        &mut self,
        what: &str,
        timeout: Duration,
        mut pred: impl FnMut(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            while let Some(line) = self.pending.pop_front() {
                let value = line.value();
                if pred(&value) {
                    return Ok(value);
                }
            }
            if !self.fill(deadline) {
                // One last drain, in case lines and the deadline raced.
                while let Some(line) = self.pending.pop_front() {
                    let value = line.value();
                    if pred(&value) {
                        return Ok(value);
                    }
                }
                let why = if self.has_exited() { "the process ended first" } else { "timed out" };
                return Err(anyhow!(
                    "waiting {timeout:?} for {what}: {why}; {}; stdout events so far: {:?}",
                    self.describe(),
                    self.history.iter().map(|l| l.event().to_string()).collect::<Vec<_>>()
                ));
            }
        }
    }

    /// Without waiting: the first not yet consumed line with `"event": event`, if one has come
    /// (consuming it and the lines before it).
    pub fn poll_event(&mut self, event: &str) -> Option<Value> {
        while let Ok(line) = self.lines.try_recv() {
            self.history.push(line.clone());
            self.pending.push_back(line);
        }
        while let Some(line) = self.pending.pop_front() {
            if line.event() == event {
                return Some(line.value());
            }
        }
        None
    }

    /// Removes every line with `"event": event` read so far from the history and the unconsumed
    /// lines, and returns them: for a high-volume event (a tracer's records) that the caller
    /// keeps in a compact form of its own instead of as JSON values.
    pub fn take_events(&mut self, event: &str) -> Vec<Line> {
        while let Ok(line) = self.lines.try_recv() {
            self.history.push(line.clone());
            self.pending.push_back(line);
        }
        self.pending.retain(|l| l.event() != event);
        let (taken, kept) = std::mem::take(&mut self.history).into_iter().partition(|l| l.event() == event);
        self.history = kept;
        taken
    }

    /// Waits for the next line with `"event": event` (see [`Running::wait_for_line`]).
    pub fn wait_for(&mut self, event: &str, timeout: Duration) -> Result<Value> {
        self.wait_for_line(&format!("a `{event}` line"), timeout, |v| v["event"] == event)
    }

    /// Waits for `ready` and returns the pid it reports.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<u32> {
        let ready = self.wait_for("ready", timeout)?;
        let pid = ready["pid"].as_u64().map(|p| p as u32).ok_or_else(|| anyhow!("`ready` line without a pid: {ready}"))?;
        programs_seen_at_ready(pid);
        Ok(pid)
    }

    /// The pid from the `ready` line, if it was seen.
    pub fn ready_pid(&self) -> Option<u32> {
        self.history.iter().find(|l| l.event() == "ready").and_then(|l| l.value()["pid"].as_u64()).map(|p| p as u32)
    }

    /// Sends a signal (`libc::SIGHUP`, `libc::SIGINT`, ...).
    pub fn signal(&self, sig: libc::c_int) -> Result<()> {
        if self.status.is_some() {
            bail!("cannot signal {}: it has exited", self.describe());
        }
        // SAFETY: kill(2) on our own child, which is not reaped yet (no pid reuse).
        if unsafe { libc::kill(self.child.id() as libc::pid_t, sig) } != 0 {
            return Err(std::io::Error::last_os_error()).context("kill");
        }
        Ok(())
    }

    fn has_exited(&mut self) -> bool {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status.is_some()
    }

    /// Waits for the process to end and returns its status; the output readers are joined, so
    /// afterwards every stdout line is available and `stderr()` is complete.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while !self.has_exited() {
            if Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.describe());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        for h in self.readers.drain(..) {
            let _ = h.join();
        }
        while let Ok(line) = self.lines.try_recv() {
            self.history.push(line.clone());
            self.pending.push_back(line);
        }
        Ok(self.status.unwrap())
    }

    /// Exit code, or an error naming the signal that killed it; waits up to `timeout`.
    pub fn exit_code(&mut self, timeout: Duration) -> Result<i32> {
        let status = self.wait_exit(timeout)?;
        status.code().ok_or_else(|| anyhow!("{} was killed by a signal: {status}", self.describe()))
    }

    /// Sends SIGINT (the contract's "stop"), and waits for the process to exit.
    pub fn stop(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.signal(libc::SIGINT)?;
        self.wait_exit(timeout)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.has_exited() {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
            if self.wait_exit(Self::KILL_AFTER).is_err() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
    }
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running").field("lib", &self.lib).field("pid", &self.child.id()).finish()
    }
}

/// A scratch directory (`$TMPDIR/bpfeval-<prefix>-<pid>-<n>`) for an implementation's input
/// files; removed with its contents on drop.
#[derive(Debug)]
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub fn new(prefix: &str) -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("bpfeval-{prefix}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(TempDir { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes `contents` to `<dir>/<name>` and returns the file's path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> Result<PathBuf> {
        let p = self.path.join(name);
        std::fs::write(&p, contents).with_context(|| format!("writing {}", p.display()))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Program name -> instructions the verifier processed (`None`: the kernel does not report it).
pub type VerifiedInsns = std::collections::BTreeMap<String, Option<u32>>;

/// What [`Running::wait_ready`] saw while a [`ProgramsSeen`] lives: every BPF program the ready
/// implementation holds. The kernel matrix reads the verifier's counts of the programs its checks
/// loaded this way, without a load of its own (a guest under TCG is slow).
static SEEN: Mutex<Option<VerifiedInsns>> = Mutex::new(None);

fn programs_seen_at_ready(pid: u32) {
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let Some(seen) = seen.as_mut() else { return };
    for id in crate::bpf::prog_ids_of_pid(pid).unwrap_or_default() {
        if let Ok(info) = crate::bpf::Prog::from_id(id).and_then(|p| p.info()) {
            // A check loads the same program once per case: keep the largest count.
            let e = seen.entry(info.name).or_insert(info.verified_insns);
            *e = (*e).max(info.verified_insns);
        }
    }
}

/// Collects the programs of every implementation that gets ready until [`ProgramsSeen::take`].
pub struct ProgramsSeen(());

impl ProgramsSeen {
    pub fn start() -> ProgramsSeen {
        *SEEN.lock().unwrap_or_else(|e| e.into_inner()) = Some(VerifiedInsns::new());
        ProgramsSeen(())
    }

    pub fn take(self) -> VerifiedInsns {
        SEEN.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default()
    }
}

impl Drop for ProgramsSeen {
    fn drop(&mut self) {
        SEEN.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines are kept as text; their event and JSON read as when they were parsed at once.
    #[test]
    fn lines_keep_text_and_read_as_json() {
        let at = Instant::now();
        let conn = Line::new(r#"{"event":"conn","pid":7,"comm":"x"}"#.into(), at);
        assert_eq!(conn.event(), "conn");
        assert_eq!(conn.value()["pid"], 7);
        for text in ["PID COMM LOCAL_IP", "[1, 2]", "{not json", "42"] {
            let line = Line::new(text.into(), at);
            assert_eq!(line.event(), "_text", "{text}");
            assert_eq!(line.value(), serde_json::json!({ "event": "_text", "text": text }));
        }
        for text in [r#"{"pid":1}"#, r#"{"event":3}"#] {
            let line = Line::new(text.into(), at);
            assert_eq!(line.event(), "", "{text}");
            assert_eq!(line.value(), serde_json::from_str::<Value>(text).unwrap());
        }
    }
}
