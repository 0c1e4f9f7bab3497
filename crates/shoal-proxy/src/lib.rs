//! # Reverse-proxy primitives for Shoal
//!
//! What node-to-node forwarding, `shoal balance` and cluster mode share: sending an HTTP
//! request received by a hyper server on to an upstream, and passing WebSocket upgrades
//! through.
//!
//! - [`UpstreamPool::forward`] forwards one request over a pooled keep-alive HTTP/1.1
//!   connection (or a new one), streaming the response body back; an upgrade request
//!   (a WebSocket handshake) gets its own connection and, after the upstream's `101`, the
//!   two connections are spliced.
//! - [`headers`]: hop-by-hop header removal and `X-Forwarded-For`/`-Proto`, pure functions.
//! - [`ProxyError`] says whose fault a failure is and whether retrying elsewhere is safe.
//!
//! ```no_run
//! # async fn demo(req: http::Request<hyper::body::Incoming>, client: std::net::SocketAddr) {
//! use shoal_proxy::{Forwarding, ProxyConfig, UpstreamPool};
//!
//! let pool = UpstreamPool::new(ProxyConfig::default());
//! let upstream = "127.0.0.1:3001".parse().unwrap();
//! let resp = match pool.forward(upstream, req, &Forwarding::http(Some(client)), None).await {
//!     Ok(r) => r,
//!     Err(e) => e.to_response(),
//! };
//! # drop(resp);
//! # }
//! ```

mod body;
mod error;
pub mod headers;
mod pool;

pub use body::{Guard, ProxyBody};
pub use error::{ErrorSource, ProxyError};
pub use pool::{BoxError, Forwarding, PoolStats, ProxyConfig, UpstreamPool};
