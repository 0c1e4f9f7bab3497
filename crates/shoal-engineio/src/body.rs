//! Response bodies.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body of every response the engine sends: empty, one buffer, or (for a request
/// forwarded to the node owning its session) the owner's answer, streamed.
#[derive(Debug, Default)]
pub struct ResponseBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Full(Option<Bytes>),
    Proxied(Box<shoal_proxy::ProxyBody>),
}

impl Default for Kind {
    fn default() -> Self {
        Kind::Full(None)
    }
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody { kind: Kind::Full(None) }
    }

    /// A body made of `data`.
    pub fn full(data: Bytes) -> ResponseBody {
        ResponseBody { kind: Kind::Full((!data.is_empty()).then_some(data)) }
    }

    /// The body of a forwarded request's answer.
    pub fn proxied(body: shoal_proxy::ProxyBody) -> ResponseBody {
        ResponseBody { kind: Kind::Proxied(Box::new(body)) }
    }

    /// True for the answer of another node (a forwarded request).
    pub fn is_proxied(&self) -> bool {
        matches!(self.kind, Kind::Proxied(_))
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            Kind::Proxied(body) => Pin::new(&mut **body).poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(data) => data.is_none(),
            Kind::Proxied(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Proxied(body) => body.size_hint(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The body of a service that wraps another one: the engine's, or the inner service's.
    #[project = EitherProj]
    #[allow(missing_docs)]
    #[derive(Debug)]
    pub enum EitherBody<B> {
        /// Answered by the engine.
        Engine { #[pin] body: ResponseBody },
        /// Answered by the inner service.
        Inner { #[pin] body: B },
    }
}

/// The error of an [`EitherBody`]: the inner body's error, boxed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<B> Body for EitherBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            EitherProj::Engine { body } => body.poll_frame(cx),
            EitherProj::Inner { body } => body.poll_frame(cx).map_err(Into::into),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            EitherBody::Engine { body } => body.is_end_stream(),
            EitherBody::Inner { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            EitherBody::Engine { body } => body.size_hint(),
            EitherBody::Inner { body } => body.size_hint(),
        }
    }
}
