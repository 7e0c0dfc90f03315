//! Traffic through an attached program: a pnet frame generator for packets per second, and a
//! UDP echo for request latency. Both run on threads inside the namespaces the caller made,
//! and both are bounded in count and time.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use pnet::datalink::{self, Channel};

use crate::netns::NetNs;

/// Sends `frame` up to `count` times (or until `max` elapsed) out of `ifname` in `ns`.
/// Returns how many were sent and how long it took.
pub fn blast(ns: &NetNs, ifname: &str, frame: &[u8], count: u64, max: Duration) -> Result<(u64, Duration)> {
    let ifname = ifname.to_string();
    let frame = frame.to_vec();
    ns.run_in(move || {
        let iface = datalink::interfaces()
            .into_iter()
            .find(|i| i.name == ifname)
            .with_context(|| format!("no interface {ifname} in the sender namespace"))?;
        let config = datalink::Config { write_buffer_size: 1 << 20, ..Default::default() };
        let Channel::Ethernet(mut tx, _rx) = datalink::channel(&iface, config)? else {
            bail!("unexpected pnet channel type");
        };
        let started = Instant::now();
        let mut sent = 0u64;
        while sent < count {
            match tx.send_to(&frame, None) {
                Some(Ok(())) => sent += 1,
                // The socket buffer is full: the receiver is the bottleneck, which is what we
                // measure; try again.
                Some(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => std::thread::yield_now(),
                Some(Err(e)) => return Err(e).context("sending a frame"),
                None => bail!("pnet send_to returned nothing"),
            }
            if sent % 1024 == 0 && started.elapsed() > max {
                break;
            }
        }
        Ok((sent, started.elapsed()))
    })?
}

/// Round-trip times in microseconds of `count` UDP requests from `client_ns` to an echo server
/// at `server` in `server_ns`. A request without an answer within a second counts as lost.
pub fn udp_echo_rtt_us(client_ns: &NetNs, server_ns: &NetNs, server: SocketAddr, count: u32) -> Result<(Vec<f64>, u32)> {
    let socket = server_ns.run_in(move || UdpSocket::bind(server))??;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop_server = stop.clone();
    let server_thread = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        while !stop_server.load(std::sync::atomic::Ordering::Relaxed) {
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
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = server_thread.join();
    result?
}
