//! Real frames on a veth: raw `AF_PACKET` channels (pnet datalink) opened inside a namespace.
//!
//! * [`Sender`]: writes crafted frames on an interface (the socket lives in the namespace it was
//!   opened in, whichever thread uses it later).
//! * [`Capture`]: records the frames that arrive on an interface and carry a marker. On an
//!   interface with an XDP program, `AF_PACKET` sees only what the program passed.
//!
//! Marked frames carry `<marker><id>` as the last bytes of their payload (see
//! [`Capture::start`]); everything else on the link is ignored, so the capture never mistakes a
//! stray frame for one of the test's. Traffic stays on the test's own veth pairs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pnet::datalink::{self, Channel, DataLinkReceiver, DataLinkSender};

use crate::netns::NetNs;

/// Opens a raw layer-2 channel on `ifname` inside `ns`.
pub fn channel(
    ns: &NetNs,
    ifname: &str,
    read_timeout: Duration,
) -> Result<(Box<dyn DataLinkSender>, Box<dyn DataLinkReceiver>)> {
    let ifname = ifname.to_string();
    ns.run_in(move || -> Result<_> {
        let iface = datalink::interfaces()
            .into_iter()
            .find(|i| i.name == ifname)
            .ok_or_else(|| anyhow!("no interface {ifname} in this namespace"))?;
        let config = datalink::Config {
            read_timeout: Some(read_timeout),
            write_timeout: Some(Duration::from_secs(1)),
            read_buffer_size: 65536,
            ..Default::default()
        };
        match datalink::channel(&iface, config).with_context(|| format!("AF_PACKET channel on {ifname}"))? {
            Channel::Ethernet(tx, rx) => Ok((tx, rx)),
            _ => bail!("unexpected channel type on {ifname}"),
        }
    })?
}

/// Sends frames on one interface.
pub struct Sender {
    tx: Box<dyn DataLinkSender>,
    ifname: String,
    /// Frames sent so far.
    pub sent: u64,
}

impl Sender {
    /// Opens a sender on `ifname` inside `ns`.
    pub fn open(ns: &NetNs, ifname: &str) -> Result<Sender> {
        let (tx, _rx) = channel(ns, ifname, Duration::from_millis(10))?;
        Ok(Sender { tx, ifname: ifname.into(), sent: 0 })
    }

    /// Sends one frame.
    pub fn send(&mut self, frame: &[u8]) -> Result<()> {
        match self.tx.send_to(frame, None) {
            Some(Ok(())) => {
                self.sent += 1;
                Ok(())
            }
            Some(Err(e)) => Err(e).with_context(|| format!("sending {} bytes on {}", frame.len(), self.ifname)),
            None => bail!("sending on {}: no room in the write buffer", self.ifname),
        }
    }

    /// Sends every frame, sleeping `pace` after each (so that a veth's 256-frame ring never
    /// overflows; frames it drops would count nowhere).
    pub fn send_all(&mut self, frames: &[Vec<u8>], pace: Duration) -> Result<()> {
        for f in frames {
            self.send(f)?;
            if !pace.is_zero() {
                std::thread::sleep(pace);
            }
        }
        Ok(())
    }
}

/// Records the marked frames that arrive on an interface, on a background thread.
pub struct Capture {
    seen: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<()>>>,
}

impl Capture {
    /// How long the capture runs at most, whatever happens to the test.
    pub const MAX_RUNTIME: Duration = Duration::from_secs(600);

    /// Starts capturing on `ifname` inside `ns`. A frame counts if `marker` occurs in it; what
    /// follows the marker (to the end of the frame, as UTF-8) is recorded as its id.
    pub fn start(ns: &NetNs, ifname: &str, marker: &str) -> Result<Capture> {
        let (_tx, mut rx) = channel(ns, ifname, Duration::from_millis(50))?;
        drop(_tx);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen2, stop2, marker) = (seen.clone(), stop.clone(), marker.as_bytes().to_vec());
        let thread = std::thread::Builder::new()
            .name(format!("capture-{ifname}"))
            .spawn(move || -> Result<()> {
                let deadline = Instant::now() + Self::MAX_RUNTIME;
                while !stop2.load(Ordering::Relaxed) && Instant::now() < deadline {
                    match rx.next() {
                        Ok(frame) => {
                            if let Some(at) = find(frame, &marker) {
                                let id = String::from_utf8_lossy(&frame[at + marker.len()..]).into_owned();
                                seen2.lock().unwrap().push(id);
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e).context("capture"),
                    }
                }
                Ok(())
            })
            .context("spawning the capture thread")?;
        Ok(Capture { seen, stop, thread: Some(thread) })
    }

    /// Ids seen so far, in arrival order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Waits until no new frame arrived for `quiet` (at most `max`); returns the ids seen.
    pub fn settle(&self, quiet: Duration, max: Duration) -> Vec<String> {
        let deadline = Instant::now() + max;
        let mut last = self.count();
        let mut since = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
            let n = self.count();
            if n != last {
                last = n;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                break;
            }
        }
        self.seen()
    }

    /// Stops the capture and returns every id seen.
    pub fn stop(mut self) -> Result<Vec<String>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            t.join().map_err(|_| anyhow!("capture thread panicked"))??;
        }
        Ok(self.seen())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Round-trip times in microseconds of `count` UDP requests from `client_ns` to an echo server
/// at `server` in `server_ns`. A request without an answer within a second counts as lost.
pub fn udp_echo_rtt_us(client_ns: &NetNs, server_ns: &NetNs, server: SocketAddr, count: u32) -> Result<(Vec<f64>, u32)> {
    let socket = server_ns.run_in(move || UdpSocket::bind(server))??;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let stop = Arc::new(AtomicBool::new(false));
    let stop_server = stop.clone();
    let server_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while !stop_server.load(Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&buf[..n], from);
            }
        }
    });
    let result = client_ns.run_in(move || -> Result<(Vec<f64>, u32)> {
        let client = UdpSocket::bind(if server.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
        client.connect(server)?;
        client.set_read_timeout(Some(Duration::from_secs(1)))?;
        let mut rtts = Vec::with_capacity(count as usize);
        let mut lost = 0;
        let mut buf = [0u8; 64];
        for seq in 0..count {
            let started = Instant::now();
            client.send(&seq.to_be_bytes())?;
            // Skip stale answers to requests that already timed out.
            loop {
                match client.recv(&mut buf) {
                    Ok(4) if buf[..4] == seq.to_be_bytes() => {
                        rtts.push(started.elapsed().as_secs_f64() * 1e6);
                        break;
                    }
                    Ok(_) => continue,
                    Err(_) => {
                        lost += 1;
                        break;
                    }
                }
            }
        }
        Ok((rtts, lost))
    });
    stop.store(true, Ordering::Relaxed);
    let _ = server_thread.join();
    result?
}
