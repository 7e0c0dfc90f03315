//! Test-bed pieces specific to comtrace, shared by its tests and the CLI:
//!
//! * [`Tracer`]: a running comtrace and the `conn` records it printed;
//! * a ground-truth workload ([`Workload`]): TCP connections with known addresses and ports,
//!   payload sizes in each direction, hold times and close order, opened by *agents* — child
//!   processes forked from the harness, each with its own PID and a command name set with
//!   `prctl(PR_SET_NAME)` — each agent a tokio runtime; the result ([`Truth`]) says what every
//!   socket of every connection must be reported as, and [`check`] compares;
//! * a rate workload ([`drive`]): as many short connections as asked for (or as fast as it goes)
//!   over a namespace's loopback, on two tokio runtimes, for throughput and loss measurements.
//!
//! Every workload is bounded in count and time, runs only on loopback or in namespaces the
//! caller made, and reaps what it forked (also on panic).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bpfeval_shared::comtrace::Conn;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::netns::NetNs;
use crate::process::{Implementation, Running};

pub const USECASE: &str = "comtrace";
/// Kernel name of the tracepoint program every library loads.
pub const PROG_NAME: &str = "comtrace";

/// `CLOCK_MONOTONIC` in nanoseconds: the clock of `bpf_ktime_get_ns`, so the tracer's
/// timestamps and the workload's can be compared directly.
pub fn clock_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// An `Instant` on the `CLOCK_MONOTONIC` nanosecond scale (std's `Instant` is that clock on
/// Linux, without a public conversion).
pub fn instant_ns(at: Instant) -> u64 {
    let (now, now_ns) = (Instant::now(), clock_ns());
    now_ns.saturating_sub(now.saturating_duration_since(at).as_nanos() as u64)
}

// --- a running tracer -------------------------------------------------------------------------

/// A running comtrace (JSON lines on stdout).
pub struct Tracer {
    pub running: Running,
    pub pid: u32,
    pub prog_id: u32,
    /// The `conn` lines read so far, parsed (a JSON value per record would take ~1 KB).
    records: Vec<Record>,
}

/// One `conn` line and when the harness read it (`CLOCK_MONOTONIC` ns).
#[derive(Debug, Clone)]
pub struct Record {
    pub conn: Conn,
    pub read_ns: u64,
}

impl Tracer {
    /// Starts `imp` with `args` (in the host namespace: the tracepoint sees every namespace)
    /// and waits for `ready`; finds its program by name.
    pub fn start(imp: &Implementation, args: &[&str], timeout: Duration) -> Result<Tracer> {
        let mut running = imp.spawn(args, None)?;
        let pid = running.wait_ready(timeout)?;
        let prog = crate::bpf::find_prog(pid, PROG_NAME)?;
        let prog_id = prog.info()?.id;
        Ok(Tracer { running, pid, prog_id, records: Vec::new() })
    }

    /// Every `conn` line read so far.
    pub fn records(&mut self) -> Vec<Record> {
        let lines = self.running.take_events("conn");
        self.records.extend(records_of(&lines));
        self.records.clone()
    }

    /// The `conn` lines read since the last call (or since [`Tracer::records`]), handed over:
    /// the tracer keeps none of them (a sweep's records would otherwise add up over a run).
    pub fn take_records(&mut self) -> Vec<Record> {
        let lines = self.running.take_events("conn");
        let mut records = std::mem::take(&mut self.records);
        records.extend(records_of(&lines));
        records
    }

    /// Waits until `done(records)` holds or `timeout` passes; returns the records either way.
    pub fn wait_records(&mut self, timeout: Duration, done: impl Fn(&[Record]) -> bool) -> Vec<Record> {
        let deadline = Instant::now() + timeout;
        loop {
            let records = self.records();
            if done(&records) || Instant::now() >= deadline {
                return records;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, then the exit code, the final `stats` line and whether `exit` was printed.
    pub fn stop(&mut self, timeout: Duration) -> Result<(i32, Value, bool)> {
        self.running.signal(libc::SIGINT)?;
        let code = self.running.exit_code(timeout)?;
        let lines = self.running.history();
        let stats = lines.iter().rev().find(|l| l.event() == "stats").map(|l| l.value()).unwrap_or(Value::Null);
        let exit = lines.last().is_some_and(|l| l.event() == "exit");
        Ok((code, stats, exit))
    }
}

fn records_of(lines: &[crate::process::Line]) -> Vec<Record> {
    lines
        .iter()
        .filter(|l| l.event() == "conn")
        .filter_map(|l| Some(Record { conn: Conn::from_json(&l.value())?, read_ns: instant_ns(l.at) }))
        .collect()
}

// --- the ground-truth workload ----------------------------------------------------------------

/// Which end of a connection closes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    Client,
    Server,
}

/// One connection of the workload. The client binds `client` (so its port is known in
/// advance), connects to `server`, sends `up` bytes; the server reads them all and answers with
/// `down` bytes; then `closer` waits `hold` and closes, and the other end closes as soon as it
/// reads end of stream. Nothing is ever left unread, so every close is an orderly FIN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConnPlan {
    /// Index into the workload's agents.
    pub client_agent: usize,
    pub server_agent: usize,
    pub client: SocketAddr,
    pub server: SocketAddr,
    pub up: u64,
    pub down: u64,
    pub hold_ms: u64,
    pub closer: Side,
}

/// A named process of the workload, in a namespace.
pub struct Agent<'a> {
    /// Its command name (at most 15 bytes: the kernel's `comm`).
    pub comm: String,
    pub ns: &'a NetNs,
}

pub struct Workload<'a> {
    pub agents: Vec<Agent<'a>>,
    pub conns: Vec<ConnPlan>,
}

/// What an agent measured about one end of one connection (`CLOCK_MONOTONIC` ns).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Report {
    conn: usize,
    side: Side,
    /// Client: before `connect` .. after it completed. Server: `open.0` is 0, `open.1` after
    /// `accept` returned.
    open: (u64, u64),
    /// Before `close` .. after it returned.
    close: (u64, u64),
    sent: u64,
    received: u64,
}

/// How one socket of the workload must be reported.
#[derive(Debug, Clone)]
pub struct Expected {
    pub conn: usize,
    pub side: Side,
    pub pid: u32,
    pub comm: String,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    /// The birth lies in `start.0 ..= start.1`, the close in `end.0 ..= end.1` (ns).
    pub start: (u64, u64),
    pub end: (u64, u64),
}

/// The ground truth of a finished workload: two sockets per connection.
#[derive(Debug, Clone, Default)]
pub struct Truth {
    pub expected: Vec<Expected>,
    /// Agent pids by index.
    pub pids: Vec<u32>,
}

/// Longest an agent lives; it ends itself after this, and the harness kills it after a bit more.
const AGENT_DEADLINE: Duration = Duration::from_secs(20);

impl<'a> Workload<'a> {
    /// Runs every connection (all at once), reaps the agents and returns the ground truth.
    pub fn run(&self) -> Result<Truth> {
        self.start()?.finish()
    }

    /// Forks the agents, which wait for [`Started::finish`] before they connect: their pids
    /// are known before any connection exists (for a tracer that filters by one).
    pub fn start(&self) -> Result<Started<'_, 'a>> {
        // Listeners first, in the server agents' namespaces, so no connect can come too early.
        let mut listeners: BTreeMap<SocketAddr, (usize, TcpListener)> = BTreeMap::new();
        for c in &self.conns {
            if let Some((agent, _)) = listeners.get(&c.server) {
                ensure!(*agent == c.server_agent, "{} is served by two agents", c.server);
                continue;
            }
            let addr = c.server;
            let l = self.agents[c.server_agent]
                .ns
                .run_in(move || TcpListener::bind(addr))?
                .with_context(|| format!("listening on {addr}"))?;
            listeners.insert(c.server, (c.server_agent, l));
        }
        let mut procs = Vec::new();
        for (i, agent) in self.agents.iter().enumerate() {
            let plans = |keep: &dyn Fn(&ConnPlan) -> bool| -> Vec<(usize, ConnPlan)> {
                self.conns.iter().enumerate().filter(|(_, c)| keep(c)).map(|(n, c)| (n, c.clone())).collect()
            };
            let work = AgentWork {
                clients: plans(&|c| c.client_agent == i),
                servers: listeners
                    .iter()
                    .filter(|(_, (a, _))| *a == i)
                    .map(|(addr, (_, l))| (l.as_raw_fd(), plans(&|c| c.server == *addr)))
                    .collect(),
            };
            procs.push(AgentProc::fork(agent, &work)?);
        }
        // Only the server agents hold the listeners now.
        drop(listeners);
        Ok(Started { workload: self, procs })
    }
}

/// A workload whose agents are forked and waiting.
pub struct Started<'w, 'a> {
    workload: &'w Workload<'a>,
    procs: Vec<AgentProc>,
}

impl Started<'_, '_> {
    /// Agent pids, in the order of [`Workload::agents`].
    pub fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.pid as u32).collect()
    }

    /// Lets every agent go, waits for all of them and returns the ground truth.
    pub fn finish(mut self) -> Result<Truth> {
        for p in &mut self.procs {
            p.go()?;
        }
        let mut reports = Vec::new();
        let mut failures = Vec::new();
        let deadline = Instant::now() + AGENT_DEADLINE + Duration::from_secs(5);
        let pids = self.pids();
        for (agent, p) in self.workload.agents.iter().zip(&mut self.procs) {
            match p.finish(deadline) {
                Ok(r) => reports.extend(r),
                Err(e) => failures.push(format!("agent {} (pid {}): {e:#}", agent.comm, p.pid)),
            }
        }
        ensure!(failures.is_empty(), "workload failed: {}", failures.join("; "));
        self.workload.truth(&reports, pids)
    }
}

impl Workload<'_> {
    fn truth(&self, reports: &[Report], pids: Vec<u32>) -> Result<Truth> {
        let find = |n: usize, side: Side| {
            reports.iter().find(|r| r.conn == n && r.side == side).with_context(|| format!("no {side:?} report for connection {n}"))
        };
        let mut expected = Vec::new();
        for (n, c) in self.conns.iter().enumerate() {
            let (cr, sr) = (find(n, Side::Client)?, find(n, Side::Server)?);
            ensure!(
                (cr.sent, cr.received, sr.sent, sr.received) == (c.up, c.down, c.down, c.up),
                "connection {n}: the agents moved other byte counts than planned: {cr:?} {sr:?} for {c:?}"
            );
            // Each socket closes once its own FIN is acknowledged (or the peer's is, for the
            // second closer): no later than the last close() returned, give or take the slack
            // `check` allows for softirq processing.
            let last_close = cr.close.1.max(sr.close.1);
            let comm = |i: usize| truncate_comm(&self.agents[i].comm);
            expected.push(Expected {
                conn: n,
                side: Side::Client,
                pid: pids[c.client_agent],
                comm: comm(c.client_agent),
                local: c.client,
                remote: c.server,
                rx_bytes: c.down,
                tx_bytes: c.up,
                // SYN_SENT is set inside connect().
                start: cr.open,
                end: (cr.close.0, last_close),
            });
            expected.push(Expected {
                conn: n,
                side: Side::Server,
                pid: pids[c.server_agent],
                comm: comm(c.server_agent),
                local: c.server,
                remote: c.client,
                rx_bytes: c.up,
                tx_bytes: c.down,
                // The passive socket is made when the handshake's last ACK arrives: after the
                // client began to connect, before accept() returned it.
                start: (cr.open.0, sr.open.1),
                end: (sr.close.0, last_close),
            });
        }
        Ok(Truth { expected, pids })
    }
}

fn truncate_comm(comm: &str) -> String {
    let mut end = comm.len().min(bpfeval_shared::comtrace::abi::TASK_COMM_LEN - 1);
    while !comm.is_char_boundary(end) {
        end -= 1;
    }
    comm[..end].to_string()
}

/// What one agent does: connect as a client, and serve on listeners (by raw fd, inherited).
struct AgentWork {
    clients: Vec<(usize, ConnPlan)>,
    servers: Vec<(RawFd, Vec<(usize, ConnPlan)>)>,
}

/// A forked agent; killed and reaped on drop if still running.
struct AgentProc {
    pid: libc::pid_t,
    /// One byte written here starts the agent; closing it unwritten makes the agent quit.
    go: Option<OwnedFd>,
    results: Option<std::fs::File>,
    reaped: bool,
}

impl AgentProc {
    fn fork(agent: &Agent<'_>, work: &AgentWork) -> Result<AgentProc> {
        let (results_read, results_write) = pipe()?;
        let (go_read, go_write) = pipe()?;
        let comm = std::ffi::CString::new(truncate_comm(&agent.comm)).context("agent name with NUL")?;
        let fds = (go_read.as_raw_fd(), results_write.as_raw_fd());
        // Forked from a thread inside the agent's namespace, so its sockets live there. The
        // child is a copy of that one thread: it only makes syscalls, allocates (glibc's malloc
        // is fork-safe) and runs its own fresh tokio runtime, and leaves with _exit.
        let pid = agent.ns.run_in(|| {
            // SAFETY: see above; the child never returns from `agent_child`.
            match unsafe { libc::fork() } {
                0 => unsafe { agent_child(&comm, work, fds.0, fds.1) },
                pid => pid,
            }
        })?;
        if pid < 0 {
            return Err(std::io::Error::last_os_error()).context("fork");
        }
        Ok(AgentProc { pid, go: Some(go_write), results: Some(std::fs::File::from(results_read)), reaped: false })
    }

    fn go(&mut self) -> Result<()> {
        let fd = self.go.take().expect("go once");
        // SAFETY: one byte from a valid buffer to our pipe.
        if unsafe { libc::write(fd.as_raw_fd(), b"g".as_ptr().cast(), 1) } != 1 {
            return Err(std::io::Error::last_os_error()).context("starting an agent");
        }
        Ok(())
    }

    /// Reads the agent's reports until it closes the pipe (or `deadline`), then reaps it.
    fn finish(&mut self, deadline: Instant) -> Result<Vec<Report>> {
        let file = self.results.take().expect("finish once");
        let text = read_until_eof(file, deadline)?;
        let status = self.reap(deadline)?;
        let mut reports = Vec::new();
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).with_context(|| format!("agent output `{line}`"))?;
            if let Some(e) = v.get("error") {
                bail!("{}", e.as_str().unwrap_or_default());
            }
            reports.push(serde_json::from_value(v)?);
        }
        ensure!(status == 0, "exit status {status}, output: {text}");
        Ok(reports)
    }

    fn reap(&mut self, deadline: Instant) -> Result<i32> {
        loop {
            let mut status = 0;
            // SAFETY: waiting for our own child.
            match unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) } {
                0 if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                0 => bail!("did not exit in time"),
                r if r < 0 => return Err(std::io::Error::last_os_error()).context("waitpid"),
                _ => {
                    self.reaped = true;
                    return Ok(if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { 128 + libc::WTERMSIG(status) });
                }
            }
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if !self.reaped {
            // SAFETY: our own unreaped child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: a valid array for two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context("pipe2");
    }
    // SAFETY: both fds are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn read_until_eof(file: std::fs::File, deadline: Instant) -> Result<String> {
    use std::io::Read;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` is ours (from into_raw_fd).
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        if r == 0 {
            bail!("no end of output in time; so far: {}", String::from_utf8_lossy(&out));
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e).context("poll");
        }
        match file.read(&mut buf)? {
            0 => return Ok(String::from_utf8_lossy(&out).into_owned()),
            n => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// The forked child: name itself, drop every inherited fd it does not need (so that no socket
/// or pipe of the harness is held open by it), run the work, report, `_exit`.
///
/// # Safety
/// Only to be called in a freshly forked child.
unsafe fn agent_child(comm: &std::ffi::CStr, work: &AgentWork, go: RawFd, results: RawFd) -> ! {
    unsafe {
        libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0);
        let mut keep: Vec<RawFd> = work.servers.iter().map(|(fd, _)| *fd).collect();
        keep.extend([0, 1, 2, go, results]);
        keep.sort_unstable();
        for pair in keep.windows(2) {
            if pair[1] > pair[0] + 1 {
                libc::syscall(libc::SYS_close_range, pair[0] + 1, pair[1] - 1, 0);
            }
        }
        libc::syscall(libc::SYS_close_range, keep[keep.len() - 1] + 1, u32::MAX, 0);
        // Wait for the go; end of file instead means the harness gave up on this workload.
        let mut b = 0u8;
        if libc::read(go, (&raw mut b).cast(), 1) != 1 {
            libc::_exit(3);
        }
    }
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| agent_main(work)));
    let (code, lines) = match outcome {
        Ok(Ok(reports)) => (0, reports.iter().map(|r| serde_json::to_string(r).unwrap()).collect::<Vec<_>>()),
        Ok(Err(e)) => (1, vec![serde_json::json!({ "error": format!("{e:#}") }).to_string()]),
        Err(_) => (1, vec![serde_json::json!({ "error": "agent panicked" }).to_string()]),
    };
    let text = lines.join("\n") + "\n";
    let mut bytes = text.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: writing our own buffer to our pipe.
        let n = unsafe { libc::write(results, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            break;
        }
        bytes = &bytes[n as usize..];
    }
    // SAFETY: leaving the child without running the parent's atexit handlers or destructors.
    unsafe { libc::_exit(code) }
}

fn agent_main(work: &AgentWork) -> Result<Vec<Report>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (fd, conns) in &work.servers {
            // SAFETY: the listener's fd, inherited from the parent, owned by this process alone.
            let std_listener = unsafe { TcpListener::from_raw_fd(*fd) };
            std_listener.set_nonblocking(true)?;
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            tasks.spawn(accept(listener, conns.clone()));
        }
        for (n, plan) in &work.clients {
            let (n, plan) = (*n, plan.clone());
            tasks.spawn(async move { Ok(vec![connect(n, plan).await?]) });
        }
        let mut reports = Vec::new();
        while let Some(r) = tasks.join_next().await {
            reports.extend(r??);
        }
        Ok(reports)
    })
}

/// Accepts the planned connections of one listener (recognised by the client's address) and
/// serves them concurrently.
async fn accept(listener: tokio::net::TcpListener, conns: Vec<(usize, ConnPlan)>) -> Result<Vec<Report>> {
    let by_peer: HashMap<SocketAddr, (usize, ConnPlan)> = conns.iter().map(|(n, c)| (c.client, (*n, c.clone()))).collect();
    let mut served = tokio::task::JoinSet::new();
    for _ in 0..conns.len() {
        let (stream, peer) = bounded("accept".into(), async { Ok(listener.accept().await?) }).await?;
        let accepted = clock_ns();
        let (n, plan) = by_peer.get(&peer).cloned().with_context(|| format!("unexpected connection from {peer}"))?;
        served.spawn(serve(n, plan, stream, accepted));
    }
    let mut reports = Vec::new();
    while let Some(r) = served.join_next().await {
        reports.push(r??);
    }
    Ok(reports)
}

/// Everything an agent does is bounded by this.
async fn bounded<T>(what: String, f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(AGENT_DEADLINE, f).await.map_err(|_| anyhow!("{what}: timed out"))?
}

async fn connect(n: usize, plan: ConnPlan) -> Result<Report> {
    bounded(format!("client of connection {n}"), async {
        let socket = if plan.client.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
        socket.bind(plan.client).with_context(|| format!("binding {}", plan.client))?;
        let t0 = clock_ns();
        let mut stream = socket.connect(plan.server).await.with_context(|| format!("connecting to {}", plan.server))?;
        let t1 = clock_ns();
        stream.write_all(&vec![b'u'; plan.up as usize]).await?;
        let received = read_n(&mut stream, plan.down).await?;
        finish(&mut stream, plan.closer == Side::Client, plan.hold_ms).await?;
        let c0 = clock_ns();
        drop(stream);
        let c1 = clock_ns();
        Ok(Report { conn: n, side: Side::Client, open: (t0, t1), close: (c0, c1), sent: plan.up, received })
    })
    .await
}

async fn serve(n: usize, plan: ConnPlan, mut stream: tokio::net::TcpStream, accepted: u64) -> Result<Report> {
    bounded(format!("server of connection {n}"), async {
        let received = read_n(&mut stream, plan.up).await?;
        stream.write_all(&vec![b'd'; plan.down as usize]).await?;
        finish(&mut stream, plan.closer == Side::Server, plan.hold_ms).await?;
        let c0 = clock_ns();
        drop(stream);
        let c1 = clock_ns();
        Ok(Report { conn: n, side: Side::Server, open: (0, accepted), close: (c0, c1), sent: plan.down, received })
    })
    .await
}

/// Reads exactly `n` bytes (failing on an early end of stream).
async fn read_n(stream: &mut tokio::net::TcpStream, n: u64) -> Result<u64> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0;
    while got < n {
        let want = (n - got).min(buf.len() as u64) as usize;
        match stream.read(&mut buf[..want]).await? {
            0 => bail!("end of stream after {got} of {n} bytes"),
            k => got += k as u64,
        }
    }
    Ok(got)
}

/// The first closer holds the connection open for `hold_ms`; the other waits for end of stream.
async fn finish(stream: &mut tokio::net::TcpStream, first: bool, hold_ms: u64) -> Result<()> {
    if first {
        tokio::time::sleep(Duration::from_millis(hold_ms)).await;
    } else {
        let mut b = [0u8; 1];
        ensure!(stream.read(&mut b).await? == 0, "data after the exchange");
    }
    Ok(())
}

/// Slack allowed on either side of a window for the kernel's own processing (a socket closes in
/// softirq context when its FIN is acknowledged) and for the agents' clock reads.
pub const SLACK_NS: u64 = 20_000_000;

/// Compares `records` with the ground truth: every expected socket reported exactly once, with
/// exact pid, command, addresses, ports and payload bytes, birth and close within their windows
/// (± [`SLACK_NS`]); no record that claims one of the workload's 4-tuples beyond those; every
/// other record well-formed. Returns one line per problem.
pub fn check(truth: &Truth, records: &[Record]) -> Vec<String> {
    let mut problems = Vec::new();
    let key = |c: &Conn| (SocketAddr::new(c.laddr, c.lport), SocketAddr::new(c.raddr, c.rport));
    let mut by_key: HashMap<(SocketAddr, SocketAddr), Vec<&Record>> = HashMap::new();
    for r in records {
        by_key.entry(key(&r.conn)).or_default().push(r);
        let c = &r.conn;
        if c.start_ns > c.end_ns || c.end_ns > r.read_ns || c.comm.is_empty() {
            problems.push(format!("malformed record {c:?} (read at {})", r.read_ns));
        }
    }
    for e in &truth.expected {
        let what = format!("connection {} {:?} end {} -> {}", e.conn, e.side, e.local, e.remote);
        let found = by_key.get(&(e.local, e.remote)).map(Vec::as_slice).unwrap_or_default();
        let [r] = found else {
            problems.push(format!("{what}: reported {} times, expected once", found.len()));
            continue;
        };
        let c = &r.conn;
        let mut wrong = Vec::new();
        if (c.pid, c.comm.as_str()) != (e.pid, e.comm.as_str()) {
            wrong.push(format!("owner {} {:?}, expected {} {:?}", c.pid, c.comm, e.pid, e.comm));
        }
        if (c.rx_bytes, c.tx_bytes) != (e.rx_bytes, e.tx_bytes) {
            wrong.push(format!("rx/tx {}/{}, expected {}/{}", c.rx_bytes, c.tx_bytes, e.rx_bytes, e.tx_bytes));
        }
        for (name, t, (lo, hi)) in [("birth", c.start_ns, e.start), ("close", c.end_ns, e.end)] {
            if t + SLACK_NS < lo || t > hi + SLACK_NS {
                wrong.push(format!(
                    "{name} {:+.3} ms from its window [0, {:.3}] ms",
                    (t as f64 - lo as f64) / 1e6,
                    (hi - lo) as f64 / 1e6
                ));
            }
        }
        if !wrong.is_empty() {
            problems.push(format!("{what}: {}", wrong.join("; ")));
        }
    }
    problems
}

// --- the rate workload --------------------------------------------------------------------------

/// Bytes the client sends and the server answers with, per connection of [`drive`].
pub const RATE_REQUEST: usize = 64;
pub const RATE_RESPONSE: usize = 256;

/// How hard [`drive`] pushes.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Connections opened per second (open loop); `None` = closed loop, as fast as it goes.
    pub rate: Option<f64>,
    /// Connections in flight at most.
    pub concurrency: usize,
    pub duration: Duration,
}

/// What [`drive`] did.
#[derive(Debug, Clone, Copy)]
pub struct Driven {
    pub completed: u64,
    /// Connections that failed (connect or exchange); the measurement should have none.
    pub failed: u64,
    /// Open loop: ticks skipped because `concurrency` connections were in flight.
    pub skipped: u64,
    pub elapsed: Duration,
    /// Monotonic ns when the first connection started and the last one closed.
    pub window: (u64, u64),
}

impl Driven {
    pub fn per_second(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }
}

/// Short connections to `server` over the loopback of `ns`: the client sends
/// [`RATE_REQUEST`] bytes, the server answers [`RATE_RESPONSE`] bytes and closes first (so the
/// client never holds TIME_WAIT and ports do not run out), the client reads to the end and
/// closes. Server and client each run a tokio runtime on their own thread (two cores).
pub fn drive(ns: &NetNs, server: SocketAddr, load: Load) -> Result<Driven> {
    let stop = Arc::new(AtomicBool::new(false));
    let listener = ns.run_in(move || TcpListener::bind(server))?.with_context(|| format!("listening on {server}"))?;
    listener.set_nonblocking(true)?;
    let stop_server = stop.clone();
    let server_thread = std::thread::Builder::new().name("ct-rate-srv".into()).spawn(move || -> Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            while !stop_server.load(Ordering::Relaxed) {
                let Ok(accepted) = tokio::time::timeout(Duration::from_millis(50), listener.accept()).await else { continue };
                let (mut s, _) = accepted?;
                tokio::spawn(async move {
                    let mut req = [0u8; RATE_REQUEST];
                    if s.read_exact(&mut req).await.is_ok() {
                        let _ = s.write_all(&[b'r'; RATE_RESPONSE]).await;
                    }
                });
            }
            Ok(())
        })
    })?;
    let client = ns.spawn_in("ct-rate-cli", move || -> Result<Driven> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        rt.block_on(clients(server, load))
    });
    let result = client.and_then(|h| h.join().map_err(|_| anyhow!("rate client panicked"))?);
    stop.store(true, Ordering::Relaxed);
    server_thread.join().map_err(|_| anyhow!("rate server panicked"))??;
    result
}

async fn clients(server: SocketAddr, load: Load) -> Result<Driven> {
    let completed = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(tokio::sync::Semaphore::new(load.concurrency));
    let first = clock_ns();
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + load.duration;
    let mut skipped = 0;
    let mut tasks = tokio::task::JoinSet::new();
    let one = move |completed: Arc<AtomicU64>, failed: Arc<AtomicU64>, permit: tokio::sync::OwnedSemaphorePermit| async move {
        let r = tokio::time::timeout(Duration::from_secs(5), exchange(server)).await;
        let ok = matches!(r, Ok(Ok(())));
        (if ok { &completed } else { &failed }).fetch_add(1, Ordering::Relaxed);
        drop(permit);
    };
    match load.rate {
        None => {
            while tokio::time::Instant::now() < deadline {
                let permit = in_flight.clone().acquire_owned().await?;
                tasks.spawn(one(completed.clone(), failed.clone(), permit));
                while tasks.try_join_next().is_some() {}
            }
        }
        Some(rate) => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            while tokio::time::Instant::now() < deadline {
                tick.tick().await;
                match in_flight.clone().try_acquire_owned() {
                    Ok(permit) => {
                        tasks.spawn(one(completed.clone(), failed.clone(), permit));
                    }
                    Err(_) => skipped += 1,
                }
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    while tasks.join_next().await.is_some() {}
    Ok(Driven {
        completed: completed.load(Ordering::Relaxed),
        failed: failed.load(Ordering::Relaxed),
        skipped,
        elapsed: started.elapsed(),
        window: (first, clock_ns()),
    })
}

async fn exchange(server: SocketAddr) -> Result<()> {
    let mut s = tokio::net::TcpStream::connect(server).await?;
    s.write_all(&[b'q'; RATE_REQUEST]).await?;
    let mut resp = [0u8; RATE_RESPONSE];
    s.read_exact(&mut resp).await?;
    let mut end = [0u8; 1];
    ensure!(s.read(&mut end).await? == 0, "data after the response");
    Ok(())
}

/// Records of [`drive`]'s connections to `server` (both ends), by their server port and address.
pub fn rate_records<'r>(records: &'r [Record], server: SocketAddr) -> impl Iterator<Item = &'r Record> + 'r {
    records.iter().filter(move |r| {
        let c = &r.conn;
        (c.laddr == server.ip() && c.lport == server.port()) || (c.raddr == server.ip() && c.rport == server.port())
    })
}

/// A port block for one workload: unlikely to be shared with a concurrent run on the same host
/// (derived from the pid and a counter), below the ephemeral range.
pub fn port_block(size: u16) -> u16 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let blocks = 10_000 / u64::from(size);
    let n = (u64::from(std::process::id()) * 7 + NEXT.fetch_add(1, Ordering::Relaxed)) % blocks;
    20_000 + (n * u64::from(size)) as u16
}

/// The address `ip` with `port`.
pub fn at(ip: impl Into<IpAddr>, port: u16) -> SocketAddr {
    SocketAddr::new(ip.into(), port)
}

// --- the standard test bed and ground-truth run ---------------------------------------------------

/// Namespace `a` holds the loopback pair and the veth clients; namespace `b` the veth servers.
pub struct Bed {
    pub a: NetNs,
    pub b: NetNs,
    pub veth: crate::netns::VethPair,
}

pub const VETH_A4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 213, 0, 1);
pub const VETH_B4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 213, 0, 2);
pub const VETH_A6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 1);
pub const VETH_B6: std::net::Ipv6Addr = std::net::Ipv6Addr::new(0xfd00, 0x213, 0, 0, 0, 0, 0, 2);

/// One entry of `scenarios/comtrace/workload.yaml`.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Size {
    pub up: u64,
    pub down: u64,
    pub hold_ms: u64,
}

/// The payload sizes and hold times of the standard workload, from `scenarios/comtrace/workload.yaml`.
pub fn sizes() -> Result<Vec<Size>> {
    let path = crate::process::workspace_dir().join("scenarios/comtrace/workload.yaml");
    crate::scenario::load_with(&path, parse_sizes)
}

/// The sizes of a workload file's text.
pub fn parse_sizes(text: &str) -> Result<Vec<Size>> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        sizes: Vec<Size>,
    }
    let file: File = yaml_serde::from_str(text).context("parsing")?;
    ensure!(!file.sizes.is_empty() && file.sizes.len() <= 10, "1 to 10 sizes");
    Ok(file.sizes)
}

impl Bed {
    pub fn new(prefix: &str) -> Result<Bed> {
        let a = NetNs::new(&format!("{prefix}-a"))?;
        let b = NetNs::new(&format!("{prefix}-b"))?;
        let cfg = crate::netns::VethConfig {
            a_name: "ct-a".into(),
            b_name: "ct-b".into(),
            a_addrs: vec![format!("{VETH_A4}/24"), format!("{VETH_A6}/64")],
            b_addrs: vec![format!("{VETH_B4}/24"), format!("{VETH_B6}/64")],
            quiet: false,
            ..Default::default()
        };
        let veth = crate::netns::VethPair::new(&a, &b, &cfg)?;
        Ok(Bed { a, b, veth })
    }

    /// Four agents — `ctc-lo`/`cts-lo` (client and server on the loopback of `a`), `ctc-veth`
    /// (client in `a`) and `cts-veth` (server in `b`) — and every entry of [`sizes`] with either
    /// end closing first, over IPv4 and IPv6, on each path (with five sizes: 40 connections,
    /// 80 sockets).
    pub fn workload(&self) -> Result<Workload<'_>> {
        let sizes = sizes()?;
        let agents = vec![
            Agent { comm: "ctc-lo".into(), ns: &self.a },
            Agent { comm: "cts-lo".into(), ns: &self.a },
            Agent { comm: "ctc-veth".into(), ns: &self.a },
            Agent { comm: "cts-veth".into(), ns: &self.b },
        ];
        let base = port_block(100);
        let paths: [(usize, usize, IpAddr, IpAddr); 4] = [
            (0, 1, std::net::Ipv4Addr::LOCALHOST.into(), std::net::Ipv4Addr::LOCALHOST.into()),
            (0, 1, std::net::Ipv6Addr::LOCALHOST.into(), std::net::Ipv6Addr::LOCALHOST.into()),
            (2, 3, VETH_A4.into(), VETH_B4.into()),
            (2, 3, VETH_A6.into(), VETH_B6.into()),
        ];
        let mut conns = Vec::new();
        for (p, (client_agent, server_agent, client_ip, server_ip)) in paths.into_iter().enumerate() {
            for closer in [Side::Client, Side::Server] {
                for &Size { up, down, hold_ms } in &sizes {
                    // Server ports base..base+4, client ports from base+10: every 4-tuple unique.
                    let client_port = base + 10 + conns.len() as u16;
                    conns.push(ConnPlan {
                        client_agent,
                        server_agent,
                        client: at(client_ip, client_port),
                        server: at(server_ip, base + p as u16),
                        up,
                        down,
                        hold_ms,
                        closer,
                    });
                }
            }
        }
        Ok(Workload { agents, conns })
    }
}

impl Bed {
    /// The standard workload under `tracer`: waits up to `timeout` for every socket's record and
    /// checks them. A first problem also says how many TCP segments the bed's namespaces
    /// retransmitted meanwhile: a lost segment delays a close by a retransmission timeout
    /// (200 ms or more), the bed's doing, not the tracer's.
    pub fn trace(&self, tracer: &mut Tracer, timeout: Duration) -> Result<Traced> {
        let before = self.retransmitted()?;
        let truth = self.workload()?.run()?;
        let records = wait_for(tracer, &truth.expected, timeout);
        let mut problems = check(&truth, &records);
        if let Some(first) = problems.first_mut() {
            let n = self.retransmitted().map(|after| (after - before).to_string()).unwrap_or_else(|e| format!("? ({e:#})"));
            first.push_str(&format!(" [the bed retransmitted {n} TCP segments meanwhile]"));
        }
        Ok(Traced { truth, problems })
    }

    /// `Tcp: RetransSegs` of both namespaces.
    fn retransmitted(&self) -> Result<u64> {
        let mut sum = 0;
        for ns in [&self.a, &self.b] {
            let snmp = ns.run_in(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))??;
            sum += retrans_segs(&snmp).with_context(|| format!("no Tcp RetransSegs in {}'s /proc/net/snmp", ns.name()))?;
        }
        Ok(sum)
    }
}

/// What [`Bed::trace`] saw.
pub struct Traced {
    pub truth: Truth,
    /// [`check`]'s.
    pub problems: Vec<String>,
}

/// `Tcp: RetransSegs` of a `/proc/net/snmp` text (a header line, then a value line).
fn retrans_segs(snmp: &str) -> Option<u64> {
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let i = names.split_whitespace().position(|n| n == "RetransSegs")?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Waits until every expected socket has a record (or `timeout`), for a tracer given `filter`.
pub fn wait_for(tracer: &mut Tracer, expected: &[Expected], timeout: Duration) -> Vec<Record> {
    tracer.wait_records(timeout, |records| {
        expected.iter().all(|e| {
            records.iter().any(|r| {
                SocketAddr::new(r.conn.laddr, r.conn.lport) == e.local && SocketAddr::new(r.conn.raddr, r.conn.rport) == e.remote
            })
        })
    })
}

/// The ground-truth check of one implementation (the harness' conformance stage): the standard
/// workload under a tracer; returns one line per problem.
pub fn conformance(imp: &Implementation) -> Result<Vec<String>> {
    let bed = Bed::new(&format!("ctconf-{}", imp.lib))?;
    let mut tracer = Tracer::start(imp, &["--stats-interval-ms", "0"], Duration::from_secs(30))?;
    let mut problems = bed.trace(&mut tracer, Duration::from_secs(10))?.problems;
    let (code, stats, exit) = tracer.stop(Duration::from_secs(10))?;
    if code != 0 || !exit {
        problems.push(format!("after SIGINT: exit code {code}, exit line {exit}"));
    }
    for counter in ["events_lost", "untracked"] {
        if stats[counter] != 0 {
            problems.push(format!("final stats: {counter} = {}", stats[counter]));
        }
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(local: &str, remote: &str, pid: u32, rx: u64, tx: u64, start: u64, end: u64) -> Record {
        let (l, r): (SocketAddr, SocketAddr) = (local.parse().unwrap(), remote.parse().unwrap());
        let conn = Conn {
            start_ns: start,
            end_ns: end,
            rx_bytes: rx,
            tx_bytes: tx,
            pid,
            comm: "ctc".into(),
            laddr: l.ip(),
            lport: l.port(),
            raddr: r.ip(),
            rport: r.port(),
        };
        Record { conn, read_ns: end + 1 }
    }

    #[test]
    fn retransmissions_from_snmp() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin InSegs RetransSegs InErrs\nTcp: 1 200 17 3 0\n";
        assert_eq!(retrans_segs(snmp), Some(3));
        assert_eq!(retrans_segs("Tcp: RtoAlgorithm\nTcp: 1\n"), None);
    }

    #[test]
    fn check_finds_every_kind_of_wrong_record() {
        let e = Expected {
            conn: 0,
            side: Side::Client,
            pid: 7,
            comm: "ctc".into(),
            local: "127.0.0.1:20010".parse().unwrap(),
            remote: "127.0.0.1:20000".parse().unwrap(),
            rx_bytes: 5000,
            tx_bytes: 1234,
            start: (1_000_000_000, 1_000_100_000),
            end: (1_200_000_000, 1_200_100_000),
        };
        let truth = Truth { expected: vec![e], pids: vec![7] };
        let good = record("127.0.0.1:20010", "127.0.0.1:20000", 7, 5000, 1234, 1_000_050_000, 1_200_050_000);
        let other = record("10.0.0.1:1", "10.0.0.2:2", 99, 1, 1, 5, 6);
        assert!(check(&truth, &[good.clone(), other.clone()]).is_empty());

        let mut fin_counted = good.clone();
        fin_counted.conn.rx_bytes += 1;
        let mut wrong_owner = good.clone();
        wrong_owner.conn.pid = 8;
        let mut late = good.clone();
        late.conn.end_ns += 2 * SLACK_NS;
        let mut backwards = other.clone();
        backwards.conn.start_ns = 10;
        for (records, what) in [
            (vec![], "reported 0 times"),
            (vec![good.clone(), good.clone()], "reported 2 times"),
            (vec![fin_counted], "rx/tx 5001/1234"),
            (vec![wrong_owner], "owner 8"),
            (vec![late], "close +"),
            (vec![good, backwards], "malformed"),
        ] {
            let problems = check(&truth, &records);
            assert!(problems.iter().any(|p| p.contains(what)), "{what}: {problems:?}");
        }
    }
}
