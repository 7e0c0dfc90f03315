//! Reading ring buffers alike in every library: waiting on the map's file descriptor where the
//! reader does not wait itself (aya's `RingBuf` only exposes its pollable map fd), and records
//! handed to the sink in place (see [`PollSink`]).

use std::cell::Cell;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;
use std::rc::Rc;
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

/// The sink of the poll under way, for a ring buffer callback fixed when the ring buffer was
/// built (libbpf-rs's `RingBufferBuilder::add`) while the lifecycle hands a sink to each poll.
///
/// Every reader here hands each record to the sink in place, before the record is released, as
/// each library's own examples do (libbpf's and libbpf-rs's callbacks, aya's `RingBuf::next`
/// items; cilium/ebpf's `Reader` is the exception: it copies and releases before returning).
/// That matters to the program's cost: the kernel wakes the reader from inside the program's
/// run (`bpf_ringbuf_commit`) only when the reader had consumed everything before the new
/// record. A reader that copied records out and printed them afterwards would be caught up
/// while it prints, and every burst would cost a wake-up (measured: comtrace's `prog_run_ns`
/// with the reader running 1.19 µs copying vs 0.49 µs in place, and a 2× connection overhead).
#[derive(Clone, Default)]
pub struct PollSink(Rc<Cell<Option<NonNull<dyn FnMut(&[u8])>>>>);

impl PollSink {
    /// Runs `poll` with `sink` reachable from [`PollSink::forward`].
    pub fn during<R>(&self, sink: &mut dyn FnMut(&[u8]), poll: impl FnOnce() -> R) -> R {
        struct Clear<'a>(&'a Cell<Option<NonNull<dyn FnMut(&[u8])>>>);
        impl Drop for Clear<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        // SAFETY: only the lifetime is erased; the pointer is reachable only while `poll` runs
        // (cleared on return and on unwind), and `sink` is borrowed for all of that time.
        let erased: NonNull<dyn FnMut(&[u8])> = unsafe { std::mem::transmute(NonNull::from(sink)) };
        self.0.set(Some(erased));
        let _clear = Clear(&self.0);
        poll()
    }

    /// Hands `record` to the sink of the poll under way. The callbacks run only inside a poll.
    pub fn forward(&self, record: &[u8]) {
        if let Some(mut sink) = self.0.get() {
            // SAFETY: set by `during` for the poll that runs this callback (see there); no other
            // reference to the sink is used meanwhile.
            unsafe { sink.as_mut()(record) }
        }
    }
}
