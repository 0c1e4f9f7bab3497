//! The adapter interface of Shoal.
//!
//! Rooms and broadcasts go through an [`Adapter`], one per namespace. The default,
//! in-memory adapter only delivers to the sockets of this process; remote adapters
//! (Redis, the embedded cluster adapter) also publish to other nodes and answer their
//! requests. Adapter crates depend on this small crate only, not on the server.
//!
//! # How it fits
//! - The server implements [`LocalNamespace`]: the operations on the sockets of one
//!   namespace in this process (deliver a broadcast, fetch, join, leave, disconnect).
//! - An [`Adapter`] is created per namespace by an [`AdapterFactory`] with that local
//!   namespace. Every method has a default body that acts locally, so a remote adapter
//!   overrides only what must reach other nodes.
//! - Broadcasts with acknowledgements report through an [`AckSink`]: each node says how
//!   many answers it expects, then forwards them; [`AckCollector`] waits for all of them
//!   or the timeout.

mod ack;
mod adapter;
mod error;
mod options;
mod socket;

pub use ack::{AckCollector, AckEvent, AckResponse, AckSink, AckTimeout};
pub use adapter::{Adapter, AdapterFactory, BoxFuture, LocalAdapter, LocalAdapterFactory, LocalNamespace};
pub use error::AdapterError;
pub use options::{BroadcastFlags, BroadcastOptions, Room};
pub use shoal_engineio_proto::{NodeId, Sid};
pub use shoal_socketio_proto::decode::placeholder_index;
pub use shoal_socketio_proto::{Args, Packet, PacketData};
pub use socket::SocketInfo;
