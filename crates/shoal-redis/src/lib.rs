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
pub mod driver;
pub mod wire;

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use bytes::Bytes;
use parking_lot::RwLock;
use shoal_core::{Adapter, AdapterFactory, LocalNamespace};

pub use classic::ClassicAdapter;
pub use driver::{Driver, DriverStats, FredDriver, RedisConnection, Subscription};
pub use shoal_core::AdapterError;

/// Which of Node's adapters to be compatible with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum RedisMode {
    /// `createAdapter`: classic `PUBLISH`/`SUBSCRIBE`.
    #[default]
    Classic,
}

/// Settings of the Redis adapter.
#[derive(Debug, Clone)]
pub struct RedisAdapterConfig {
    /// The connection.
    pub connection: RedisConnection,
    /// Compatibility mode. Default classic.
    pub mode: RedisMode,
    /// Channel prefix (Node's `key`). Default `socket.io`.
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

/// Creates the Redis adapter of every namespace, over one shared connection pair.
pub struct RedisAdapterFactory {
    shared: classic::Shared,
    namespaces: Arc<RwLock<HashMap<String, Weak<ClassicAdapter>>>>,
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
        let namespaces: Arc<RwLock<HashMap<String, Weak<ClassicAdapter>>>> = Arc::default();
        let key = config.key.clone();
        let routes = namespaces.clone();
        driver.set_router(Arc::new(move |channel: &str, payload: Bytes| {
            let Some(nsp) = namespace_of(&key, channel) else { return };
            let adapter = routes.read().get(nsp).and_then(Weak::upgrade);
            if let Some(a) = adapter {
                a.on_message(channel, payload);
            }
        }));
        Arc::new(RedisAdapterFactory {
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
        let adapter = ClassicAdapter::new(self.shared.clone(), local);
        let mut map = self.namespaces.write();
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(name, Arc::downgrade(&adapter));
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
