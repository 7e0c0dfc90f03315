//! Waiting on a ring buffer's file descriptor, for libraries whose ring buffer reader does not
//! wait itself (aya's `RingBuf` only exposes its pollable map fd).

use std::os::fd::{AsRawFd, BorrowedFd};
use std::time::Duration;

/// Waits until `fd` is readable or `timeout` has passed. A signal interrupting the wait is not
/// an error: it is a stop or reload request, which the lifecycle handles next.
pub fn readable(fd: BorrowedFd<'_>, timeout: Duration) -> std::io::Result<()> {
    let mut pfd = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    if unsafe { libc::poll(&mut pfd, 1, ms) } < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(())
}

/// Drains a ring buffer the way every consumer here does: `next_copy` copies a record out and
/// releases it at once, and the copies go to `sink` only when the buffer is empty. libbpf's
/// `ring_buffer__poll` (libbpf-rs, RedBPF) must be consumed so, since its callback cannot reach
/// the sink. A reader that released each record only after printing it would lag behind, and
/// the kernel wakes a reader (inside the program's run time) only when it had caught up: such a
/// program would pay for fewer wake-ups than the other libraries' programs do.
pub fn drain_copied(next_copy: impl FnMut() -> Option<Vec<u8>>, sink: &mut dyn FnMut(&[u8])) {
    let copies: Vec<Vec<u8>> = std::iter::from_fn(next_copy).collect();
    for record in &copies {
        sink(record);
    }
}
