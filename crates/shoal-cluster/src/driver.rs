//! [`EmbeddedDriver`]: the Redis adapter's [`Driver`] over the embedded broker.
//!
//! One TCP connection carries everything: requests (subscribe, publish, count) are
//! written in call order by one writer task, answers and messages are read by one
//! reader task. When the connection drops, requests waiting for an answer fail with
//! [`AdapterError::Unavailable`], publishes fail at once until it is back (nothing is
//! replayed later, as with Redis), and the driver reconnects with exponential backoff,
//! then subscribes again to everything wanted.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use parking_lot::{Mutex, RwLock};
use shoal::AdapterError;
use shoal_redis::driver::{BoxFuture, Driver, DriverStats, Router, Subscription};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::auth::AuthToken;
use crate::frame::{self, Frame, SubKind};

/// Settings of an [`EmbeddedDriver`].
#[derive(Debug, Clone)]
pub struct EmbeddedDriverConfig {
    /// Frames queued for writing before publishes are refused. Default 65 536.
    pub queue: usize,
    /// How long a request (subscribe, publish and wait, count) waits for the broker's
    /// answer. Default 5 s.
    pub request_timeout: Duration,
    /// How long connecting may take. Default 5 s.
    pub connect_timeout: Duration,
    /// Reconnection backoff: first delay. Default 50 ms.
    pub reconnect_min: Duration,
    /// Reconnection backoff: longest delay. Default 2 s.
    pub reconnect_max: Duration,
    /// Largest frame accepted from the broker. Default 64 MiB.
    pub max_frame: usize,
    /// The broker's token, sent first on every connection. Default none.
    pub auth_token: Option<AuthToken>,
}

impl Default for EmbeddedDriverConfig {
    fn default() -> Self {
        EmbeddedDriverConfig {
            queue: 65_536,
            request_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            max_frame: frame::DEFAULT_MAX_FRAME,
            auth_token: None,
        }
    }
}

type Pending = Mutex<HashMap<u32, oneshot::Sender<Result<u64, AdapterError>>>>;

/// Channels starting with this prefix carry the cluster's own control messages (the
/// primary's drain request): they go to [`EmbeddedDriver::set_control`]'s callback, not
/// to the adapter.
pub const CONTROL_PREFIX: &str = "\u{1}shoal-cluster#";

struct Inner {
    addr: SocketAddr,
    config: EmbeddedDriverConfig,
    queue: mpsc::Sender<Bytes>,
    pending: Pending,
    next_id: AtomicU32,
    connected: AtomicBool,
    /// Every subscription wanted, with how many users want it; restored on reconnection.
    wanted: Mutex<HashMap<(SubKind, String), usize>>,
    router: RwLock<Option<Router>>,
    control: RwLock<Option<Router>>,
    stats: DriverStats,
}

impl Inner {
    fn fail_pending(&self, why: &str) {
        let waiting: Vec<_> = self.pending.lock().drain().collect();
        for (_, tx) in waiting {
            let _ = tx.send(Err(AdapterError::Unavailable(why.to_owned())));
        }
    }

    fn next_id(&self) -> u32 {
        loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }
}

/// The [`Driver`] of cluster workers: pub/sub over the primary's embedded broker.
///
/// ```no_run
/// # async fn demo(broker: std::net::SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
/// use shoal_cluster::{EmbeddedDriver, EmbeddedDriverConfig};
/// use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
///
/// let driver = EmbeddedDriver::connect(broker, EmbeddedDriverConfig::default()).await?;
/// // the classic Redis adapter's protocol, over the embedded broker
/// let factory = RedisAdapterFactory::with_driver(RedisAdapterConfig::new("embedded://"), driver);
/// let io = shoal::SocketIo::builder().adapter(factory).build()?;
/// # Ok(()) }
/// ```
pub struct EmbeddedDriver {
    inner: Arc<Inner>,
    closed: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for EmbeddedDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDriver")
            .field("broker", &self.inner.addr)
            .field("connected", &self.inner.connected.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn kind_of(sub: &Subscription) -> (SubKind, String) {
    match sub {
        Subscription::Channel(c) | Subscription::Shard(c) => (SubKind::Channel, c.clone()),
        Subscription::Pattern(p) => (SubKind::Pattern, p.clone()),
    }
}

async fn dial(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => {
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("connection timed out".into()),
    }
}

impl EmbeddedDriver {
    /// Connects to the broker at `addr` (the first connection must succeed) and starts
    /// the connection task, which reconnects forever until [`Driver::close`].
    ///
    /// # Errors
    /// [`AdapterError::Unavailable`] when the broker cannot be reached.
    pub async fn connect(addr: SocketAddr, config: EmbeddedDriverConfig) -> Result<Arc<EmbeddedDriver>, AdapterError> {
        let stream = dial(addr, config.connect_timeout)
            .await
            .map_err(|e| AdapterError::Unavailable(format!("cluster broker {addr}: {e}")))?;
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let inner = Arc::new(Inner {
            addr,
            config,
            queue: tx,
            pending: Mutex::default(),
            next_id: AtomicU32::new(1),
            // the first connection is up and has nothing to restore
            connected: AtomicBool::new(true),
            wanted: Mutex::default(),
            router: RwLock::new(None),
            control: RwLock::new(None),
            stats: DriverStats::default(),
        });
        let (closed, closed_rx) = watch::channel(false);
        let task = tokio::spawn(run(inner.clone(), rx, stream, closed_rx));
        Ok(Arc::new(EmbeddedDriver { inner, closed, task: Mutex::new(Some(task)) }))
    }

    /// The broker's address.
    pub fn broker(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Where the messages of [`CONTROL_PREFIX`] channels go (subscribe to them with
    /// [`Driver::subscribe`] as to any channel).
    pub fn set_control(&self, callback: Router) {
        *self.inner.control.write() = Some(callback);
    }

    /// Sends a request and waits for its answer.
    async fn request(&self, make: impl FnOnce(u32) -> Frame) -> Result<u64, AdapterError> {
        let inner = &self.inner;
        if !inner.connected.load(Ordering::Acquire) {
            return Err(AdapterError::Unavailable("cluster broker not connected".into()));
        }
        let id = inner.next_id();
        let (tx, rx) = oneshot::channel();
        inner.pending.lock().insert(id, tx);
        if inner.queue.try_send(make(id).to_bytes()).is_err() {
            inner.pending.lock().remove(&id);
            return Err(AdapterError::Unavailable("cluster broker queue full".into()));
        }
        match tokio::time::timeout(inner.config.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(AdapterError::Unavailable("cluster broker connection lost".into())),
            Err(_) => {
                inner.pending.lock().remove(&id);
                Err(AdapterError::Unavailable("cluster broker did not answer in time".into()))
            }
        }
    }

    /// Tells the primary that this worker serves on `addr` (see
    /// [`crate::broker::Registration`]).
    ///
    /// # Errors
    /// When the broker is unreachable or refuses the registration.
    pub async fn register(&self, index: u32, pid: u32, node: &str, addr: SocketAddr) -> Result<(), AdapterError> {
        self.request(|id| Frame::Register { id, index, pid, node: node.to_owned(), addr: addr.to_string() })
            .await
            .map(|_| ())
    }
}

impl Drop for EmbeddedDriver {
    fn drop(&mut self) {
        let _ = self.closed.send(true);
    }
}

/// The connection task: connect, resubscribe, pump frames; again after a failure.
async fn run(inner: Arc<Inner>, mut rx: mpsc::Receiver<Bytes>, first: TcpStream, mut closed: watch::Receiver<bool>) {
    let mut stream = Some(first);
    let mut backoff = inner.config.reconnect_min;
    loop {
        let fresh = stream.is_some();
        let s = match stream.take() {
            Some(s) => s,
            None => {
                let dialed = tokio::select! {
                    _ = crate::raised(&mut closed) => return,
                    d = dial(inner.addr, inner.config.connect_timeout) => d,
                };
                match dialed {
                    Ok(s) => {
                        inner.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!(broker = %inner.addr, "cluster broker connection restored");
                        s
                    }
                    Err(e) => {
                        tracing::debug!(broker = %inner.addr, cause = %e, "cluster broker unreachable, retrying");
                        tokio::select! {
                            _ = crate::raised(&mut closed) => return,
                            _ = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(inner.config.reconnect_max);
                        continue;
                    }
                }
            }
        };
        backoff = inner.config.reconnect_min;
        if !fresh {
            // what was queued while disconnected is stale (pub/sub has no replay)
            while rx.try_recv().is_ok() {}
        }
        let (rd, wr) = s.into_split();
        let mut wr = BufWriter::with_capacity(64 * 1024, wr);
        let mut restore = BytesMut::new();
        if let Some(token) = &inner.config.auth_token {
            Frame::Hello { token: token.as_str().to_owned() }.encode(&mut restore);
        }
        let wanted: Vec<(SubKind, String)> = inner.wanted.lock().keys().cloned().collect();
        for (kind, name) in wanted {
            Frame::Subscribe { id: 0, kind, name }.encode(&mut restore);
        }
        if wr.write_all(&restore).await.is_err() || wr.flush().await.is_err() {
            continue;
        }
        inner.connected.store(true, Ordering::Release);
        let mut reader = tokio::spawn(read_loop(rd, inner.clone()));
        let stop = loop {
            let next = tokio::select! {
                _ = crate::raised(&mut closed) => break true,
                _ = &mut reader => break false,
                f = rx.recv() => f,
            };
            let Some(mut f) = next else { break true };
            let mut ok = true;
            loop {
                if wr.write_all(&f).await.is_err() {
                    ok = false;
                    break;
                }
                match rx.try_recv() {
                    Ok(more) => f = more,
                    Err(_) => break,
                }
            }
            if !ok || wr.flush().await.is_err() {
                break false;
            }
        };
        inner.connected.store(false, Ordering::Release);
        reader.abort();
        if stop {
            let _ = wr.shutdown().await;
            inner.fail_pending("cluster broker connection closed");
            return;
        }
        inner.fail_pending("cluster broker connection lost");
        tracing::warn!(broker = %inner.addr, "cluster broker connection lost, reconnecting");
    }
}

async fn read_loop(mut rd: OwnedReadHalf, inner: Arc<Inner>) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            let frame = match frame::decode(&mut buf, inner.config.max_frame) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!(cause = %e, "cluster broker sent a malformed frame; reconnecting");
                    return;
                }
            };
            match frame {
                Frame::Message { channel, payload } => {
                    inner.stats.received.fetch_add(1, Ordering::Relaxed);
                    let router = if channel.starts_with(CONTROL_PREFIX) {
                        inner.control.read().clone()
                    } else {
                        inner.router.read().clone()
                    };
                    if let Some(r) = router {
                        r(&channel, payload);
                    }
                }
                Frame::Reply { id, value } => {
                    if let Some(tx) = inner.pending.lock().remove(&id) {
                        let _ = tx.send(Ok(value));
                    }
                }
                Frame::Error { id, message } => {
                    if let Some(tx) = inner.pending.lock().remove(&id) {
                        let _ = tx.send(Err(AdapterError::Other(message)));
                    }
                }
                other => {
                    tracing::warn!(frame = ?other, "cluster broker sent a request frame; reconnecting");
                    return;
                }
            }
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

impl Driver for EmbeddedDriver {
    fn publish(&self, channel: String, payload: Bytes, _sharded: bool) -> Result<(), AdapterError> {
        let inner = &self.inner;
        if !inner.connected.load(Ordering::Acquire) {
            inner.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%channel, "cluster broker unreachable: cross-worker publish dropped");
            return Err(AdapterError::Unavailable("cluster broker not connected".into()));
        }
        let f = Frame::Publish { id: 0, channel, payload }.to_bytes();
        match inner.queue.try_send(f) {
            Ok(()) => {
                inner.stats.published.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                inner.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("cluster broker queue full: cross-worker publish dropped");
                Err(AdapterError::Unavailable("cluster broker queue full".into()))
            }
        }
    }

    fn publish_wait(&self, channel: String, payload: Bytes, _sharded: bool) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let r = self.request(|id| Frame::Publish { id, channel, payload }).await;
            match &r {
                Ok(_) => self.inner.stats.published.fetch_add(1, Ordering::Relaxed),
                Err(_) => self.inner.stats.publish_errors.fetch_add(1, Ordering::Relaxed),
            };
            r.map(|_| ())
        })
    }

    fn subscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
        // counted now, in call order; only the first user of a channel subscribes it
        let first: Vec<(SubKind, String)> = {
            let mut w = self.inner.wanted.lock();
            subs.iter()
                .map(kind_of)
                .filter(|k| {
                    let c = w.entry(k.clone()).or_insert(0);
                    *c += 1;
                    *c == 1
                })
                .collect()
        };
        Box::pin(async move {
            for (kind, name) in first {
                // on failure the subscription stays wanted and is restored on reconnection
                self.request(|id| Frame::Subscribe { id, kind, name }).await?;
            }
            Ok(())
        })
    }

    fn unsubscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
        let last: Vec<(SubKind, String)> = {
            let mut w = self.inner.wanted.lock();
            subs.iter()
                .map(kind_of)
                .filter(|k| match w.get_mut(k) {
                    Some(c) if *c > 1 => {
                        *c -= 1;
                        false
                    }
                    Some(_) => {
                        w.remove(k);
                        true
                    }
                    None => false,
                })
                .collect()
        };
        Box::pin(async move {
            for (kind, name) in last {
                // a failure leaves nothing behind: a new connection only restores what is wanted
                self.request(|id| Frame::Unsubscribe { id, kind, name }).await?;
            }
            Ok(())
        })
    }

    fn num_sub(&self, channel: String, _sharded: bool) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move { self.request(|id| Frame::NumSub { id, channel }).await.map(|n| n as usize) })
    }

    fn set_router(&self, router: Router) {
        *self.inner.router.write() = Some(router);
    }

    fn stats(&self) -> &DriverStats {
        &self.inner.stats
    }

    fn is_connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let _ = self.closed.send(true);
            let task = self.task.lock().take();
            if let Some(t) = task {
                let _ = t.await;
            }
        })
    }
}
