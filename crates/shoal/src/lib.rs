//! # Shoal: a Socket.IO server for many processes and machines
//!
//! Shoal speaks Engine.IO v4 and Socket.IO v5, so the official JavaScript client,
//! python-socketio and other standard clients connect to it unchanged. It mounts into any
//! tower/hyper/axum application or runs standalone.
//!
//! ```no_run
//! use shoal::{Event, Socket, SocketIo};
//!
//! #[tokio::main]
//! async fn main() -> std::io::Result<()> {
//!     let io = SocketIo::builder().build().expect("valid settings");
//!     io.of("/").on_connect(|socket: Socket| async move {
//!         socket.join("lobby");
//!         socket.on("chat", |socket: Socket, ev: Event| async move {
//!             // to everyone in the lobby but the sender; encoded once for all
//!             let _ = socket.to("lobby").emit_args("chat", ev.into_args());
//!         });
//!         socket.on("ping", |_socket: Socket, mut ev: Event| async move {
//!             let _ = ev.ack("pong");
//!         });
//!     });
//!     let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await?;
//!     shoal::serve(listener, io, async { let _ = tokio::signal::ctrl_c().await; }).await
//! }
//! ```
//!
//! # Concepts
//! - [`SocketIo`] is the server; [`SocketIo::of`] gives a [`Namespace`], where
//!   middlewares ([`Namespace::use_middleware`]) and the connect handler
//!   ([`Namespace::on_connect`]) are registered. [`SocketIo::of_dynamic`] serves every
//!   namespace matching a pattern or a predicate.
//! - A [`Socket`] is one client in one namespace: `on(event, handler)`, `emit`,
//!   `emit_with_ack`, `join`/`leave`, `to(room)`, `disconnect`.
//! - Handlers are `async` closures. They run on the connection's task, and are spawned
//!   only if they wait, so a handler that answers at once costs no task.
//! - Broadcasts ([`BroadcastOperator`]: `to`, `except`, `volatile`, `local`, `timeout`)
//!   are encoded once and the same bytes are queued for every recipient.
//! - Rooms and broadcasts go through an adapter ([`shoal_core::Adapter`]): in memory by
//!   default, Redis or the embedded cluster adapter to span processes and machines.
//!
//! # Many nodes
//! Session and socket ids start with the node id ([`SocketIo::node_id`]). With a
//! [`NodeDirectory`] ([`SocketIoBuilder::node_directory`], e.g. the Redis membership), a
//! node forwards the requests of other nodes' sessions to their owner, so any
//! round-robin load balancer works. [`SocketIo::drain`] refuses new connections while the
//! current ones go on, and [`SocketIo::drain_and_close`] then closes them so that clients
//! reconnect elsewhere.
//!
//! # Limits and slow clients
//! Every client has a bounded send queue (`max_buffered_packets`, 8192, and
//! `max_buffered_bytes`, 8 MiB). When it is full, a volatile packet is dropped and any
//! other packet disconnects the client with reason "slow consumer": one slow client never
//! makes the server buffer without bound or delays the others. Incoming packets are
//! bounded by `max_payload` (1 MB), `max_attachments` (10) and `max_attachment_bytes`;
//! server→client acknowledgements by `max_pending_acks` (1024 per socket).

mod client;
mod codec;
pub mod config;
pub mod errors;
mod handler;
mod handshake;
mod io;
mod ns;
mod operators;
mod serve;
mod socket;

pub use client::{Client, ClientState};
pub use config::SocketIoConfig;
pub use errors::{AckError, BroadcastAckError, ConnectError, DisconnectReason, SendError};
pub use handler::{AckSender, BoxFuture, ConnectHandler, DisconnectHandler, Event, EventHandler, Middleware};
pub use handshake::Handshake;
pub use io::{NamespaceMatcher, NamespacePredicate, SocketIo, SocketIoBuilder, SocketIoLayer, SocketIoService};
pub use ns::{Namespace, ServerEventHandler};
pub use operators::BroadcastOperator;
pub use serve::{serve, serve_with};
pub use socket::Socket;

pub use shoal_core::{AckResponse, AdapterError, Room, SocketInfo};
pub use shoal_engineio::{
    AllowedOrigins, BoxError, CookieConfig, Cors, NodeDirectory, NodeId, NotFound, RemoteAddr, RequestInfo, Sid,
    TransportKind, X_SHOAL_FORWARDED, server::ServerConfig,
};
pub use shoal_socketio_proto::Args;
