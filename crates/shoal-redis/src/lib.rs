//! # Redis adapter for Shoal
//!
//! Several Shoal nodes — and Node.js socket.io servers — sharing one Redis act as one
//! server: broadcasts reach the clients of every node, acknowledgements are collected
//! across nodes, fetch-sockets returns every node's sockets, and so on. The wire format
//! is that of Node's `@socket.io/redis-adapter` 8.3 and `@socket.io/redis-emitter` 5,
//! byte for byte, so mixed clusters and existing emitters work.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
//!
//! let factory = RedisAdapterFactory::connect(RedisAdapterConfig::new("redis://127.0.0.1:6379")).await?;
//! let io = shoal::SocketIo::builder().adapter(factory).build()?;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`wire`]: the message formats (MessagePack / JSON), pure functions.
//! - [`driver`]: the broker interface ([`Driver`]) and its Redis implementation
//!   ([`FredDriver`]), which reconnects with backoff and restores every subscription.
//! - [`classic`]: the classic pub/sub adapter (`createAdapter`).
//! - [`sharded`]: the sharded pub/sub adapter (`createShardedAdapter`), and
//!   [`cluster_wire`], the messages of socket.io-adapter's `ClusterAdapter` it exchanges.
//! - [`membership`]: nodes announcing themselves (id, internal address, load, draining)
//!   and the watcher that keeps the list of live nodes, for forwarding and balancing.
//!
//! # Sharded mode
//! [`RedisMode::Sharded`] is compatible with Node's `createShardedAdapter(pub, sub,
//! {channelPrefix, subscriptionMode})` (Redis ≥ 7.0; `SSUBSCRIBE`/`SPUBLISH` only, so the
//! classic emitter cannot reach it). It works on one Redis and on a Redis Cluster
//! (`redis-cluster://host:port?node=host:port&node=…`), where sharded pub/sub keeps each
//! channel on the master owning its hash slot instead of copying every message to every
//! master. [`RedisAdapterConfig::key`] is the channel prefix; every node of the cluster must
//! use the same [`SubscriptionMode`]:
//! - `static`: two channels per namespace (`<prefix>#<nsp>#`, and `<prefix>#<nsp>#<uid>#`
//!   for responses); every broadcast reaches every node;
//! - `dynamic` (default): plus `<prefix>#<nsp>#<room>#` for every public room with members
//!   on the node; a broadcast to exactly one room (not a socket id) only reaches the nodes
//!   where it has members;
//! - `dynamic-private`: also socket-id rooms (every socket's own room), so a broadcast to
//!   one socket reaches only the node that has it (see
//!   [`ShardedAdapter::broadcast_channel`]).
//!
//! Unlike the classic adapter, the sender of a broadcast, join, leave or disconnect
//! applies it locally at once, and other nodes apply it when it arrives. There is no
//! all-rooms request in this protocol: [`Adapter::all_rooms`] gathers the rooms of every
//! socket through a fetch-sockets request. The server count is `PUBSUB SHARDNUMSUB` of
//! the main channel.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory, RedisMode, SubscriptionMode};
//!
//! let config = RedisAdapterConfig::new("redis-cluster://127.0.0.1:7000?node=127.0.0.1:7001")
//!     .mode(RedisMode::Sharded { subscription: SubscriptionMode::Dynamic });
//! let io = shoal::SocketIo::builder().adapter(RedisAdapterFactory::connect(config).await?).build()?;
//! # Ok(()) }
//! ```
//!
//! # When Redis is unreachable
//! - Local delivery goes on: a broadcast still reaches this node's clients.
//! - What this node publishes while disconnected is **lost** for the other nodes
//!   (`broadcast` and `emit` return [`AdapterError::Unavailable`], the drop is logged and
//!   counted in [`DriverStats::publish_errors`]); nothing is replayed after the
//!   reconnection (Redis pub/sub keeps no history).
//! - What other nodes publish while this node's subscriber is disconnected is lost for
//!   this node.
//! - Requests (fetch sockets, all rooms, server-side emit with acks, broadcasts with
//!   acks) fail at once or time out after `requests_timeout`.
//! - The driver reconnects with exponential backoff (100 ms to 5 s) and re-subscribes
//!   every channel; from then on everything flows again.

pub mod classic;
pub mod cluster_wire;
pub mod driver;
pub mod membership;
pub mod sharded;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use shoal_core::{Adapter, AdapterFactory, LocalNamespace};

pub use classic::ClassicAdapter;
pub use driver::{Driver, DriverStats, FredDriver, RedisConnection, Subscription};
pub use sharded::{ShardedAdapter, SubscriptionMode};
pub use shoal_core::AdapterError;

/// Which of Node's adapters to be compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedisMode {
    /// `createAdapter`: classic `PUBLISH`/`SUBSCRIBE`.
    #[default]
    Classic,
    /// `createShardedAdapter`: sharded `SPUBLISH`/`SSUBSCRIBE` (Redis ≥ 7.0).
    Sharded {
        /// Which rooms get their own channel (Node's `subscriptionMode`).
        subscription: SubscriptionMode,
    },
}

impl RedisMode {
    /// The sharded mode with the default subscription mode (`dynamic`).
    pub fn sharded() -> RedisMode {
        RedisMode::Sharded { subscription: SubscriptionMode::default() }
    }
}

/// Settings of the Redis adapter.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The connection.
    pub connection: RedisConnection,
    /// Compatibility mode. Default classic.
    pub mode: RedisMode,
    /// Channel prefix (Node's `key`; `channelPrefix` of the sharded adapter). Default
    /// `socket.io`.
    pub key: String,
    /// How long requests to other nodes wait for their answers (Node's
    /// `requestsTimeout`). Default 5 s.
    pub requests_timeout: Duration,
    /// Answer on the requester's own channel (Node's `publishOnSpecificResponseChannel`).
    /// Default false.
    pub publish_on_specific_response_channel: bool,
    /// Most requests waiting for answers at once, per namespace. Default 4096.
    pub max_pending_requests: usize,
}

impl RedisAdapterConfig {
    /// Defaults for `url`.
    pub fn new(url: impl Into<String>) -> RedisAdapterConfig {
        RedisAdapterConfig {
            connection: RedisConnection::new(url),
            mode: RedisMode::Classic,
            key: "socket.io".into(),
            requests_timeout: Duration::from_secs(5),
            publish_on_specific_response_channel: false,
            max_pending_requests: 4096,
        }
    }

    /// Sets the channel prefix.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets the requests timeout.
    #[must_use]
    pub fn requests_timeout(mut self, t: Duration) -> Self {
        self.requests_timeout = t;
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: RedisMode) -> Self {
        self.mode = mode;
        self
    }
}

/// An adapter that receives the messages of its namespace's channels.
trait RoutedAdapter: Send + Sync {
    fn on_message(&self, channel: &str, payload: Bytes);
}

impl RoutedAdapter for ClassicAdapter {
    fn on_message(&self, channel: &str, payload: Bytes) {
        ClassicAdapter::on_message(self, channel, payload);
    }
}

impl RoutedAdapter for ShardedAdapter {
    fn on_message(&self, channel: &str, payload: Bytes) {
        ShardedAdapter::on_message(self, channel, &payload);
    }
}

type Routes = Arc<RwLock<HashMap<String, Weak<dyn RoutedAdapter>>>>;

/// Creates the Redis adapter of every namespace, over one shared connection pair.
pub struct RedisAdapterFactory {
    shared: classic::Shared,
    sharded: Option<sharded::Shared>,
    namespaces: Routes,
}

impl std::fmt::Debug for RedisAdapterFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAdapterFactory").field("key", &self.shared.key).finish_non_exhaustive()
    }
}

impl RedisAdapterFactory {
    /// Connects to Redis and returns the factory to give to `SocketIoBuilder::adapter`.
    ///
    /// # Errors
    /// When the URL is invalid or Redis cannot be reached at start.
    pub async fn connect(config: RedisAdapterConfig) -> Result<Arc<RedisAdapterFactory>, AdapterError> {
        let driver = FredDriver::connect(&config.connection).await?;
        Ok(Self::with_driver(config, driver))
    }

    /// A factory over any [`Driver`].
    pub fn with_driver(config: RedisAdapterConfig, driver: Arc<dyn Driver>) -> Arc<RedisAdapterFactory> {
        let namespaces: Routes = Arc::default();
        let key = config.key.clone();
        let routes = namespaces.clone();
        driver.set_router(Arc::new(move |channel: &str, payload: Bytes| {
            let Some(nsp) = namespace_of(&key, channel) else { return };
            let adapter = routes.read().get(nsp).and_then(Weak::upgrade);
            if let Some(a) = adapter {
                a.on_message(channel, payload);
            }
        }));
        let sharded = match config.mode {
            RedisMode::Classic => None,
            RedisMode::Sharded { subscription } => Some(sharded::Shared {
                driver: driver.clone(),
                key: config.key.clone(),
                requests_timeout: config.requests_timeout,
                max_pending_requests: config.max_pending_requests,
                subscription,
                subs: sharded::SubManager::new(driver.clone()),
            }),
        };
        Arc::new(RedisAdapterFactory {
            sharded,
            shared: classic::Shared {
                driver,
                key: config.key,
                requests_timeout: config.requests_timeout,
                specific_response_channel: config.publish_on_specific_response_channel,
                max_pending_requests: config.max_pending_requests,
            },
            namespaces,
        })
    }

    /// The driver (its counters, its state).
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.shared.driver
    }
}

/// The namespace a channel belongs to: `<key>#<nsp>#…`, `<key>-request#<nsp>#`,
/// `<key>-response#<nsp>#…`.
fn namespace_of<'a>(key: &str, channel: &'a str) -> Option<&'a str> {
    let rest = channel.strip_prefix(key)?;
    let rest = rest
        .strip_prefix('#')
        .or_else(|| rest.strip_prefix("-request#"))
        .or_else(|| rest.strip_prefix("-response#"))?;
    rest.split('#').next()
}

impl AdapterFactory for RedisAdapterFactory {
    fn create(&self, local: Arc<dyn LocalNamespace>) -> Arc<dyn Adapter> {
        let name = local.name().to_owned();
        let (route, adapter): (Weak<dyn RoutedAdapter>, Arc<dyn Adapter>) = match &self.sharded {
            Some(shared) => {
                let a = ShardedAdapter::new(shared.clone(), local);
                (Arc::downgrade(&a) as Weak<dyn RoutedAdapter>, a)
            }
            None => {
                let a = ClassicAdapter::new(self.shared.clone(), local);
                (Arc::downgrade(&a) as Weak<dyn RoutedAdapter>, a)
            }
        };
        let mut map = self.namespaces.write();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(name, route);
        adapter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_namespace() {
        assert_eq!(namespace_of("socket.io", "socket.io#/#"), Some("/"));
        assert_eq!(namespace_of("socket.io", "socket.io#/chat#room1#"), Some("/chat"));
        assert_eq!(namespace_of("socket.io", "socket.io-request#/admin#"), Some("/admin"));
        assert_eq!(namespace_of("socket.io", "socket.io-response#/#Ab3dE9#"), Some("/"));
        assert_eq!(namespace_of("socket.io", "other#/#"), None);
        assert_eq!(namespace_of("socket.io", "socket.iox#/#"), None);
    }
}
