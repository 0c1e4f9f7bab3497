//! Broadcast operators: `to`, `except`, `volatile`, `local`, `timeout`, then an action.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use shoal_core::{AckCollector, AckResponse, AdapterError, BroadcastOptions, Room, SocketInfo};
use shoal_socketio_proto::{Args, Packet};

use crate::errors::{BroadcastAckError, SendError};
use crate::ns::NsInner;

/// A broadcast being built: who receives it and how. Built from a namespace, the server
/// or a socket; consumed by an action (`emit`, `fetch_sockets`, ...).
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator").field("ns", &self.ns.name()).field("opts", &self.opts).finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NsInner>, opts: BroadcastOptions) -> Self {
        BroadcastOperator { ns, opts }
    }

    /// Adds `room` to the targets (a socket id targets that socket).
    #[must_use]
    pub fn to(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.opts.rooms.contains(&r) {
            self.opts.rooms.push(r);
        }
        self
    }

    /// Same as [`BroadcastOperator::to`].
    #[must_use]
    pub fn within(self, room: impl Into<Room>) -> Self {
        self.to(room)
    }

    /// Adds several target rooms.
    #[must_use]
    pub fn to_many<R: Into<Room>>(mut self, rooms: impl IntoIterator<Item = R>) -> Self {
        for r in rooms {
            self = self.to(r);
        }
        self
    }

    /// Excludes the members of `room`.
    #[must_use]
    pub fn except(mut self, room: impl Into<Room>) -> Self {
        let r = room.into();
        if !self.opts.except.contains(&r) {
            self.opts.except.push(r);
        }
        self
    }

    /// Drops the packet for clients that cannot take it right now.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// Only the sockets of this node.
    #[must_use]
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Asks for compression (WebSocket permessage-deflate, when negotiated).
    #[must_use]
    pub fn compress(mut self, compress: bool) -> Self {
        self.opts.flags.compress = compress;
        self
    }

    /// Timeout for the acknowledgements of a following [`BroadcastOperator::emit_with_ack`].
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.opts.timeout = Some(timeout);
        self
    }

    /// The options built so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    fn broadcast(&self, packet: &Packet) -> Result<(), SendError> {
        if self.opts.flags.local {
            self.ns.broadcast_local(packet, &self.opts);
            return Ok(());
        }
        self.ns.adapter().broadcast(packet, &self.opts).map_err(SendError::from)
    }

    /// Emits `event` with one argument to the targets. The packet is encoded once.
    ///
    /// # Errors
    /// When `data` cannot be serialized, or (the packet was still delivered locally) the
    /// adapter could not reach other nodes.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), SendError> {
        let args = Args::single(data)?.with_event(event);
        self.broadcast(&Packet::event(self.ns.name_cow(), args, None))
    }

    /// Emits `event` with several arguments.
    ///
    /// # Errors
    /// As [`BroadcastOperator::emit`].
    pub fn emit_args(&self, event: &str, args: Args) -> Result<(), SendError> {
        self.broadcast(&Packet::event(self.ns.name_cow(), args.with_event(event), None))
    }

    /// Emits `event` and collects every target's acknowledgement (from every node),
    /// waiting at most the operator's timeout (default: the configured `ack_timeout`).
    ///
    /// # Errors
    /// [`BroadcastAckError::Timeout`] (with the answers received) when some did not come.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Vec<AckResponse>, BroadcastAckError> {
        let args = Args::single(data).map_err(SendError::from)?;
        self.emit_args_with_ack(event, args).await
    }

    /// As [`BroadcastOperator::emit_with_ack`] with several arguments.
    ///
    /// # Errors
    /// As [`BroadcastOperator::emit_with_ack`].
    pub async fn emit_args_with_ack(&self, event: &str, args: Args) -> Result<Vec<AckResponse>, BroadcastAckError> {
        let timeout = self.opts.timeout.unwrap_or(self.ns.config.ack_timeout);
        let packet = Packet::event(self.ns.name_cow(), args.with_event(event), None);
        let (sink, mut collector) = AckCollector::new(1, timeout);
        if self.opts.flags.local {
            let n = self.ns.broadcast_local_with_ack(&packet, &self.opts, &sink);
            sink.expect(n);
        } else {
            let servers =
                self.ns.adapter().broadcast_with_ack(&packet, &self.opts, sink).await.map_err(SendError::from)?;
            collector.set_servers(servers);
        }
        Ok(collector.collect().await?)
    }

    /// Describes the target sockets of every node.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn fetch_sockets(&self) -> Result<Vec<SocketInfo>, AdapterError> {
        if self.opts.flags.local {
            return Ok(self.ns.local_view().fetch_sockets(&self.opts));
        }
        self.ns.adapter().fetch_sockets(&self.opts).await
    }

    /// Makes the target sockets (of every node) join `rooms`.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn sockets_join<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        if self.opts.flags.local {
            self.ns.local_view().add_sockets(&self.opts, &rooms);
            return Ok(());
        }
        self.ns.adapter().add_sockets(&self.opts, &rooms).await
    }

    /// Makes the target sockets (of every node) leave `rooms`.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn sockets_leave<R: Into<Room>>(&self, rooms: impl IntoIterator<Item = R>) -> Result<(), AdapterError> {
        let rooms: Vec<Room> = rooms.into_iter().map(Into::into).collect();
        if self.opts.flags.local {
            self.ns.local_view().del_sockets(&self.opts, &rooms);
            return Ok(());
        }
        self.ns.adapter().del_sockets(&self.opts, &rooms).await
    }

    /// Disconnects the target sockets (of every node); `close` also closes their
    /// connections.
    ///
    /// # Errors
    /// When other nodes cannot be reached.
    pub async fn disconnect_sockets(&self, close: bool) -> Result<(), AdapterError> {
        if self.opts.flags.local {
            self.ns.local_view().disconnect_sockets(&self.opts, close);
            return Ok(());
        }
        self.ns.adapter().disconnect_sockets(&self.opts, close).await
    }
}
