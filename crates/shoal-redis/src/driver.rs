//! The broker under the adapter: publish, subscribe, count subscribers.
//!
//! [`Driver`] is the small interface the adapters use; [`FredDriver`] implements it over
//! Redis with the `fred` client, chosen for what an adapter needs from a Redis client:
//! it re-subscribes every channel, pattern and shard channel after a reconnection
//! (`SubscriberClient::manage_subscriptions`), reconnects with backoff, speaks Redis
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
/// in order), one subscribes.
pub struct FredDriver {
    publisher: Client,
    subscriber: SubscriberClient,
    queue: mpsc::Sender<PublishCmd>,
    router: Arc<router_cell::RouterCell>,
    stats: Arc<DriverStats>,
    clustered: bool,
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

fn unavailable(e: impl std::fmt::Display) -> AdapterError {
    AdapterError::Unavailable(e.to_string())
}

impl FredDriver {
    /// Connects to Redis (waits for the first connection) and starts the publishing and
    /// receiving tasks. Later disconnections are retried forever with backoff.
    ///
    /// # Errors
    /// When the URL is invalid or the first connection fails.
    pub async fn connect(conn: &RedisConnection) -> Result<Arc<FredDriver>, AdapterError> {
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
            .with_performance_config(|p| {
                p.default_command_timeout = conn.command_timeout;
                p.broadcast_channel_capacity = 8192;
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(5);
                c.max_command_buffer_len = 100_000;
            });
        let publisher = builder.build().map_err(unavailable)?;
        let subscriber = builder.build_subscriber_client().map_err(unavailable)?;
        publisher.init().await.map_err(unavailable)?;
        subscriber.init().await.map_err(unavailable)?;
        // the task lives as long as the client; re-subscribes after every reconnection
        drop(subscriber.manage_subscriptions());

        let stats = Arc::new(DriverStats::default());
        let router = Arc::new(router_cell::RouterCell::default());

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
        let s3 = stats.clone();
        tokio::spawn(async move {
            while reconnects.recv().await.is_ok() {
                s3.reconnects.fetch_add(1, Ordering::Relaxed);
                tracing::info!("redis subscriber reconnected; subscriptions restored");
            }
        });
        let mut errors = subscriber.error_rx();
        tokio::spawn(async move {
            while let Ok((e, _)) = errors.recv().await {
                tracing::warn!(cause = %e, "redis connection error");
            }
        });

        // publishing loop: batches of what is queued go out as one pipeline, in order
        let (tx, mut qrx) = mpsc::channel::<PublishCmd>(conn.publish_queue.max(1));
        let (p2, s4) = (publisher.clone(), stats.clone());
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(256);
            while qrx.recv_many(&mut batch, 256).await > 0 {
                let pipeline = p2.pipeline();
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
                let results = pipeline.try_all::<Value>().await;
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
        Ok(Arc::new(FredDriver { publisher, subscriber, queue: tx, router, stats, clustered }))
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
        Box::pin(async move {
            for s in subs {
                match s {
                    Subscription::Channel(c) => self.subscriber.subscribe(c).await,
                    Subscription::Pattern(p) => self.subscriber.psubscribe(p).await,
                    Subscription::Shard(c) => self.subscriber.ssubscribe(c).await,
                }
                .map_err(unavailable)?;
            }
            Ok(())
        })
    }

    fn unsubscribe(&self, subs: Vec<Subscription>) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async move {
            for s in subs {
                match s {
                    Subscription::Channel(c) => self.subscriber.unsubscribe(c).await,
                    Subscription::Pattern(p) => self.subscriber.punsubscribe(p).await,
                    Subscription::Shard(c) => self.subscriber.sunsubscribe(c).await,
                }
                .map_err(unavailable)?;
            }
            Ok(())
        })
    }

    fn num_sub(&self, channel: String, sharded: bool) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async move {
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
            let _ = self.subscriber.quit().await;
            let _ = self.publisher.quit().await;
        })
    }
}
