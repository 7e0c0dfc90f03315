//! xdp-filter (the reference) takes a global lock file for every command and fails while it
//! exists, whoever holds it; killed with a dead run's namespace by `harness clean`, it leaves the
//! lock, and every later xdp-filter fails ("Unable to read PID from lockfile": a CI run failed so).
//! Here: a lock of a dead pid is removed by `harness clean` (and named) and by the harness before
//! it runs xdp-filter; a lock a live xdp-filter holds is left alone and waited for, bounded.
//! Needs root and xdp-tools.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use harness::netns::{NetNs, VethConfig, VethPair};
use harness::process::TempDir;
use harness::reference::{XdpFilter, XDP_FILTER_LOCK};

fn harness_clean() -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_harness")).arg("clean").output().unwrap();
    assert!(out.status.success(), "harness clean: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A pid no process has (now): a child that exited and was reaped.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    c.id()
}

/// A live process whose command line names xdp-filter, as a running xdp-filter's does, written
/// into the lock.
struct FakeHolder {
    child: Child,
    _dir: TempDir,
}

impl FakeHolder {
    fn start() -> FakeHolder {
        let dir = TempDir::new("lock").unwrap();
        let exe = dir.path().join("xdp-filter");
        std::os::unix::fs::symlink("/bin/sleep", &exe).unwrap();
        let child = Command::new(&exe).arg("60").spawn().unwrap();
        std::fs::write(XDP_FILTER_LOCK, format!("{}\n", child.id())).unwrap();
        FakeHolder { child, _dir: dir }
    }
}

impl Drop for FakeHolder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(XDP_FILTER_LOCK);
    }
}

/// A namespace with a veth end xdp-filter can attach to.
fn bed() -> (NetNs, VethPair) {
    let ns = NetNs::new("xflock").unwrap();
    let cfg = VethConfig { a_name: "xf-a".into(), b_name: "xf-b".into(), ..Default::default() };
    let pair = VethPair::new(&ns, &ns, &cfg).unwrap();
    (ns, pair)
}

fn blocked() -> Vec<IpAddr> {
    vec!["10.9.9.9".parse().unwrap()]
}

#[test]
fn xdp_filter_lock() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "run the tests as root");
    assert!(!Path::new(XDP_FILTER_LOCK).exists(), "{XDP_FILTER_LOCK} exists before the test: `harness clean`");
    let (ns, _pair) = bed();

    // A dead holder's lock: `harness clean` removes it and says so; a second clean finds nothing.
    let pid = dead_pid();
    std::fs::write(XDP_FILTER_LOCK, format!("{pid}\n")).unwrap();
    let cleaned = harness_clean();
    assert!(cleaned.contains(&format!("xdp-filter lock {XDP_FILTER_LOCK} of dead pid {pid}")), "clean said: {cleaned}");
    assert!(!Path::new(XDP_FILTER_LOCK).exists());
    assert_eq!(harness_clean().trim(), "nothing to clean");

    // The same left behind before a run: the harness removes it and xdp-filter loads, filters
    // and unloads, leaving no lock.
    std::fs::write(XDP_FILTER_LOCK, format!("{}\n", dead_pid())).unwrap();
    {
        let xf = XdpFilter::load(&ns, "xf-b", &blocked()).expect("xdp-filter despite a dead holder's lock");
        xf.prog().unwrap();
    }
    assert!(ns.xdp("xf-b").unwrap().is_none(), "xdp-filter still attached after drop");
    assert!(!Path::new(XDP_FILTER_LOCK).exists(), "xdp-filter left its lock");

    // A live holder's lock: clean leaves it; the harness waits for its release.
    {
        let holder = FakeHolder::start();
        assert!(!harness_clean().contains("lock"));
        assert!(Path::new(XDP_FILTER_LOCK).exists(), "clean removed a live holder's lock");
        let start = Instant::now();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            drop(holder);
        });
        let xf = XdpFilter::load(&ns, "xf-b", &blocked()).expect("xdp-filter after the holder released its lock");
        assert!(start.elapsed() >= Duration::from_secs(1), "loaded while the lock was held");
        release.join().unwrap();
        drop(xf);
    }

    // A holder that never releases: a bounded wait, then an error naming the lock and its pid.
    let holder = FakeHolder::start();
    let start = Instant::now();
    let err = XdpFilter::load(&ns, "xf-b", &blocked()).err().expect("loaded while the lock was held");
    let msg = format!("{err:#}");
    assert!(msg.contains(XDP_FILTER_LOCK) && msg.contains(&holder.child.id().to_string()), "{msg}");
    assert!(start.elapsed() < Duration::from_secs(30), "waited {:?}", start.elapsed());
    assert!(ns.xdp("xf-b").unwrap().is_none(), "attached although it failed");
}
