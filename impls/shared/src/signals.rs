//! SIGINT/SIGTERM end a loader (after detaching), SIGHUP reloads its configuration.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    Stop,
    Reload,
}

pub struct Signals {
    stop: Arc<AtomicBool>,
    reload: Arc<AtomicBool>,
}

impl Signals {
    /// Registers the handlers. Call before attaching anything, so that a signal arriving during
    /// load is not lost and never kills the process with programs attached.
    pub fn install() -> std::io::Result<Self> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let stop = Arc::new(AtomicBool::new(false));
        let reload = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGINT, stop.clone())?;
        signal_hook::flag::register(SIGTERM, stop.clone())?;
        signal_hook::flag::register(SIGHUP, reload.clone())?;
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            on_alternate_stack(signal)?;
        }
        Ok(Self { stop, reload })
    }

    /// The pending request, if any; stop takes precedence over reload.
    pub fn take(&self) -> Option<Request> {
        if self.stop.load(Ordering::Relaxed) {
            Some(Request::Stop)
        } else if self.reload.swap(false, Ordering::Relaxed) {
            Some(Request::Reload)
        } else {
            None
        }
    }
}

/// Adds `SA_ONSTACK` to `signal`'s handler. A loader whose library runs Go code (cilium/ebpf
/// through a C archive) needs it: a signal can arrive while a thread runs on a small goroutine
/// stack, and the Go runtime demands that foreign handlers switch to the alternate signal stack it
/// sets up (<https://pkg.go.dev/os/signal>, "Go programs that use cgo"). Elsewhere it is a no-op:
/// a thread without an alternate stack handles the signal on its own stack.
fn on_alternate_stack(signal: i32) -> std::io::Result<()> {
    // SAFETY: sigaction with a NULL new action only reads the current one; the second call
    // installs that same action (signal-hook's handler) with one more flag.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(signal, std::ptr::null(), &mut action) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        action.sa_flags |= libc::SA_ONSTACK;
        if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
