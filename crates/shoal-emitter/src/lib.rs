//! # Emit to a Socket.IO cluster through Redis, without being a server
//!
//! An [`Emitter`] publishes on Redis what a Socket.IO server would publish when it
//! broadcasts, so that every server of the cluster delivers it to its clients: events to
//! rooms or to everyone, room joins and leaves, disconnections, and events to the servers
//! themselves. It works with Shoal nodes and with Node.js servers alike.
//!
//! Two protocols:
//! - [`EmitterMode::Classic`]: the classic `@socket.io/redis-adapter` (`createAdapter`,
//!   `PUBLISH`). Byte for byte what `@socket.io/redis-emitter` 5 publishes for the same
//!   calls.
//! - [`EmitterMode::Sharded`]: the sharded adapter (`createShardedAdapter`, Redis 7
//!   `SPUBLISH`), which Node's emitter cannot reach: the `ClusterAdapter` messages a node
//!   of that cluster would publish, with the uid `"emitter"`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), shoal_emitter::EmitterError> {
//! use shoal_emitter::{Emitter, EmitterConfig};
//!
//! let emitter = Emitter::connect("redis://127.0.0.1:6379", EmitterConfig::default()).await?;
//! // to everyone on "/"
//! emitter.emit("news", &"hello").await?;
//! // to room "room1" of "/chat", except the members of "muted", if they can take it now
//! emitter.clone().of("/chat").to("room1").except("muted").volatile().emit("tick", &42).await?;
//! // every socket of room "room1" joins "room2"
//! emitter.clone().to("room1").sockets_join(["room2"]).await?;
//! # Ok(()) }
//! ```
//!
//! The targeting methods ([`Emitter::of`], [`Emitter::to`], [`Emitter::except`],
//! [`Emitter::volatile`], [`Emitter::compress`]) take the emitter by value and return it
//! modified; clone a base emitter to derive several (cloning is cheap: the connection is
//! shared). The operations take `&self`, so a targeted emitter can be used many times.
//!
//! Every operation waits until Redis accepted the publish, and fails with
//! [`EmitterError::Redis`] when it did not (nothing is retried: Redis pub/sub keeps no
//! history, so a message published while no server listens is lost anyway).
//!
//! Not supported, as in Node's emitter: acknowledgements (nothing can answer an emitter).
//!
//! # Channels and messages
//! `key` is [`EmitterConfig::key`], `nsp` the namespace. The `encode_*` methods return what
//! would be published ([`Publication`]), without publishing it.
//!
//! Classic (`PUBLISH`), as `@socket.io/redis-emitter` 5.1:
//!
//! | operation | channel | message |
//! |---|---|---|
//! | emit | `<key>#<nsp>#`, or `<key>#<nsp>#<room>#` with exactly one room | MessagePack `["emitter", {type: 2, data: [event, …args], nsp}, {rooms, flags, except}]` |
//! | join / leave | `<key>-request#<nsp>#` | JSON `{type: 2 / 3, opts: {rooms, except}, rooms}` |
//! | disconnect | `<key>-request#<nsp>#` | JSON `{type: 4, opts: {rooms, except}, close}` |
//! | server-side emit | `<key>-request#<nsp>#` | JSON `{uid: "emitter", type: 6, data: [event, …args]}` |
//!
//! Sharded (`SPUBLISH`), the `ClusterAdapter` messages `{uid: "emitter", nsp, type, data}`,
//! JSON, or MessagePack when a broadcast or a server-side emit carries binary:
//!
//! | operation | channel | `type`, `data` |
//! |---|---|---|
//! | emit | `<key>#<nsp>#`; `<key>#<nsp>#<room>#` with exactly one room in the dynamic modes, unless it looks like a socket id | 3, `{packet: {type: 2, data: [event, …args]}, opts: {rooms, except, flags}}` |
//! | join / leave | `<key>#<nsp>#` | 4 / 5, `{opts, rooms}` |
//! | disconnect | `<key>#<nsp>#` | 6, `{opts, close}` |
//! | server-side emit | `<key>#<nsp>#` | 9, `{packet: [event, …args]}` |
//!
//! Binary values (`bytes::Bytes` in the arguments) are MessagePack `bin` wherever
//! MessagePack is used; in the classic server-side emit (JSON), they are written as
//! `JSON.stringify` writes a Node Buffer, `{"type":"Buffer","data":[…]}`, as Node's emitter
//! does. Numbers follow JavaScript: a float without fractional part is written as an
//! integer (within ±2^53). Flags keep the order they were set in, as Node's do.

mod encode;

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;
pub use shoal_core::{Args, Room};
/// Which rooms have their own channel in a sharded cluster (the sharded adapter's
/// `subscriptionMode`): the emitter must use the same as the servers.
pub use shoal_redis::SubscriptionMode;
use shoal_redis::{AdapterError, Driver, FredDriver, RedisConnection};

/// The uid emitters put in their messages (servers know it is not one of them).
pub const EMITTER_UID: &str = "emitter";

/// Event names an emitter refuses to emit, as Node's: the clients and servers give them
/// their own meaning.
pub const RESERVED_EVENTS: [&str; 6] =
    ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// Event names [`Emitter::server_side_emit`] refuses besides [`RESERVED_EVENTS`]: a Node
/// server would hand such an event to its own connection listeners.
pub const RESERVED_SERVER_SIDE_EVENTS: [&str; 2] = ["connection", "new_namespace"];

/// Which adapter the servers of the cluster use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum EmitterMode {
    /// The classic Redis adapter (`createAdapter`: `PUBLISH`/`SUBSCRIBE`), what Node's
    /// `@socket.io/redis-emitter` speaks.
    #[default]
    Classic,
    /// The sharded Redis adapter (`createShardedAdapter`: `SPUBLISH`/`SSUBSCRIBE`).
    Sharded {
        /// The servers' subscription mode.
        subscription: SubscriptionMode,
    },
}

/// Settings of an [`Emitter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmitterConfig {
    /// Channel prefix: the classic adapter's `key`, the sharded adapter's
    /// `channelPrefix`. Default `socket.io`.
    pub key: String,
    /// The servers' adapter. Default classic.
    pub mode: EmitterMode,
}

impl Default for EmitterConfig {
    fn default() -> Self {
        EmitterConfig { key: "socket.io".into(), mode: EmitterMode::Classic }
    }
}

impl EmitterConfig {
    /// Sets the channel prefix.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = key.into();
        self
    }

    /// Sets the mode.
    #[must_use]
    pub fn mode(mut self, mode: EmitterMode) -> Self {
        self.mode = mode;
        self
    }
}

/// Why an emitter operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EmitterError {
    /// The event name is one of [`RESERVED_EVENTS`] (or, for server-side emits,
    /// [`RESERVED_SERVER_SIDE_EVENTS`]).
    #[error("\"{0}\" is a reserved event name")]
    ReservedEvent(String),
    /// The arguments could not be serialized.
    #[error("cannot serialize the arguments: {0}")]
    Serialize(#[from] serde_json::Error),
    /// Redis could not be reached, or refused the publish.
    #[error("redis: {0}")]
    Redis(#[from] AdapterError),
}

/// One message as the emitter publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publication {
    /// The channel.
    pub channel: String,
    /// The message (MessagePack or JSON text).
    pub payload: Bytes,
    /// `SPUBLISH` (sharded pub/sub) rather than `PUBLISH`.
    pub sharded: bool,
}

/// A modifier of broadcasts, in the order the caller set them (Node keeps the flags in an
/// object, whose keys keep their insertion order on the wire).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Flags(pub(crate) Vec<(&'static str, bool)>);

impl Flags {
    fn set(&mut self, name: &'static str, value: bool) {
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.0.push((name, value)),
        }
    }
}

/// Publishes broadcasts and cluster operations on Redis for the servers to carry out.
///
/// Created for namespace `/`, to everyone; see the crate documentation.
#[derive(Clone)]
pub struct Emitter {
    driver: Arc<dyn Driver>,
    config: Arc<EmitterConfig>,
    nsp: String,
    rooms: Vec<Room>,
    except: Vec<Room>,
    flags: Flags,
}

impl std::fmt::Debug for Emitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emitter")
            .field("key", &self.config.key)
            .field("mode", &self.config.mode)
            .field("nsp", &self.nsp)
            .field("rooms", &self.rooms)
            .field("except", &self.except)
            .field("flags", &self.flags.0)
            .finish_non_exhaustive()
    }
}

impl Emitter {
    /// An emitter over any [`Driver`] (only its publishing side is used), for namespace
    /// `/`.
    pub fn new(driver: Arc<dyn Driver>, config: EmitterConfig) -> Emitter {
        Emitter {
            driver,
            config: Arc::new(config),
            nsp: "/".into(),
            rooms: Vec::new(),
            except: Vec::new(),
            flags: Flags::default(),
        }
    }

    /// Connects to Redis (`redis://…`, `rediss://…`, `redis-cluster://…`, as
    /// [`RedisConnection::url`]) and returns an emitter for namespace `/`.
    ///
    /// # Errors
    /// [`EmitterError::Redis`] when the URL is invalid or Redis cannot be reached.
    pub async fn connect(url: &str, config: EmitterConfig) -> Result<Emitter, EmitterError> {
        let driver = FredDriver::connect_publisher(&RedisConnection::new(url)).await?;
        Ok(Emitter::new(driver, config))
    }

    /// The driver (shared by every clone of this emitter).
    pub fn driver(&self) -> &Arc<dyn Driver> {
        &self.driver
    }

    /// The settings.
    pub fn config(&self) -> &EmitterConfig {
        &self.config
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// Closes the Redis connection (of every clone of this emitter).
    pub async fn close(&self) {
        self.driver.close().await;
    }

    /// Targets namespace `nsp` (a missing leading `/` is added). Rooms, exceptions and
    /// flags already set are kept.
    #[must_use]
    pub fn of(mut self, nsp: &str) -> Self {
        self.nsp = if nsp.starts_with('/') { nsp.to_owned() } else { format!("/{nsp}") };
        self
    }

    /// Targets the members of `room` (several calls: the members of any of them; none:
    /// every socket of the namespace). A socket id targets that socket.
    #[must_use]
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.rooms.contains(&room) {
            self.rooms.push(room);
        }
        self
    }

    /// Same as [`Emitter::to`].
    #[must_use]
    pub fn within(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Leaves out the members of `room`.
    #[must_use]
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        let room = room.into();
        if !self.except.contains(&room) {
            self.except.push(room);
        }
        self
    }

    /// The event may be dropped for clients that cannot take it right now.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.flags.set("volatile", true);
        self
    }

    /// Sets the compress flag (WebSocket permessage-deflate, where negotiated).
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.flags.set("compress", compress);
        self
    }

    /// Emits `event` with one argument (`bytes::Bytes` values inside it travel as binary;
    /// a tuple is one array argument: use [`Emitter::emit_args`] for several) to the
    /// targeted sockets.
    ///
    /// # Errors
    /// A reserved event name, arguments that cannot be serialized, or Redis failing.
    pub async fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitterError> {
        let publication = self.encode_emit(event, Args::single(data)?)?;
        self.publish(publication).await
    }

    /// Emits `event` with any number of arguments (`Args::from_serialize(&(a, b))`).
    ///
    /// # Errors
    /// As [`Emitter::emit`].
    pub async fn emit_args(&self, event: &str, args: Args) -> Result<(), EmitterError> {
        let publication = self.encode_emit(event, args)?;
        self.publish(publication).await
    }

    /// Makes the targeted sockets join `rooms`.
    ///
    /// # Errors
    /// Redis failing.
    pub async fn sockets_join<I>(&self, rooms: I) -> Result<(), EmitterError>
    where
        I: IntoIterator,
        I::Item: Into<Room>,
    {
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        self.publish(self.encode_sockets_join(&rooms)).await
    }

    /// Makes the targeted sockets leave `rooms`.
    ///
    /// # Errors
    /// Redis failing.
    pub async fn sockets_leave<I>(&self, rooms: I) -> Result<(), EmitterError>
    where
        I: IntoIterator,
        I::Item: Into<Room>,
    {
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        self.publish(self.encode_sockets_leave(&rooms)).await
    }

    /// Disconnects the targeted sockets; with `close`, closes their whole connection
    /// (every namespace).
    ///
    /// # Errors
    /// Redis failing.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), EmitterError> {
        self.publish(self.encode_disconnect_sockets(close)).await
    }

    /// Emits `event` with one argument to the servers of the namespace (their server-side
    /// listeners), not to clients. Rooms, exceptions and flags do not apply.
    ///
    /// # Errors
    /// A reserved event name, arguments that cannot be serialized, or Redis failing.
    pub async fn server_side_emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitterError> {
        let publication = self.encode_server_side_emit(event, Args::single(data)?)?;
        self.publish(publication).await
    }

    /// [`Emitter::server_side_emit`] with any number of arguments.
    ///
    /// # Errors
    /// As [`Emitter::server_side_emit`].
    pub async fn server_side_emit_args(&self, event: &str, args: Args) -> Result<(), EmitterError> {
        let publication = self.encode_server_side_emit(event, args)?;
        self.publish(publication).await
    }

    /// Publishes a message (as built by the `encode_*` methods) and waits until Redis
    /// accepted it.
    ///
    /// # Errors
    /// [`EmitterError::Redis`].
    pub async fn publish(&self, publication: Publication) -> Result<(), EmitterError> {
        let Publication { channel, payload, sharded } = publication;
        self.driver.publish_wait(channel, payload, sharded).await?;
        Ok(())
    }

    /// What [`Emitter::emit_args`] publishes.
    ///
    /// # Errors
    /// A reserved event name.
    pub fn encode_emit(&self, event: &str, args: Args) -> Result<Publication, EmitterError> {
        if RESERVED_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        Ok(encode::broadcast(self.target(), args.with_event(event)))
    }

    /// What [`Emitter::sockets_join`] publishes.
    pub fn encode_sockets_join(&self, rooms: &[Room]) -> Publication {
        encode::rooms_op(self.target(), true, rooms)
    }

    /// What [`Emitter::sockets_leave`] publishes.
    pub fn encode_sockets_leave(&self, rooms: &[Room]) -> Publication {
        encode::rooms_op(self.target(), false, rooms)
    }

    /// What [`Emitter::disconnect_sockets`] publishes.
    pub fn encode_disconnect_sockets(&self, close: bool) -> Publication {
        encode::disconnect(self.target(), close)
    }

    /// What [`Emitter::server_side_emit_args`] publishes.
    ///
    /// # Errors
    /// A reserved event name.
    pub fn encode_server_side_emit(&self, event: &str, args: Args) -> Result<Publication, EmitterError> {
        if RESERVED_EVENTS.contains(&event) || RESERVED_SERVER_SIDE_EVENTS.contains(&event) {
            return Err(EmitterError::ReservedEvent(event.to_owned()));
        }
        Ok(encode::server_side_emit(self.target(), args.with_event(event)))
    }

    fn target(&self) -> encode::Target<'_> {
        encode::Target {
            key: &self.config.key,
            mode: self.config.mode,
            nsp: &self.nsp,
            rooms: &self.rooms,
            except: &self.except,
            flags: &self.flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send>(_: &T) {}

    /// A driver that only refuses: enough to build futures.
    struct Refuse;

    impl Driver for Refuse {
        fn publish(&self, _: String, _: Bytes, _: bool) -> Result<(), AdapterError> {
            Err(AdapterError::Unavailable("test".into()))
        }
        fn publish_wait(
            &self,
            _: String,
            _: Bytes,
            _: bool,
        ) -> shoal_redis::driver::BoxFuture<'_, Result<(), AdapterError>> {
            Box::pin(async { Err(AdapterError::Unavailable("test".into())) })
        }
        fn subscribe(
            &self,
            _: Vec<shoal_redis::Subscription>,
        ) -> shoal_redis::driver::BoxFuture<'_, Result<(), AdapterError>> {
            Box::pin(async { Ok(()) })
        }
        fn unsubscribe(
            &self,
            _: Vec<shoal_redis::Subscription>,
        ) -> shoal_redis::driver::BoxFuture<'_, Result<(), AdapterError>> {
            Box::pin(async { Ok(()) })
        }
        fn num_sub(&self, _: String, _: bool) -> shoal_redis::driver::BoxFuture<'_, Result<usize, AdapterError>> {
            Box::pin(async { Ok(0) })
        }
        fn set_router(&self, _: shoal_redis::driver::Router) {}
        fn stats(&self) -> &shoal_redis::DriverStats {
            unreachable!()
        }
        fn is_connected(&self) -> bool {
            false
        }
        fn close(&self) -> shoal_redis::driver::BoxFuture<'_, ()> {
            Box::pin(async {})
        }
    }

    #[test]
    fn targeting_and_futures() {
        let e = Emitter::new(Arc::new(Refuse), EmitterConfig::default()).of("chat").to("a").to("a").except("b");
        assert_eq!(e.namespace(), "/chat");
        let e = e.compress(false).volatile().compress(true);
        // Node keeps the flags' first position when one is set again
        assert_eq!(e.flags.0, [("compress", true), ("volatile", true)]);
        // the futures can be spawned
        send(&e.emit("x", &1));
        send(&e.sockets_join(["r"]));
        send(&e.server_side_emit("x", &1));
        // a publish that fails is an error, with the driver's reason
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let err = rt.block_on(e.emit("x", &1)).unwrap_err();
        assert!(matches!(err, EmitterError::Redis(_)), "{err}");
        let err = rt.block_on(e.emit("disconnect", &1)).unwrap_err();
        assert!(matches!(err, EmitterError::ReservedEvent(_)), "{err}");
    }
}
