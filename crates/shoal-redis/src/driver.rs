//! The broker under the adapter: publish, subscribe, count subscribers.
//!
//! [`Driver`] is the small interface the adapters use; [`FredDriver`] implements it over
//! Redis with the `fred` client, chosen for what an adapter needs from a Redis client: it
//! reconnects with backoff, speaks Redis
//! Cluster (including sharded pub/sub routed by hash slot), TLS (`rediss://`) and
//! credentials in the URL.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::config::ReconnectPolicy;
use shoal_core::AdapterError;
use tokio::sync::{mpsc, oneshot};

/// A boxed future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What to listen to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscription {
    /// `SUBSCRIBE channel`.
    Channel(String),
    /// `PSUBSCRIBE pattern`.
    Pattern(String),
    /// `SSUBSCRIBE channel` (sharded pub/sub).
    Shard(String),
}

/// Receives every message: `(channel, payload)`.
pub type Router = Arc<dyn Fn(&str, Bytes) + Send + Sync>;

/// Counters of a driver (for logs, health and tests).
#[derive(Debug, Default)]
pub struct DriverStats {
    /// Messages published.
    pub published: AtomicU64,
    /// Publishes that failed or were refused (broker down, queue full).
    pub publish_errors: AtomicU64,
    /// Messages received.
    pub received: AtomicU64,
    /// Messages lost because the receiving loop fell behind the client's buffer.
    pub lagged: AtomicU64,
    /// Reconnections of the subscriber connection.
    pub reconnects: AtomicU64,
}

/// The broker interface of the adapters.
pub trait Driver: Send + Sync + 'static {
    /// Queues a publish (in order with every other publish of this driver).
    ///
    /// # Errors
    /// [`AdapterError::Unavailable`] at once when the broker is known to be unreachable
    /// or the queue is full: the message is lost (and counted).
    fn publish(&self, channel: String, payload: Bytes, sharded: bool) -> Result<(), AdapterError>;

    /// Publishes and waits until the broker accepted it.
    fn publish_wait(&self, channel: String, payload: Bytes, sharded: bool) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Subscribes (the subscription is restored after reconnections).
    fn subscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Unsubscribes.
    fn unsubscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>>;

    /// Number of subscribers of `channel` across the deployment (`PUBSUB NUMSUB`, or
    /// `SHARDNUMSUB` when `sharded`; summed over the masters of a cluster).
    fn num_sub(&self, channel: String, sharded: bool) -> BoxFuture<'_, Result<usize, AdapterError>>;

    /// Sets where incoming messages go.
    fn set_router(&self, router: Router);

    /// The counters.
    fn stats(&self) -> &DriverStats;

    /// True while connected.
    fn is_connected(&self) -> bool;

    /// Disconnects.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Settings of the Redis connection.
#[derive(Debug, Clone)]
pub struct RedisConnection {
    /// `redis://[user:pass@]host:port[/db]`, `rediss://…` (TLS), or
    /// `redis-cluster://host:port?node=host:port&node=…` for a Redis Cluster.
    pub url: String,
    /// Publishes queued while waiting to be written. Default 65 536.
    pub publish_queue: usize,
    /// A command not answered within this time fails (so that nothing waits forever
    /// during an outage). Default 5 s.
    pub command_timeout: Duration,
    /// Reconnection backoff: first delay. Default 100 ms.
    pub reconnect_min: Duration,
    /// Reconnection backoff: longest delay. Default 5 s.
    pub reconnect_max: Duration,
}

impl RedisConnection {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> RedisConnection {
        RedisConnection {
            url: url.into(),
            publish_queue: 65_536,
            command_timeout: Duration::from_secs(5),
            reconnect_min: Duration::from_millis(100),
            reconnect_max: Duration::from_secs(5),
        }
    }
}

struct PublishCmd {
    channel: String,
    payload: Bytes,
    sharded: bool,
    done: Option<oneshot::Sender<Result<(), AdapterError>>>,
}

/// [`Driver`] over Redis, with the `fred` client: one connection publishes (pipelined,
/// in order), one subscribes (none for a publish-only driver, as an emitter uses).
pub struct FredDriver {
    publisher: Client,
    subscriber: Option<SubscriberClient>,
    queue: mpsc::Sender<PublishCmd>,
    router: Arc<router_cell::RouterCell>,
    stats: Arc<DriverStats>,
    clustered: bool,
    /// Every subscription wanted, with how many users want it. This, not what the
    /// connection happens to have, is restored after a reconnection, and subscriptions
    /// that failed (Redis down) are retried until they succeed.
    wanted: Arc<parking_lot::Mutex<Wanted>>,
    command_timeout: Duration,
}

#[derive(Default)]
struct Wanted {
    counts: std::collections::HashMap<Subscription, usize>,
    /// A subscribe failed: resubscribe everything wanted as soon as possible.
    dirty: bool,
}

impl std::fmt::Debug for FredDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FredDriver").field("clustered", &self.clustered).finish_non_exhaustive()
    }
}

mod router_cell {
    use std::sync::RwLock;

    use super::Router;

    /// The router, settable after the driver started.
    #[derive(Default)]
    pub(super) struct RouterCell(RwLock<Option<Router>>);

    impl RouterCell {
        pub(super) fn set(&self, r: Router) {
            *self.0.write().unwrap_or_else(|e| e.into_inner()) = Some(r);
        }
        pub(super) fn get(&self) -> Option<Router> {
            self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }
}

/// Sends SUBSCRIBE (or UNSUBSCRIBE) for `subs`, each bounded by `timeout`.
async fn apply(sub: &SubscriberClient, subs: &[Subscription], on: bool, timeout: Duration) -> Result<(), AdapterError> {
    for s in subs {
        let fut = async {
            match (s, on) {
                (Subscription::Channel(c), true) => sub.subscribe(c.as_str()).await,
                (Subscription::Pattern(p), true) => sub.psubscribe(p.as_str()).await,
                (Subscription::Shard(c), true) => sub.ssubscribe(c.as_str()).await,
                (Subscription::Channel(c), false) => sub.unsubscribe(c.as_str()).await,
                (Subscription::Pattern(p), false) => sub.punsubscribe(p.as_str()).await,
                (Subscription::Shard(c), false) => sub.sunsubscribe(c.as_str()).await,
            }
        };
        match tokio::time::timeout(timeout, fut).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(unavailable(e)),
            Err(_) => return Err(AdapterError::Unavailable("redis did not answer in time".into())),
        }
    }
    Ok(())
}

/// Subscribes everything wanted (idempotent in Redis); clears `dirty` on success.
async fn resync(sub: &SubscriberClient, wanted: &parking_lot::Mutex<Wanted>) {
    let all: Vec<Subscription> = {
        let mut w = wanted.lock();
        w.dirty = false;
        w.counts.keys().cloned().collect()
    };
    if let Err(e) = apply(sub, &all, true, Duration::from_secs(5)).await {
        tracing::warn!(cause = %e, "restoring redis subscriptions failed, will retry");
        wanted.lock().dirty = true;
    }
}

pub(crate) fn unavailable(e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Unavailable(e.to_string())
}

/// A fred client builder for `conn`: its URL, reconnection with exponential backoff
/// (`reconnect_min` to `reconnect_max`), `command_timeout`, a 5 s connection timeout and
/// one attempt per command (nothing replayed after a reconnection). Also returns whether
/// the URL names a Redis Cluster.
pub(crate) fn fred_builder(conn: &RedisConnection) -> Result<(Builder, bool), AdapterError> {
    let config = Config::from_url(&conn.url).map_err(|e| AdapterError::Other(format!("invalid redis url: {e}")))?;
    let clustered = config.server.is_clustered();
    let policy = ReconnectPolicy::new_exponential(
        0,
        conn.reconnect_min.as_millis() as u32,
        conn.reconnect_max.as_millis() as u32,
        2,
    );
    let mut builder = Builder::from_config(config);
    builder
        .set_policy(policy)
        .with_performance_config(|p| p.default_command_timeout = conn.command_timeout)
        .with_connection_config(|c| {
            c.connection_timeout = Duration::from_secs(5);
            c.max_command_attempts = 1;
        });
    Ok((builder, clustered))
}

impl FredDriver {
    /// Connects to Redis (waits for the first connection) and starts the publishing and
    /// receiving tasks. Later disconnections are retried forever with backoff.
    ///
    /// # Errors
    /// When the URL is invalid or the first connection fails.
    pub async fn connect(conn: &RedisConnection) -> Result<Arc<FredDriver>, AdapterError> {
        FredDriver::start(conn, true).await
    }

    /// Like [`FredDriver::connect`], with the publishing connection only: for a process
    /// that only publishes (an emitter). Subscribing through it is an error.
    ///
    /// # Errors
    /// When the URL is invalid or the first connection fails.
    pub async fn connect_publisher(conn: &RedisConnection) -> Result<Arc<FredDriver>, AdapterError> {
        FredDriver::start(conn, false).await
    }

    async fn start(conn: &RedisConnection, subscribing: bool) -> Result<Arc<FredDriver>, AdapterError> {
        // one attempt per command (in fred_builder): a publish is delivered now or fails,
        // never replayed after a reconnection (pub/sub messages are worthless seconds
        // late); the subscriptions are restored by this driver, not by retries
        let (mut builder, clustered) = fred_builder(conn)?;
        builder
            .with_performance_config(|p| p.broadcast_channel_capacity = 8192)
            .with_connection_config(|c| c.max_command_buffer_len = 100_000);
        let publisher = builder.build().map_err(unavailable)?;
        publisher.init().await.map_err(unavailable)?;
        let stats = Arc::new(DriverStats::default());
        let router = Arc::new(router_cell::RouterCell::default());
        let wanted: Arc<parking_lot::Mutex<Wanted>> = Arc::default();
        let subscriber = if subscribing {
            let subscriber = builder.build_subscriber_client().map_err(unavailable)?;
            subscriber.init().await.map_err(unavailable)?;
            FredDriver::receive(&subscriber, &router, &stats, &wanted);
            Some(subscriber)
        } else {
            let mut errors = publisher.error_rx();
            tokio::spawn(async move {
                while let Ok((e, _)) = errors.recv().await {
                    tracing::warn!(cause = %e, "redis connection error");
                }
            });
            None
        };

        // publishing loop: batches of what is queued go out as one pipeline, in order
        let (tx, mut qrx) = mpsc::channel::<PublishCmd>(conn.publish_queue.max(1));
        let command_timeout = conn.command_timeout;
        let (p2, s4) = (publisher.clone(), stats.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            // one attempt, failing at once when the connection is down: a publish is
            // delivered now or counted as lost, never replayed seconds later
            let opts = fred::types::config::Options {
                fail_fast: true,
                max_attempts: Some(1),
                timeout: Some(command_timeout),
                ..Default::default()
            };
            while qrx.recv_many(&mut batch, 256).await > 0 {
                let pipe = p2.pipeline();
                let pipeline = pipe.with_options(&opts);
                for cmd in &batch {
                    let r: Result<(), Error> = if cmd.sharded {
                        pipeline.spublish(cmd.channel.as_str(), cmd.payload.clone()).await
                    } else {
                        pipeline.publish(cmd.channel.as_str(), cmd.payload.clone()).await
                    };
                    if let Err(e) = r {
                        tracing::debug!(cause = %e, "queueing a publish failed");
                    }
                }
                let results = pipe.try_all::<Value>().await;
                for (i, cmd) in batch.drain(..).enumerate() {
                    let r = match results.get(i) {
                        Some(Ok(_)) => {
                            s4.published.fetch_add(1, Ordering::Relaxed);
                            Ok(())
                        }
                        Some(Err(e)) => {
                            s4.publish_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(channel = %cmd.channel, cause = %e, "publish failed");
                            Err(unavailable(e))
                        }
                        None => {
                            s4.publish_errors.fetch_add(1, Ordering::Relaxed);
                            Err(AdapterError::Unavailable("publish lost".into()))
                        }
                    };
                    if let Some(done) = cmd.done {
                        let _ = done.send(r);
                    }
                }
            }
        });
        Ok(Arc::new(FredDriver {
            publisher,
            subscriber,
            queue: tx,
            router,
            stats,
            clustered,
            wanted,
            command_timeout: conn.command_timeout,
        }))
    }

    fn enqueue(&self, cmd: PublishCmd) -> Result<(), AdapterError> {
        if !self.publisher.is_connected() {
            self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(channel = %cmd.channel, "redis unreachable: cross-node publish dropped");
            return Err(AdapterError::Unavailable("redis is not connected".into()));
        }
        self.queue.try_send(cmd).map_err(|e| {
            self.stats.publish_errors.fetch_add(1, Ordering::Relaxed);
            tracing::warn!("redis publish queue full: cross-node publish dropped");
            unavailable(e)
        })
    }
}

impl FredDriver {
    /// Starts the tasks of the subscribing connection: messages to the router, the wanted
    /// subscriptions restored after a reconnection and retried after failures, errors
    /// logged.
    fn receive(
        subscriber: &SubscriberClient,
        router: &Arc<router_cell::RouterCell>,
        stats: &Arc<DriverStats>,
        wanted: &Arc<parking_lot::Mutex<Wanted>>,
    ) {
        // receiving loop
        let mut rx = subscriber.message_rx();
        let (r2, s2) = (router.clone(), stats.clone());
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) => {
                        s2.received.fetch_add(1, Ordering::Relaxed);
                        let payload = match msg.value {
                            Value::Bytes(b) => b,
                            Value::String(s) => s.into_inner(),
                            other => match other.as_bytes() {
                                Some(b) => Bytes::copy_from_slice(b),
                                None => continue,
                            },
                        };
                        if let Some(r) = r2.get() {
                            r(&msg.channel, payload);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        s2.lagged.fetch_add(n, Ordering::Relaxed);
                        tracing::error!(lost = n, "redis adapter fell behind: messages lost");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        let mut reconnects = subscriber.reconnect_rx();
        let (s3, sub3, w3) = (stats.clone(), subscriber.clone(), wanted.clone());
        tokio::spawn(async move {
            // after a reconnection the connection has no subscription: restore the wanted set
            while reconnects.recv().await.is_ok() {
                s3.reconnects.fetch_add(1, Ordering::Relaxed);
                w3.lock().dirty = true;
                resync(&sub3, &w3).await;
                tracing::info!("redis subscriber reconnected; subscriptions restored");
            }
        });
        let (sub4, w4) = (subscriber.clone(), wanted.clone());
        tokio::spawn(async move {
            // retry subscriptions that failed while Redis was unreachable
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            loop {
                tick.tick().await;
                if Arc::strong_count(&w4) == 1 {
                    break;
                }
                if w4.lock().dirty && sub4.is_connected() {
                    resync(&sub4, &w4).await;
                }
            }
        });
        let mut errors = subscriber.error_rx();
        tokio::spawn(async move {
            while let Ok((e, _)) = errors.recv().await {
                tracing::warn!(cause = %e, "redis connection error");
            }
        });
    }
}

/// The error of subscribing through a publish-only driver.
fn publish_only() -> AdapterError {
    AdapterError::Other("this Redis driver only publishes (FredDriver::connect_publisher)".into())
}

impl Driver for FredDriver {
    fn publish(&self, channel: String, payload: Bytes, sharded: bool) -> Result<(), AdapterError> {
        self.enqueue(PublishCmd { channel, payload, sharded, done: None })
    }

    fn publish_wait(&self, channel: String, payload: Bytes, sharded: bool) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.enqueue(PublishCmd { channel, payload, sharded, done: Some(tx) })?;
            rx.await.map_err(|_| AdapterError::Unavailable("publisher stopped".into()))?
        })
    }

    fn subscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
        // counted now, in call order; only the first user of a channel subscribes it
        let first: Vec<Subscription> = {
            let mut w = self.wanted.lock();
            subs.into_iter()
                .filter(|s| {
                    let c = w.counts.entry(s.clone()).or_insert(0);
                    *c += 1;
                    *c == 1
                })
                .collect()
        };
        Box::pin(async move {
            let Some(subscriber) = &self.subscriber else { return Err(publish_only()) };
            let r = apply(subscriber, &first, true, self.command_timeout).await;
            if r.is_err() {
                // restored by the retry task once Redis answers
                self.wanted.lock().dirty = true;
            }
            r
        })
    }

    fn unsubscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
        let last: Vec<Subscription> = {
            let mut w = self.wanted.lock();
            subs.into_iter()
                .filter(|s| match w.counts.get_mut(s) {
                    Some(c) if *c > 1 => {
                        *c -= 1;
                        false
                    }
                    Some(_) => {
                        w.counts.remove(s);
                        true
                    }
                    None => false,
                })
                .collect()
        };
        Box::pin(async move {
            // a failure leaves nothing behind: a new connection starts with no
            // subscription and only the wanted set is restored on it
            let Some(subscriber) = &self.subscriber else { return Err(publish_only()) };
            apply(subscriber, &last, false, self.command_timeout).await
        })
    }

    fn num_sub(&self, channel: String, sharded: bool) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move {
            if !self.publisher.is_connected() {
                return Err(AdapterError::Unavailable("redis is not connected".into()));
            }
            let count = |v: Value| -> usize {
                // [channel, count]
                match v {
                    Value::Array(a) => a.get(1).and_then(|c| c.as_u64()).unwrap_or(0) as usize,
                    _ => 0,
                }
            };
            if self.clustered && !sharded {
                // classic pub/sub spans the cluster, but NUMSUB counts one node's
                // subscribers: sum over the primaries
                let mut total = 0;
                let primaries =
                    self.publisher.cached_cluster_state().map(|s| s.unique_primary_nodes()).unwrap_or_default();
                for server in primaries {
                    let v: Value = self
                        .publisher
                        .with_cluster_node(server)
                        .pubsub_numsub(channel.as_str())
                        .await
                        .map_err(unavailable)?;
                    total += count(v);
                }
                Ok(total)
            } else if sharded {
                let v: Value = self.publisher.pubsub_shardnumsub(channel.as_str()).await.map_err(unavailable)?;
                Ok(count(v))
            } else {
                let v: Value = self.publisher.pubsub_numsub(channel.as_str()).await.map_err(unavailable)?;
                Ok(count(v))
            }
        })
    }

    fn set_router(&self, router: Router) {
        self.router.set(router);
    }

    fn stats(&self) -> &DriverStats {
        &self.stats
    }

    fn is_connected(&self) -> bool {
        self.publisher.is_connected()
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Some(subscriber) = &self.subscriber {
                let _ = subscriber.quit().await;
            }
            let _ = self.publisher.quit().await;
        })
    }
}
