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
