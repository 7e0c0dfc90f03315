//! Backends given by IP get their MAC from the kernel's neighbour table (ARP / NDP), read with
//! one rtnetlink `RTM_GETNEIGH` dump of the loader's network namespace.

use std::io;
use std::net::IpAddr;

const RTM_NEWNEIGH: u16 = 28;
const RTM_GETNEIGH: u16 = 30;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_DUMP: u16 = 0x300;
const NDA_DST: u16 = 1;
const NDA_LLADDR: u16 = 2;
/// States with a usable link-layer address: REACHABLE, STALE, DELAY, PROBE, PERMANENT.
const NUD_USABLE: u16 = 0x02 | 0x04 | 0x08 | 0x10 | 0x80;
const NLMSG_HDRLEN: usize = 16;
const NDMSG_LEN: usize = 12;

/// The MAC of `addr` on interface `ifindex`, if the neighbour table has a usable entry.
pub fn lookup(ifindex: u32, addr: IpAddr) -> io::Result<Option<[u8; 6]>> {
    let family = if addr.is_ipv4() { libc::AF_INET } else { libc::AF_INET6 } as u8;
    // SAFETY: plain socket(2) call; the fd is owned right away.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh socket nothing else owns.
    let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    use std::os::fd::AsRawFd;

    let mut req = [0u8; NLMSG_HDRLEN + NDMSG_LEN];
    req[0..4].copy_from_slice(&((NLMSG_HDRLEN + NDMSG_LEN) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&RTM_GETNEIGH.to_ne_bytes());
    req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes()); // sequence number
    req[NLMSG_HDRLEN] = family;
    // SAFETY: sending a buffer we own to the kernel (destination: the default, the kernel).
    if unsafe { libc::send(sock.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } < 0 {
        return Err(io::Error::last_os_error());
    }

    let mut found = None;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // SAFETY: receiving into a buffer we own, of the length passed.
        let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut msgs = &buf[..n as usize];
        while msgs.len() >= NLMSG_HDRLEN {
            let len = u32::from_ne_bytes(msgs[0..4].try_into().unwrap()) as usize;
            let kind = u16::from_ne_bytes(msgs[4..6].try_into().unwrap());
            if len < NLMSG_HDRLEN || len > msgs.len() {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "truncated netlink message"));
            }
            let body = &msgs[NLMSG_HDRLEN..len];
            match kind {
                NLMSG_DONE => return Ok(found),
                NLMSG_ERROR => {
                    let errno = i32::from_ne_bytes(body.get(0..4).unwrap_or(&[0; 4]).try_into().unwrap());
                    if errno != 0 {
                        return Err(io::Error::from_raw_os_error(-errno));
                    }
                }
                RTM_NEWNEIGH if found.is_none() => found = match_entry(body, family, ifindex, addr),
                _ => {}
            }
            msgs = &msgs[len.next_multiple_of(4).min(msgs.len())..];
        }
    }
}

/// One `ndmsg` and its attributes: the link-layer address if it is the entry we look for.
fn match_entry(body: &[u8], family: u8, ifindex: u32, addr: IpAddr) -> Option<[u8; 6]> {
    if body.len() < NDMSG_LEN || body[0] != family {
        return None;
    }
    let index = i32::from_ne_bytes(body[4..8].try_into().unwrap());
    let state = u16::from_ne_bytes(body[8..10].try_into().unwrap());
    if index as u32 != ifindex || state & NUD_USABLE == 0 {
        return None;
    }
    let want: Vec<u8> = match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let (mut dst, mut lladdr) = (None, None);
    let mut attrs = &body[NDMSG_LEN..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes(attrs[0..2].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(attrs[2..4].try_into().unwrap());
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        match kind {
            NDA_DST => dst = Some(data),
            NDA_LLADDR => lladdr = Some(data),
            _ => {}
        }
        attrs = &attrs[len.next_multiple_of(4).min(attrs.len())..];
    }
    match (dst, lladdr) {
        (Some(d), Some(l)) if d == want.as_slice() && l.len() == 6 => Some(l.try_into().unwrap()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_works_and_absent_entries_are_none() {
        // Loopback has no neighbours; the dump itself must succeed.
        assert_eq!(lookup(1, "192.0.2.77".parse().unwrap()).unwrap(), None);
        assert_eq!(lookup(1, "2001:db8::77".parse().unwrap()).unwrap(), None);
    }
}
