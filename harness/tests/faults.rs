//! Faults: every implementation of the host's use cases (packetfilter, loadbalancer, jittergen
//! with TCX and with a netlink attach, comtrace; every library built in target/impls) is killed
//! with SIGKILL at three points — right after start, after `ready`, under traffic — and then
//! `harness clean` runs. Afterwards the machine is as before: the interface the implementation
//! was attached to has the same XDP, qdiscs and TC filters, no `bpfeval*` pin appeared, and no
//! BPF program the implementation held is still loaded. What was left behind before the clean
//! is named in its output.
//!
//! The implementations attach to a veth pair in the host namespace, made by the test: there a
//! leftover survives (a namespace would take it away with its interfaces). lsmbpf runs only in
//! the VM guest, whose teardown (power-off) takes everything with it. Needs root and the
//! binaries (`make build`); without them the tests fail and say so.

use std::process::Command;
use std::time::{Duration, Instant};

use harness::bpf;
use harness::cleanup;
use harness::netns::HostVeth;
use harness::process::{all_built_libs, Implementation, TempDir};

const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a run can leave on the pair's interfaces and in bpffs.
fn snapshot(veth: &HostVeth) -> Vec<String> {
    cleanup::leftovers(&[&veth.a, &veth.b])
}

/// Raw frames out of `iface` (AF_PACKET): they reach the peer's XDP, and pass `iface`'s egress.
fn send_frames(iface: &str, frame: &[u8], until: Instant) -> u64 {
    // SAFETY: plain socket calls on a socket this function owns and closes.
    unsafe {
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        assert!(
            fd >= 0,
            "AF_PACKET socket: {}",
            std::io::Error::last_os_error()
        );
        let name = std::ffi::CString::new(iface).unwrap();
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
        addr.sll_halen = 6;
        let mut sent = 0;
        while Instant::now() < until && sent < 1_000_000 {
            let r = libc::sendto(
                fd,
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            if r > 0 {
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        libc::close(fd);
        sent
    }
}

/// Ethernet + IPv4 + TCP SYN to 10.0.0.100:8080 from 10.0.0.1 (checksums do not matter here).
fn tcp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    f.extend([
        0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 100,
    ]);
    f.extend([
        0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    f
}

/// UDP to port 7001 (jittergen's rule): Ethernet + IPv4 + UDP.
fn udp_frame() -> Vec<u8> {
    let mut f = vec![0xff; 6];
    f.extend([0x02, 0, 0, 0, 0, 0x01, 0x08, 0x00]);
    f.extend([
        0x45, 0, 0, 32, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ]);
    f.extend([0x9c, 0x40, 0x1b, 0x59, 0, 12, 0, 0, b'f', b'a', b'u', b'l']);
    f
}

/// TCP connections on loopback (comtrace's tracepoint sees every one).
fn connections(until: Instant) -> u64 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            while Instant::now() < until + Duration::from_millis(200) {
                if listener.accept().is_err() {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        });
        let mut n = 0;
        while Instant::now() < until && n < 10_000 {
            if std::net::TcpStream::connect(addr).is_ok() {
                n += 1;
            }
        }
        n
    })
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Point {
    Start,
    Ready,
    Traffic,
}

/// One use case's way to run: the config, the interface it attaches to, and its traffic.
struct Case {
    usecase: &'static str,
    config: Option<String>,
    extra: Vec<String>,
    traffic: fn(&HostVeth, Instant) -> u64,
}

fn harness_clean() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_harness"))
        .arg("clean")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "harness clean failed: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Kills `imp` at `point`, runs `harness clean`, and checks that nothing is left.
fn kill_and_clean(
    imp: &Implementation,
    case: &Case,
    veth: &HostVeth,
    tmp: &TempDir,
    point: Point,
) -> Result<(), String> {
    // One case at a time: a parallel case's `harness clean` would remove (and name) our leftovers.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let what = format!("{}-{} killed at {point:?}", case.usecase, imp.lib);
    let before = snapshot(veth);
    let mut args: Vec<String> = Vec::new();
    if let Some(c) = &case.config {
        args.extend([
            "--config".into(),
            tmp.write("config.yml", c).unwrap().display().to_string(),
        ]);
    }
    args.extend(case.extra.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut running = imp
        .spawn(&args, None)
        .map_err(|e| format!("{what}: {e:#}"))?;
    let pid = running.pid();
    let mut held = Vec::new();
    let collect = |held: &mut Vec<u32>| {
        for id in bpf::prog_ids_of_pid(pid).unwrap_or_default() {
            if !held.contains(&id) {
                held.push(id);
            }
        }
    };
    match point {
        Point::Start => std::thread::sleep(Duration::from_millis(30)),
        Point::Ready | Point::Traffic => {
            running
                .wait_ready(READY_TIMEOUT)
                .map_err(|e| format!("{what}: {e:#}; stderr: {}", running.stderr()))?;
        }
    }
    collect(&mut held);
    if point == Point::Traffic {
        let until = Instant::now() + Duration::from_millis(600);
        let traffic = case.traffic;
        std::thread::scope(|s| {
            let t = s.spawn(|| traffic(veth, until));
            std::thread::sleep(Duration::from_millis(300));
            collect(&mut held);
            running.signal(libc::SIGKILL).unwrap();
            assert!(t.join().unwrap() > 0, "{what}: no traffic sent");
        });
    } else {
        collect(&mut held);
        running.signal(libc::SIGKILL).unwrap();
    }
    running
        .wait_exit(Duration::from_secs(10))
        .map_err(|e| format!("{what}: {e:#}"))?;
    let left = snapshot(veth);
    let cleaned = harness_clean();
    let after = snapshot(veth);
    if after != before {
        return Err(format!("{what}: left behind after `harness clean`:\nbefore {before:#?}\nafter {after:#?}\nclean said: {cleaned}"));
    }
    if left != before && !cleaned.contains(&veth.a) && !cleaned.contains(&veth.b) {
        return Err(format!(
            "{what}: `harness clean` removed {left:#?} without naming it: {cleaned}"
        ));
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while held.iter().any(|id| bpf::prog_exists(*id)) {
        if Instant::now() > deadline {
            return Err(format!(
                "{what}: programs {held:?} still loaded; clean said: {cleaned}"
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "{what}: {} program(s) held; clean: {}",
        held.len(),
        cleaned.trim().replace('\n', "; ")
    );
    Ok(())
}

/// Every library of `case.usecase` (at least the ones every use case has) at every point.
fn run_case(tag: &str, case: impl Fn(&HostVeth) -> Case) {
    bpf::check_privileges().unwrap_or_else(|e| panic!("{e:#}"));
    let veth = HostVeth::new(tag).unwrap();
    let case = case(&veth);
    let libs = all_built_libs(case.usecase).unwrap_or_else(|e| panic!("{e:#}"));
    let tmp = TempDir::new(&format!("faults-{tag}")).unwrap();
    let mut failures = Vec::new();
    for lib in &libs {
        let imp = Implementation::require(case.usecase, lib);
        for point in [Point::Start, Point::Ready, Point::Traffic] {
            if let Err(e) = kill_and_clean(&imp, &case, &veth, &tmp, point) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn packetfilter_killed() {
    run_case("p", |v| Case {
        usecase: "packetfilter",
        config: Some(format!(
            "rules:\n  interface: {}\n  ipv4:\n    default: allow\n    block: [10.0.0.1]\n",
            v.b
        )),
        extra: vec!["--stats-interval-ms".into(), "100".into()],
        traffic: |v, until| send_frames(&v.a, &tcp_frame(), until),
    });
}

#[test]
fn loadbalancer_killed() {
    run_case("l", |v| Case {
        usecase: "loadbalancer",
        config: Some(format!(
            "listenInterface: {}\ntcp_port: 8080\nbackends: [\"02:00:00:00:00:0b\"]\n",
            v.b
        )),
        extra: vec!["--stats-interval-ms".into(), "100".into()],
        traffic: |v, until| send_frames(&v.a, &tcp_frame(), until),
    });
}

fn jittergen(v: &HostVeth, attach: &str) -> Case {
    Case {
        usecase: "jittergen",
        config: Some(format!(
            "outIf: {}\naction: drop\nmatch: {{percent: 50, protocol: udp, port: 7001}}\ntcAttach: {attach}\n",
            v.a
        )),
        extra: vec!["--stats-interval-ms".into(), "100".into()],
        traffic: |v, until| send_frames(&v.a, &udp_frame(), until),
    }
}

#[test]
fn jittergen_tcx_killed() {
    run_case("t", |v| jittergen(v, "tcx"));
}

#[test]
fn jittergen_netlink_killed() {
    run_case("n", |v| jittergen(v, "netlink"));
}

#[test]
fn comtrace_killed() {
    run_case("c", |_| Case {
        usecase: "comtrace",
        config: None,
        extra: vec!["--stats-interval-ms".into(), "100".into()],
        traffic: |_, until| connections(until),
    });
}
