//! Requests come first: the web server counts the requests it is answering, and `serve`'s
//! embedding threads wait between texts while any are in flight or one came in the last
//! moment. Even at nice 19, a forward pass running beside the requests costs them time
//! slices, which shows in their tail latency (`bench/signup.sh`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// What the web server is doing, as background work needs to know it.
pub struct Foreground {
    epoch: Instant,
    in_flight: AtomicUsize,
    /// When the last request began or ended, in ms since `epoch`.
    last: AtomicU64,
}

/// The web counts as busy this long after its last request.
const QUIET: Duration = Duration::from_millis(200);
/// Quiet this long, the web is settled: background work goes at full speed.
const SETTLED: Duration = Duration::from_secs(5);
/// Background work waits at most this long at a time: under unbroken load, one batch
/// goes through every minute, so a backlog still shrinks.
const LONGEST_WAIT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

impl Default for Foreground {
    fn default() -> Self {
        Self { epoch: Instant::now(), in_flight: AtomicUsize::new(0), last: AtomicU64::new(0) }
    }
}

/// A request being answered; dropping it ends it.
pub struct Request<'a>(&'a Foreground);

impl Drop for Request<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.stamp();
    }
}

impl Foreground {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn stamp(&self) {
        self.last.store(self.now_ms(), Ordering::Relaxed);
    }

    /// A request begins; it ends when the value is dropped.
    pub fn begin(&self) -> Request<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.stamp();
        Request(self)
    }

    /// Whether no request is being answered and none was for `span`.
    fn idle_for(&self, span: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
            && self.now_ms().saturating_sub(self.last.load(Ordering::Relaxed))
                >= span.as_millis() as u64
    }

    /// Whether requests are being answered, or one was a moment ago.
    pub fn busy(&self) -> bool {
        !self.idle_for(QUIET)
    }

    /// Whether the web has been idle for a while (`SETTLED`).
    pub fn settled(&self) -> bool {
        self.idle_for(SETTLED)
    }

    /// Blocks the calling (background) thread while the web is busy, at most `LONGEST_WAIT`.
    pub fn wait_until_quiet(&self) {
        let started = Instant::now();
        while self.busy() && started.elapsed() < LONGEST_WAIT {
            std::thread::sleep(POLL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_while_a_request_runs_and_a_moment_after() {
        let web = Foreground::default();
        std::thread::sleep(QUIET);
        assert!(!web.busy(), "nothing asked yet");
        assert!(!web.settled(), "not for long");
        let request = web.begin();
        assert!(web.busy());
        std::thread::sleep(QUIET + POLL);
        assert!(web.busy(), "still answering");
        drop(request);
        assert!(web.busy(), "just answered");
        let waited = Instant::now();
        web.wait_until_quiet();
        assert!(waited.elapsed() >= QUIET - POLL && !web.busy());
    }
}
