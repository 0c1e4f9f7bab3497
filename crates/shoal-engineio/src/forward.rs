//! Forwarding between nodes: a request for a session owned by another node is handed to
//! that node.
//!
//! Every sid starts with the id of the node that created it ([`Sid::node`]). When a
//! [`NodeDirectory`] is configured ([`crate::EngineConfig::node_directory`]), a polling
//! request or a WebSocket upgrade whose sid names another node is proxied to that node's
//! internal address (over pooled keep-alive connections; an upgrade is spliced after the
//! owner's `101`), and the owner's answer is returned. The forwarded request carries
//! `x-shoal-forwarded: 1`; a request that already has it is never forwarded again. An
//! unknown node, or an owner that cannot be reached, gets the usual HTTP 400
//! `{"code":1,"message":"Session ID unknown"}`, from which clients reconnect.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Buf;
use http::{HeaderValue, Request};
use http_body::Body;
use http_body_util::BodyExt;
use shoal_engineio_proto::{ErrorCode, NodeId};
use shoal_proxy::{Forwarding, ProxyConfig, UpstreamPool};

use crate::body::{BoxError, ResponseBody};
use crate::engine::{Resp, error};
use crate::request::RemoteAddr;

pub use shoal_proxy::headers::X_SHOAL_FORWARDED;

/// Where the other nodes are: the internal address of a node, by id. Implemented by the
/// membership (`shoal_redis::membership::Membership::address`), and by any
/// `Fn(NodeId) -> Option<SocketAddr>`.
pub trait NodeDirectory: Send + Sync + 'static {
    /// The internal address of `node`, or `None` when it is not known (not alive).
    fn address(&self, node: NodeId) -> Option<SocketAddr>;
}

impl<F> NodeDirectory for F
where
    F: Fn(NodeId) -> Option<SocketAddr> + Send + Sync + 'static,
{
    fn address(&self, node: NodeId) -> Option<SocketAddr> {
        self(node)
    }
}

/// The forwarding state of an engine: the directory and the connections to other nodes.
pub(crate) struct Forwarder {
    directory: Arc<dyn NodeDirectory>,
    pool: Arc<UpstreamPool>,
}

impl Forwarder {
    /// `directory`, with a pool whose response timeout outlasts the longest poll.
    pub(crate) fn new(directory: Arc<dyn NodeDirectory>, ping_interval: Duration, ping_timeout: Duration) -> Forwarder {
        let longest_poll = ping_interval + ping_timeout + Duration::from_secs(5);
        let config = ProxyConfig::default().response_timeout(longest_poll.max(Duration::from_secs(60)));
        Forwarder { directory, pool: UpstreamPool::new(config) }
    }

    /// The connection pool (its counters).
    pub(crate) fn pool(&self) -> &Arc<UpstreamPool> {
        &self.pool
    }

    /// Forwards `req` to `owner`; 400 "Session ID unknown" when that is not possible.
    pub(crate) async fn forward<B>(&self, mut req: Request<B>, owner: NodeId) -> Resp
    where
        B: Body + Send + 'static,
        B::Data: Send,
        B::Error: std::fmt::Display,
    {
        let Some(addr) = self.directory.address(owner) else {
            tracing::debug!(node = %owner, "session of an unknown node");
            return error(ErrorCode::UnknownSid);
        };
        req.headers_mut().insert(X_SHOAL_FORWARDED, HeaderValue::from_static("1"));
        let client = req.extensions().get::<RemoteAddr>().map(|r| r.0);
        let req = req.map(|b| {
            b.map_frame(|f| f.map_data(|mut d| d.copy_to_bytes(d.remaining())))
                .map_err(|e| -> BoxError { e.to_string().into() })
        });
        match self.pool.forward(addr, req, &Forwarding::http(client), None).await {
            Ok(resp) => resp.map(ResponseBody::proxied),
            Err(e) => {
                tracing::debug!(node = %owner, %addr, cause = %e, "forwarding to the owner failed");
                error(ErrorCode::UnknownSid)
            }
        }
    }
}

/// True when `req` was already forwarded by a node.
pub(crate) fn was_forwarded<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(X_SHOAL_FORWARDED)
}
