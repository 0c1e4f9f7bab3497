//! Per-client-connection bookkeeping: activity for the idle and slow-header limits, the
//! connection cap, and the count of live connections and tunnels for the drain.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, OwnedSemaphorePermit};

/// Milliseconds since the first call (a process-wide monotonic base), at least 1.
fn now_ms() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    let base = *BASE.get_or_init(Instant::now);
    u64::try_from(base.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_add(1)
}

/// Counts live connections and tunnels; [`Tracker::wait_idle`] waits for zero.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    live: AtomicUsize,
    idle: Notify,
}

impl Tracker {
    pub(crate) fn token(self: &Arc<Self>) -> LiveToken {
        self.live.fetch_add(1, Ordering::SeqCst);
        LiveToken(self.clone())
    }

    pub(crate) fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Completes when nothing is live.
    pub(crate) async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One live connection (or tunnel) until dropped.
#[derive(Debug)]
pub(crate) struct LiveToken(Arc<Tracker>);

impl Drop for LiveToken {
    fn drop(&mut self) {
        if self.0.live.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The state of one client connection, shared by its task, its IO wrapper and the
/// exchanges (requests and tunnels) running on it: the connection slot and the live token
/// are released when the last of them ends.
#[derive(Debug)]
pub(crate) struct ConnState {
    _permit: OwnedSemaphorePermit,
    _live: LiveToken,
    last_activity: AtomicU64,
    /// When the first byte of a request head arrived (0: not reading a head).
    head_started: AtomicU64,
    in_flight: AtomicUsize,
    /// Wakes the connection task when a head starts (to arm the head deadline).
    pub(crate) wake: Notify,
}

impl ConnState {
    pub(crate) fn new(permit: OwnedSemaphorePermit, live: LiveToken) -> Arc<ConnState> {
        Arc::new(ConnState {
            _permit: permit,
            _live: live,
            last_activity: AtomicU64::new(now_ms()),
            head_started: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            wake: Notify::new(),
        })
    }

    fn on_read(&self) {
        let now = now_ms();
        self.last_activity.store(now, Ordering::Relaxed);
        if self.in_flight.load(Ordering::Acquire) == 0
            && self.head_started.compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed).is_ok()
        {
            self.wake.notify_one();
        }
    }

    fn on_write(&self) {
        self.last_activity.store(now_ms(), Ordering::Relaxed);
    }

    /// A request head was parsed: it is in flight until the guard drops.
    pub(crate) fn request(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.head_started.store(0, Ordering::Release);
        InFlight(self.clone())
    }

    /// When the connection should be looked at again, and whether it has expired now.
    pub(crate) fn deadline(&self, header_timeout: Duration, idle_timeout: Duration) -> (tokio::time::Instant, bool) {
        let now = now_ms();
        let idle_ms = u64::try_from(idle_timeout.as_millis()).unwrap_or(u64::MAX);
        let head_ms = u64::try_from(header_timeout.as_millis()).unwrap_or(u64::MAX);
        let at = if self.in_flight.load(Ordering::Acquire) > 0 {
            now.saturating_add(idle_ms)
        } else {
            let idle_at = self.last_activity.load(Ordering::Relaxed).saturating_add(idle_ms);
            match self.head_started.load(Ordering::Acquire) {
                0 => idle_at,
                started => idle_at.min(started.saturating_add(head_ms)),
            }
        };
        let expired = at <= now;
        let wait = Duration::from_millis(at.saturating_sub(now).max(1));
        (tokio::time::Instant::now() + wait, expired)
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<ConnState>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.last_activity.store(now_ms(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A client stream that reports its reads and writes to its [`ConnState`].
#[derive(Debug)]
pub(crate) struct Tracked<T> {
    inner: T,
    state: Arc<ConnState>,
}

impl<T> Tracked<T> {
    pub(crate) fn new(inner: T, state: Arc<ConnState>) -> Tracked<T> {
        Tracked { inner, state }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Tracked<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.on_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Tracked<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.state.on_write();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
