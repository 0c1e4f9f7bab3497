//! Engine.IO v4 server: HTTP long-polling and WebSocket transports, as a tower `Service`.
//!
//! This is Shoal's transport layer. It knows sessions, packets and transports, never
//! namespaces: the layer above implements [`EngineHandler`] and receives each session's
//! messages in order.
//!
//! # How it works
//! - [`Engine`] holds the settings ([`EngineConfig`]), the handler and a sharded table
//!   of sessions. [`EngineService`] / [`EngineLayer`] route the requests under
//!   `config.path` to it and everything else to an inner service, so it mounts in axum,
//!   hyper or any tower stack. [`server::serve`] is a standalone HTTP/1.1 server for it.
//! - Each session has one task ([`Session`] is shared by `Arc`): it sends heartbeats,
//!   takes over the WebSocket after an upgrade, and (on WebSocket) does every read and
//!   write. Sending is a push under a short lock into a bounded queue; the writer takes
//!   the whole queue and writes it in one batch.
//! - Idle WebSocket sessions hold no read or write buffer: reads go through a buffer on
//!   the stack, writes through a buffer freed once written.
//! - Forwarding: with a [`NodeDirectory`] configured, requests for sessions of other nodes
//!   (the sid names its node) are proxied to their owner (see [`X_SHOAL_FORWARDED`]).
//! - Draining: [`Engine::drain`] refuses new sessions with HTTP 503 while the current
//!   ones go on; [`Engine::close_all`] then closes them with a reason clients reconnect
//!   from.
//! - Slow consumers: past `max_buffered_packets` or `max_buffered_bytes` queued, a
//!   volatile packet is dropped and a regular one closes the session with
//!   [`CloseReason::SlowConsumer`].

mod body;
pub mod config;
mod cors;
mod engine;
mod forward;
mod handler;
pub mod request;
pub mod server;
mod service;
mod session;
mod sessions;
mod transport;

pub use body::{BoxError, EitherBody, ResponseBody};
pub use config::{AllowedOrigins, CookieConfig, Cors, EngineConfig, EngineConfigBuilder};
pub use engine::Engine;
pub use forward::{NodeDirectory, X_SHOAL_FORWARDED};
pub use handler::{EngineHandler, Message};
pub use request::{RemoteAddr, RequestInfo};
pub use service::{EngineLayer, EngineService, NotFound, ResponseFuture};
pub use session::{CloseReason, SendError, SendOptions, Session, TransportKind};
pub use shoal_engineio_proto::{NodeId, OutPacket, Sid};
