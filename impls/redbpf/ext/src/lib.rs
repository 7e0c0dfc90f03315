//! What the RedBPF loaders need and RedBPF 2.3.0's user-space API lacks, written once for all of
//! them (a RedBPF user would write it once too). Not an idiom of the library, so not repeated
//! per tool like the map access each loader does through RedBPF itself.

use std::ffi::c_void;
use std::io;
use std::os::raw::c_int;
use std::os::unix::io::AsRawFd;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use redbpf::Map;

/// A ring buffer consumer: RedBPF reads only perf event arrays, so this is libbpf's, from bpf-sys
/// (RedBPF's own libbpf binding), on the fd of the map RedBPF created from the object.
/// The callback hands each record to the sink of the poll under way, in place, as libbpf's own
/// examples do: the record is released after the sink (bpfeval_shared's `PollSink` says why).
pub struct RingBuffer {
    rb: *mut bpf_sys::ring_buffer,
    /// The sink of the poll under way; boxed: the callback holds its address.
    sink: Box<Option<*mut dyn FnMut(&[u8])>>,
}

unsafe extern "C" fn forward(ctx: *mut c_void, data: *mut c_void, size: bpf_sys::size_t) -> c_int {
    // SAFETY: `ctx` is the live `sink` slot, set for the poll that runs this callback; `data`
    // holds `size` bytes.
    if let Some(sink) = *(ctx as *const Option<*mut dyn FnMut(&[u8])>) {
        (*sink)(std::slice::from_raw_parts(data as *const u8, size as usize));
    }
    0
}

impl RingBuffer {
    pub fn new(map: &Map) -> Result<Self> {
        let mut sink: Box<Option<*mut dyn FnMut(&[u8])>> = Box::new(None);
        let ctx = &mut *sink as *mut Option<*mut dyn FnMut(&[u8])> as *mut c_void;
        // SAFETY: a valid ring buffer map fd; `ctx` outlives the consumer (both live in `Self`).
        let rb = unsafe { bpf_sys::ring_buffer__new(map.as_raw_fd(), Some(forward), ctx, std::ptr::null()) };
        if rb.is_null() {
            return Err(io::Error::last_os_error()).with_context(|| format!("ring_buffer__new on `{}`", map.name));
        }
        Ok(Self { rb, sink })
    }

    /// Waits at most `timeout` for records and hands each one to `sink`.
    pub fn poll(&mut self, timeout: Duration, sink: &mut dyn FnMut(&[u8])) -> Result<()> {
        let ms = i32::try_from(timeout.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: only the lifetime is erased; the slot is cleared before `sink`'s borrow ends.
        *self.sink = Some(unsafe { std::mem::transmute::<&mut dyn FnMut(&[u8]), *mut dyn FnMut(&[u8])>(sink) });
        // SAFETY: `rb` is live until drop.
        let n = unsafe { bpf_sys::ring_buffer__poll(self.rb, ms) };
        *self.sink = None;
        // A signal (stop, reload) interrupts the wait; the caller handles it next.
        if n < 0 && n != -libc::EINTR {
            bail!("ring_buffer__poll: {}", io::Error::from_raw_os_error(-n));
        }
        Ok(())
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        // SAFETY: created by ring_buffer__new, freed once.
        unsafe { bpf_sys::ring_buffer__free(self.rb) }
    }
}

/// The name of interface `ifindex`: RedBPF attaches XDP by interface name, the contract hands
/// the loader an index.
pub fn interface_name(ifindex: u32) -> Result<String> {
    let mut name = [0u8; libc::IF_NAMESIZE];
    // SAFETY: the buffer has the IF_NAMESIZE bytes if_indextoname writes at most.
    if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr() as *mut _) }.is_null() {
        return Err(io::Error::last_os_error()).with_context(|| format!("no interface with index {}", ifindex));
    }
    let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    Ok(String::from_utf8_lossy(&name[..len]).into_owned())
}
