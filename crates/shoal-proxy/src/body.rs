//! The response body of a forwarded request.

use std::any::Any;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;

/// Anything kept alive until a forwarded exchange is completely over (the response body
/// read to its end or dropped, or an upgraded tunnel closed): a connection counter's
/// decrement on drop, for example.
pub type Guard = Box<dyn Any + Send>;

enum Kind {
    Upstream(Incoming),
    Full(Option<Bytes>),
}

/// A response body: the upstream's, streamed as it comes, or a local one.
pub struct ProxyBody {
    kind: Kind,
    guard: Option<Guard>,
}

impl std::fmt::Debug for ProxyBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            Kind::Upstream(_) => "upstream",
            Kind::Full(_) => "full",
        };
        f.debug_struct("ProxyBody").field("kind", &kind).field("guarded", &self.guard.is_some()).finish()
    }
}

impl ProxyBody {
    pub(crate) fn upstream(body: Incoming, guard: Option<Guard>) -> ProxyBody {
        ProxyBody { kind: Kind::Upstream(body), guard }
    }

    /// A body of `data`.
    pub fn full(data: impl Into<Bytes>) -> ProxyBody {
        let data = data.into();
        ProxyBody { kind: Kind::Full((!data.is_empty()).then_some(data)), guard: None }
    }

    /// An empty body.
    pub fn empty() -> ProxyBody {
        ProxyBody { kind: Kind::Full(None), guard: None }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let out = match &mut this.kind {
            Kind::Upstream(b) => Pin::new(b).poll_frame(cx),
            Kind::Full(d) => Poll::Ready(d.take().map(|d| Ok(Frame::data(d)))),
        };
        if matches!(out, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard = None;
        }
        out
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Upstream(b) => b.is_end_stream(),
            Kind::Full(d) => d.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Upstream(b) => b.size_hint(),
            Kind::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}
