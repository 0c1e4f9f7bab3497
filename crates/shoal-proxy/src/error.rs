//! What can go wrong when forwarding, tagged with whose fault it is.

use std::net::SocketAddr;

use http::{Response, StatusCode};

use crate::body::ProxyBody;

/// Where an error came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorSource {
    /// The downstream client (its request could not be read).
    Client,
    /// The upstream (refused, closed, timed out, or answered badly).
    Upstream,
    /// This process.
    Internal,
}

/// An error while forwarding one request.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The upstream could not be reached (refused, unreachable). Nothing was sent: another
    /// upstream may be tried, and the upstream may be marked down.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// The upstream.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The upstream did not accept the connection within the connect timeout. Nothing was
    /// sent.
    #[error("connecting to {addr} timed out")]
    ConnectTimeout {
        /// The upstream.
        addr: SocketAddr,
    },
    /// The upstream did not answer with response headers within the response timeout.
    /// The request may have been processed: do not retry it elsewhere.
    #[error("{addr} did not answer in time")]
    ResponseTimeout {
        /// The upstream.
        addr: SocketAddr,
    },
    /// The HTTP exchange with the upstream failed after the request was (partly) sent;
    /// a retry is not safe.
    #[error("upstream {addr} failed: {source}")]
    Upstream {
        /// The upstream.
        addr: SocketAddr,
        /// The cause.
        source: hyper::Error,
    },
}

impl ProxyError {
    /// Whose fault it is.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            ProxyError::Connect { .. }
            | ProxyError::ConnectTimeout { .. }
            | ProxyError::ResponseTimeout { .. }
            | ProxyError::Upstream { .. } => ErrorSource::Upstream,
        }
    }

    /// True when nothing reached the upstream, so the request may be sent to another one.
    pub fn retry_safe(&self) -> bool {
        matches!(self, ProxyError::Connect { .. } | ProxyError::ConnectTimeout { .. })
    }

    /// The upstream concerned.
    pub fn upstream(&self) -> SocketAddr {
        match self {
            ProxyError::Connect { addr, .. }
            | ProxyError::ConnectTimeout { addr }
            | ProxyError::ResponseTimeout { addr }
            | ProxyError::Upstream { addr, .. } => *addr,
        }
    }

    /// The answer for the downstream client: 504 for a timeout, 502 otherwise, with a
    /// short plain-text body.
    pub fn to_response(&self) -> Response<ProxyBody> {
        let status = match self {
            ProxyError::ConnectTimeout { .. } | ProxyError::ResponseTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::BAD_GATEWAY,
        };
        let mut r = Response::new(ProxyBody::full(status.canonical_reason().unwrap_or("Bad Gateway")));
        *r.status_mut() = status;
        r.headers_mut().insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("text/plain"));
        r
    }
}
