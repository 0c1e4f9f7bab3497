//! The [`Adapter`] trait and the in-memory adapter.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use shoal_socketio_proto::{Args, Packet};

use crate::ack::{AckResponse, AckSink};
use crate::error::AdapterError;
use crate::options::{BroadcastOptions, Room};
use crate::socket::SocketInfo;

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The sockets of one namespace in this process, as the server exposes them to adapters.
pub trait LocalNamespace: Send + Sync + 'static {
    /// The namespace name (`/`, `/chat`).
    fn name(&self) -> &str;

    /// Delivers `packet` (an EVENT) to the local sockets matching `opts`; returns how many
    /// got it. The packet is encoded once for all of them.
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> usize;

    /// Delivers `packet` with a fresh ack id to the matching local sockets; their answers
    /// go to `sink`. Returns how many sockets got it (the answers to expect).
    fn broadcast_with_ack(&self, packet: &Packet, opts: &BroadcastOptions, sink: &AckSink) -> usize;

    /// Describes the matching local sockets.
    fn fetch_sockets(&self, opts: &BroadcastOptions) -> Vec<SocketInfo>;

    /// Makes the matching local sockets join `rooms`.
    fn add_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);

    /// Makes the matching local sockets leave `rooms`.
    fn del_sockets(&self, opts: &BroadcastOptions, rooms: &[Room]);

    /// Disconnects the matching local sockets (`close`: also close their connection).
    fn disconnect_sockets(&self, opts: &BroadcastOptions, close: bool);

    /// Every local room with at least one member (socket-id rooms included).
    fn rooms(&self) -> Vec<Room>;

    /// Runs the namespace's server-side handlers for an event another node emitted
    /// (`args[0]` is the event name). With `ack`, each handler that answers sends its
    /// answer there; returns how many answers to expect.
    fn server_side_emit(&self, args: Args, ack: Option<AckSink>) -> usize;
}

/// Rooms and broadcasts of one namespace. Every method has a default body that acts on
/// the local namespace only: that is the in-memory adapter. Remote adapters override the
/// methods that must reach other nodes.
pub trait Adapter: Send + Sync + 'static {
    /// The local namespace this adapter serves.
    fn local(&self) -> &Arc<dyn LocalNamespace>;

    /// Starts the adapter (subscribe to the broker...).
    fn init(&self) -> BoxFuture<'_, Result<(), AdapterError>> {
        Box::pin(async { Ok(()) })
    }

    /// Stops the adapter (unsubscribe, stop tasks).
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async {})
    }

    /// Number of nodes serving this namespace (this one included).
    fn server_count(&self) -> BoxFuture<'_, Result<usize, AdapterError>> {
        Box::pin(async { Ok(1) })
    }

    /// Broadcasts `packet` (an EVENT). Local delivery always happens (unless no local
    /// socket matches); the error says the other nodes could not be reached.
    ///
    /// # Errors
    /// [`AdapterError::Unavailable`] when the broker is down.
    fn broadcast(&self, packet: &Packet, opts: &BroadcastOptions) -> Result<(), AdapterError> {
        self.local().broadcast(packet, opts);
        Ok(())
    }

    /// Broadcasts `packet` with an acknowledgement request. Returns the number of nodes
    /// that will report to `sink` (each reports once how many answers it expects).
    fn broadcast_with_ack<'a>(
        &'a self,
        packet: &'a Packet,
        opts: &'a BroadcastOptions,
        sink: AckSink,
    ) -> BoxFuture<'a, Result<usize, AdapterError>> {
        let n = self.local().broadcast_with_ack(packet, opts, &sink);
        sink.expect(n);
        Box::pin(async { Ok(1) })
    }

    /// Describes the matching sockets of every node.
    fn fetch_sockets<'a>(&'a self, opts: &'a BroadcastOptions) -> BoxFuture<'a, Result<Vec<SocketInfo>, AdapterError>> {
        let r = self.local().fetch_sockets(opts);
        Box::pin(async { Ok(r) })
    }

    /// Makes the matching sockets of every node join `rooms` (exactly once each).
    fn add_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local().add_sockets(opts, rooms);
        Box::pin(async { Ok(()) })
    }

    /// Makes the matching sockets of every node leave `rooms`.
    fn del_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        rooms: &'a [Room],
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local().del_sockets(opts, rooms);
        Box::pin(async { Ok(()) })
    }

    /// Disconnects the matching sockets of every node.
    fn disconnect_sockets<'a>(
        &'a self,
        opts: &'a BroadcastOptions,
        close: bool,
    ) -> BoxFuture<'a, Result<(), AdapterError>> {
        self.local().disconnect_sockets(opts, close);
        Box::pin(async { Ok(()) })
    }

    /// Every room of every node.
    fn all_rooms(&self) -> BoxFuture<'_, Result<Vec<Room>, AdapterError>> {
        let r = self.local().rooms();
        Box::pin(async { Ok(r) })
    }

    /// Emits an event to the other nodes' server-side handlers (not to this node, as in
    /// Node). `args[0]` is the event name.
    ///
    /// # Errors
    /// [`AdapterError::Unavailable`] when the broker is down.
    fn server_side_emit(&self, args: Args) -> Result<(), AdapterError> {
        let _ = args;
        Ok(())
    }

    /// Emits to the other nodes' server-side handlers and collects their answers.
    ///
    /// # Errors
    /// [`AdapterError::AckTimeout`], with the answers received, when not every other node
    /// answered within `timeout`; [`AdapterError::Unavailable`] when the broker is down.
    fn server_side_emit_with_ack(
        &self,
        args: Args,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<Vec<AckResponse>, AdapterError>> {
        let _ = (args, timeout);
        Box::pin(async { Ok(Vec::new()) })
    }

    /// A room got its first local member (dynamic subscriptions use it).
    fn on_room_created(&self, room: &Room) {
        let _ = room;
    }

    /// A room lost its last local member.
    fn on_room_deleted(&self, room: &Room) {
        let _ = room;
    }
}

/// Creates the adapter of each namespace.
pub trait AdapterFactory: Send + Sync + 'static {
    /// The adapter for `local`.
    fn create(&self, local: Arc<dyn LocalNamespace>) -> Arc<dyn Adapter>;
}

/// The in-memory adapter: one process, no broker.
pub struct LocalAdapter {
    local: Arc<dyn LocalNamespace>,
}

impl std::fmt::Debug for LocalAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAdapter").field("nsp", &self.local.name()).finish()
    }
}

impl LocalAdapter {
    /// An in-memory adapter for `local`.
    pub fn new(local: Arc<dyn LocalNamespace>) -> LocalAdapter {
        LocalAdapter { local }
    }
}

impl Adapter for LocalAdapter {
    fn local(&self) -> &Arc<dyn LocalNamespace> {
        &self.local
    }
}

/// Creates [`LocalAdapter`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct LocalAdapterFactory;

impl AdapterFactory for LocalAdapterFactory {
    fn create(&self, local: Arc<dyn LocalNamespace>) -> Arc<dyn Adapter> {
        Arc::new(LocalAdapter::new(local))
    }
}
