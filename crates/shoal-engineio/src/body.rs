//! Response bodies.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

/// The body of every response the engine sends: empty, or one buffer.
#[derive(Debug, Default)]
pub struct ResponseBody {
    data: Option<Bytes>,
}

impl ResponseBody {
    /// An empty body.
    pub fn empty() -> ResponseBody {
        ResponseBody { data: None }
    }

    /// A body made of `data`.
    pub fn full(data: Bytes) -> ResponseBody {
        ResponseBody { data: (!data.is_empty()).then_some(data) }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
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
            EitherProj::Engine { body } => body.poll_frame(cx).map_err(|e| match e {}),
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
