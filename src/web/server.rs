//! The HTTP/1.1 server in front of the router: timeouts, a connection cap, graceful stop.
//!
//! `axum::serve` gives hyper no timer, so a client that dribbles its headers or idles on a
//! keep-alive connection holds its socket forever. Here every connection has:
//!
//! - an **idle timeout**: while the server waits for the first byte of a request (a fresh
//!   connection, or keep-alive after a response), and while a response waits for a client
//!   that has stopped reading it;
//! - a **header timeout**, counted from the first byte of a request head to its end, so
//!   a slowly dribbled head is cut off however steadily it trickles.
//!
//! hyper's own `header_read_timeout` runs from the moment it starts waiting for a head,
//! so alone it would make the two one number. Each connection therefore gets its own
//! [`Timer`] whose sleeps hyper arms exactly while it waits for a head; the socket wrapper
//! tells it when the first byte came, and the sleep moves its deadline accordingly.
//!
//! **Connection cap**: at `max_connections` open connections the accept loop stops
//! accepting. Further clients wait in the kernel's listen queue (they are served as soon
//! as a connection closes, or time out on their side); the process never holds more
//! sockets, tasks or buffers than the cap allows, and does no work for the excess.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use axum::response::Response;
use hyper::body::Incoming;
use hyper::rt::{Sleep, Timer};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// What one client may hold: time and connections.
#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    /// From a request head's first byte to its end.
    pub header_timeout: Duration,
    /// Waiting for a request's first byte, or for a client to read its response.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen queue.
    pub max_connections: usize,
}

impl ServerLimits {
    pub fn from_settings(settings: &Settings) -> Self {
        Self {
            header_timeout: settings.web.header_timeout,
            idle_timeout: settings.web.idle_timeout,
            max_connections: settings.web.max_connections,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` is cancelled; then stops accepting, lets
/// requests in flight finish (idle connections close at once) and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.clamp(1, Semaphore::MAX_PERMITS)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    // Any value switches hyper's head timer on; the deadlines are `ConnectionTimer`'s.
    http.header_read_timeout(limits.header_timeout).keep_alive(true);
    let stop = shutdown.cancelled();
    tokio::pin!(stop);
    loop {
        let slot = tokio::select! {
            biased;
            _ = &mut stop => break,
            slot = slots.clone().acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (stream, peer) = tokio::select! {
            biased;
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Responses go out in one write; Nagle would hold back the last segment.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let clock = Arc::new(Clock::new());
        let mut builder = http.clone();
        builder.timer(ConnectionTimer { clock: clock.clone(), limits });
        let io = TokioIo::new(Socket::new(stream, clock, limits.idle_timeout));
        let conn = builder.serve_connection(io, ConnectionService { app: app.clone(), peer });
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Refused or reset handshakes are the client's business; anything else (out of file
/// descriptors, say) would spin the loop, so pause a moment.
async fn accept_failed(e: io::Error) {
    use io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "cannot accept a connection");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// The router, with the peer address every request of the connection carries (rate
/// limits read it as `ConnectInfo<SocketAddr>`).
#[derive(Clone)]
struct ConnectionService {
    app: Router,
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response;
    type Error = Infallible;
    type Future = axum::routing::future::RouteFuture<Infallible>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        // A `Router` clone is a reference count; it is always ready.
        tower::Service::call(&mut self.app.clone(), req)
    }
}

/// What one connection's socket and head timer share.
struct Clock {
    start: Instant,
    /// Head timers alive, i.e. whether hyper is waiting for a request head.
    waiting: AtomicU32,
    /// Nanoseconds after `start` (plus one) of the first byte read while waiting; 0: none.
    first_byte: AtomicU64,
}

impl Clock {
    fn new() -> Self {
        Self { start: Instant::now(), waiting: AtomicU32::new(0), first_byte: AtomicU64::new(0) }
    }

    /// Called by the socket after every read that brought bytes.
    fn bytes_arrived(&self) {
        if self.waiting.load(Relaxed) > 0 && self.first_byte.load(Relaxed) == 0 {
            let since = Instant::now().saturating_duration_since(self.start).as_nanos();
            self.first_byte.store(u64::try_from(since).unwrap_or(u64::MAX - 1) + 1, Relaxed);
        }
    }

    fn first_byte_at(&self) -> Option<Instant> {
        match self.first_byte.load(Relaxed) {
            0 => None,
            n => Some(self.start + Duration::from_nanos(n - 1)),
        }
    }
}

/// hyper's timer for one connection. hyper's HTTP/1 server asks for a deadline
/// (`sleep_until`) only to time a request head; it gets a [`HeadSleep`].
struct ConnectionTimer {
    clock: Arc<Clock>,
    limits: ServerLimits,
}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        TokioTimer::new().sleep(duration)
    }

    fn sleep_until(&self, _deadline: std::time::Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeadSleep::new(self.clock.clone(), self.limits))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, deadline: std::time::Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeadSleep>() {
            Some(head) => head.restart(),
            None => *sleep = self.sleep_until(deadline),
        }
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// Marks the connection as waiting for a head for as long as it lives.
struct Waiting(Arc<Clock>);

impl Waiting {
    fn new(clock: Arc<Clock>) -> Self {
        clock.first_byte.store(0, Relaxed);
        clock.waiting.fetch_add(1, Relaxed);
        Self(clock)
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Relaxed);
    }
}

pin_project! {
    /// Fires `idle_timeout` after hyper began waiting for a head if no byte came, else
    /// `header_timeout` after the first byte. hyper polls it whenever a read leaves the
    /// head incomplete, so a first byte moves the deadline in time.
    struct HeadSleep {
        waiting: Waiting,
        limits: ServerLimits,
        since: Instant,
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl HeadSleep {
    fn new(clock: Arc<Clock>, limits: ServerLimits) -> Self {
        let since = Instant::now();
        let sleep = tokio::time::sleep_until(since + limits.idle_timeout);
        Self { waiting: Waiting::new(clock), limits, since, sleep }
    }

    fn restart(self: Pin<&mut Self>) {
        let this = self.project();
        this.waiting.0.first_byte.store(0, Relaxed);
        *this.since = Instant::now();
        this.sleep.reset(*this.since + this.limits.idle_timeout);
    }
}

impl Future for HeadSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let deadline = match this.waiting.0.first_byte_at() {
            Some(first) => first + this.limits.header_timeout,
            None => *this.since + this.limits.idle_timeout,
        };
        if this.sleep.deadline() != deadline {
            this.sleep.as_mut().reset(deadline);
        }
        this.sleep.poll(cx)
    }
}

impl Sleep for HeadSleep {}

pin_project! {
    /// The accepted socket: reports arriving bytes to the connection's clock, and fails a
    /// write that makes no progress for `idle` (a client that stopped reading).
    struct Socket<T> {
        #[pin]
        io: T,
        clock: Arc<Clock>,
        idle: Duration,
        // Allocated on the first write that has to wait, then reused.
        stall: Option<Pin<Box<tokio::time::Sleep>>>,
        stalled: bool,
    }
}

impl<T> Socket<T> {
    fn new(io: T, clock: Arc<Clock>, idle: Duration) -> Self {
        Self { io, clock, idle, stall: None, stalled: false }
    }
}

/// Passes a write's result through, turning a wait longer than `idle` into an error.
fn watch_write<R>(
    result: Poll<io::Result<R>>,
    stall: &mut Option<Pin<Box<tokio::time::Sleep>>>,
    stalled: &mut bool,
    idle: Duration,
    cx: &mut Context<'_>,
) -> Poll<io::Result<R>> {
    if result.is_ready() {
        *stalled = false;
        return result;
    }
    let deadline = Instant::now() + idle;
    let sleep = match stall {
        Some(sleep) => {
            if !*stalled {
                sleep.as_mut().reset(deadline);
            }
            sleep
        }
        None => stall.insert(Box::pin(tokio::time::sleep_until(deadline))),
    };
    *stalled = true;
    match sleep.as_mut().poll(cx) {
        Poll::Ready(()) => {
            Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")))
        }
        Poll::Pending => Poll::Pending,
    }
}

impl<T: AsyncRead> AsyncRead for Socket<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.io.poll_read(cx, buf);
        if buf.filled().len() > before {
            this.clock.bytes_arrived();
        }
        result
    }
}

impl<T: AsyncWrite> AsyncWrite for Socket<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write(cx, buf);
        watch_write(result, this.stall, this.stalled, *this.idle, cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.io.poll_write_vectored(cx, bufs);
        watch_write(result, this.stall, this.stalled, *this.idle, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let result = this.io.poll_flush(cx);
        watch_write(result, this.stall, this.stalled, *this.idle, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.project();
        let result = this.io.poll_shutdown(cx);
        watch_write(result, this.stall, this.stalled, *this.idle, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn a_write_the_client_never_reads_fails_after_the_idle_timeout() {
        let (server, _client) = tokio::io::duplex(64);
        let mut socket = Socket::new(server, Arc::new(Clock::new()), Duration::from_millis(200));
        let started = std::time::Instant::now();
        let err = socket.write_all(&[b'x'; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[tokio::test]
    async fn a_slow_but_steady_reader_is_not_cut_off() {
        let (server, mut client) = tokio::io::duplex(64);
        let mut socket = Socket::new(server, Arc::new(Clock::new()), Duration::from_millis(300));
        let reader = tokio::spawn(async move {
            let mut got = Vec::new();
            let mut chunk = [0u8; 64];
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                match client.read(&mut chunk).await.unwrap() {
                    0 => return got.len(),
                    n => got.extend_from_slice(&chunk[..n]),
                }
            }
        });
        // 1 KB at 64 bytes per 50 ms: ~800 ms in all, never 300 ms without progress.
        socket.write_all(&[b'x'; 1024]).await.unwrap();
        socket.shutdown().await.unwrap();
        assert_eq!(reader.await.unwrap(), 1024);
    }

    #[test]
    fn only_bytes_that_arrive_while_waiting_for_a_head_start_the_header_clock() {
        let clock = Arc::new(Clock::new());
        clock.bytes_arrived();
        assert!(clock.first_byte_at().is_none(), "a body byte is not a head");
        let waiting = Waiting::new(clock.clone());
        assert!(clock.first_byte_at().is_none());
        clock.bytes_arrived();
        let first = clock.first_byte_at().expect("the head began");
        clock.bytes_arrived();
        assert_eq!(clock.first_byte_at(), Some(first), "the first byte counts");
        drop(waiting);
        assert_eq!(clock.waiting.load(Relaxed), 0);
    }
}
