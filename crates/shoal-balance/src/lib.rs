//! # `shoal balance`: a sticky reverse proxy for Socket.IO nodes
//!
//! A load balancer that knows Engine.IO sessions: every request that carries a `sid` goes
//! to the node named by the sid's first 4 characters (Shoal's node-aware session ids,
//! [`shoal_engineio_proto::Sid::node`]), so HTTP long-polling works behind it without
//! cookies or IP stickiness, over keep-alive client connections where each request is
//! routed on its own. Requests without sid (handshakes, and anything outside the Engine.IO
//! path) go by a [`Strategy`]: least-connections (default), round-robin, random, or a
//! consistent hash (160 virtual nodes per upstream; adding or removing a node moves only
//! that node's share) of the client IP, of a header hop (`X-Forwarded-For`…) or of a
//! cookie.
//!
//! ## How it works
//!
//! - **Routing.** A `sid` naming a node that is not (or no longer) an upstream, a
//!   malformed sid, or an owner that refuses connections: `400
//!   {"code":1,"message":"Session ID unknown"}`, exactly as Engine.IO answers, so the
//!   official client reconnects (to a live node). New sessions only go to upstreams that
//!   are healthy, not draining, and whose node id is known.
//! - **Upstreams.** [`Upstreams`] is a cheap handle (`add`, `remove`, `set_draining`,
//!   `set_healthy`, `set_load`, `list`) that static configuration, Redis membership or
//!   cluster mode drive while the balancer runs. Node ids are given
//!   ([`Upstreams::add`]) or learned ([`Upstreams::add_addr`]): from the `"node"` field of
//!   `GET /health`, else from the sid of a probe handshake (closed at once).
//! - **Health.** Active: `GET /health` every [`HealthConfig::interval`] (2 s), 2 failures
//!   take an upstream out, 2 successes bring it back, `503` means draining (no new
//!   sessions, sids still routed). Passive: a connect error takes it out at once, and a
//!   new session without body (a handshake) is retried on another upstream; a request
//!   that may have reached the upstream is never retried. A handshake refused with `503`
//!   (a node that began draining since its last check) goes to another upstream too.
//! - **Proxying** through [`shoal_proxy::UpstreamPool`]: keep-alive connections to the
//!   upstreams, WebSocket upgrades passed through and spliced, hop-by-hop headers
//!   removed, `X-Forwarded-For` / `X-Forwarded-Proto` set.
//! - **Limits.** Request head size (`431` past it), head read time once started (slow
//!   clients), client idle time, connection cap (tunnels included); malformed requests get
//!   a clean 4xx from the HTTP parser and the balancer keeps serving.
//! - **Shutdown.** When the shutdown future completes: stop accepting, close idle
//!   keep-alive connections, let requests in flight and tunnels finish for up to
//!   [`BalancerConfig::drain_timeout`], return.
//!
//! ## Example
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use shoal_balance::{Balancer, Strategy};
//!
//! let balancer = Balancer::builder()
//!     .strategy(Strategy::LeastConnections)
//!     .upstream("127.0.0.1:3001".parse()?)
//!     .upstream_with_id("node".parse()?, "127.0.0.1:3002".parse()?)
//!     .build()?;
//! let upstreams = balancer.upstreams().clone(); // add or drain nodes later
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! balancer.serve(listener, std::future::pending::<()>()).await?; // or a signal
//! # drop(upstreams);
//! # Ok(())
//! # }
//! ```
//!
//! ## Layout
//!
//! [`key`] (sticky keys from a request: sid, header hop, cookie, pure functions),
//! [`ring`] (consistent hashing), `upstreams` (the set and the selection), `health`
//! (active checks), `conn` (client connection limits and drain accounting), `server`
//! (accept loop and routing).

mod config;
mod conn;
mod error;
mod health;
pub mod key;
pub mod ring;
mod server;
mod upstreams;

pub use config::{BalancerConfig, Directory, ForeignSids, HealthConfig, OnMissing, Strategy};
pub use error::BalanceError;
pub use server::{Balancer, BalancerBuilder, BalancerStats};
pub use shoal_engineio_proto::NodeId;
pub use shoal_proxy::ProxyConfig;
pub use upstreams::{UpstreamInfo, Upstreams};
