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
