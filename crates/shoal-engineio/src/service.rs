//! The tower `Service` and `Layer` that mount an engine into any HTTP server.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response, StatusCode};
use http_body::Body;

use crate::body::{EitherBody, ResponseBody};
use crate::engine::Engine;
use crate::handler::EngineHandler;

/// The inner service of a standalone engine: answers 404 to everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotFound;

impl<B> tower_service::Service<Request<B>> for NotFound {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _req: Request<B>) -> Self::Future {
        let mut r = Response::new(ResponseBody::empty());
        *r.status_mut() = StatusCode::NOT_FOUND;
        std::future::ready(Ok(r))
    }
}

/// Routes requests under the engine's path to the engine and everything else to `inner`.
pub struct EngineService<H: EngineHandler, S = NotFound> {
    engine: Arc<Engine<H>>,
    inner: S,
}

impl<H: EngineHandler, S: Clone> Clone for EngineService<H, S> {
    fn clone(&self) -> Self {
        EngineService { engine: self.engine.clone(), inner: self.inner.clone() }
    }
}

impl<H: EngineHandler, S: std::fmt::Debug> std::fmt::Debug for EngineService<H, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineService").field("engine", &self.engine).field("inner", &self.inner).finish()
    }
}

impl<H: EngineHandler, S> EngineService<H, S> {
    /// A service for `engine` in front of `inner`.
    pub fn new(engine: Arc<Engine<H>>, inner: S) -> Self {
        EngineService { engine, inner }
    }

    /// The engine.
    pub fn engine(&self) -> &Arc<Engine<H>> {
        &self.engine
    }
}

type EngineFuture = Pin<Box<dyn Future<Output = Response<ResponseBody>> + Send>>;

pin_project_lite::pin_project! {
    /// The future of [`EngineService`].
    #[project = FutProj]
    #[allow(missing_docs)]
    pub enum ResponseFuture<F> {
        /// Handled by the engine.
        Engine { fut: EngineFuture },
        /// Handled by the inner service.
        Inner { #[pin] fut: F },
    }
}

impl<F> std::fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResponseFuture")
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<EitherBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            FutProj::Engine { fut } => fut.as_mut().poll(cx).map(|r| Ok(r.map(|body| EitherBody::Engine { body }))),
            FutProj::Inner { fut } => fut.poll(cx).map(|r| r.map(|resp| resp.map(|body| EitherBody::Inner { body }))),
        }
    }
}

impl<H, S, ReqBody, ResBody> tower_service::Service<Request<ReqBody>> for EngineService<H, S>
where
    H: EngineHandler,
    S: tower_service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    ReqBody: Body + Send + 'static,
    ReqBody::Data: Send,
    ReqBody::Error: std::fmt::Display,
{
    type Response = Response<EitherBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if self.engine.matches(req.uri().path()) {
            ResponseFuture::Engine { fut: Box::pin(self.engine.clone().handle(req)) }
        } else {
            ResponseFuture::Inner { fut: self.inner.call(req) }
        }
    }
}

/// A tower `Layer` that puts an engine in front of a service.
pub struct EngineLayer<H: EngineHandler> {
    engine: Arc<Engine<H>>,
}

impl<H: EngineHandler> Clone for EngineLayer<H> {
    fn clone(&self) -> Self {
        EngineLayer { engine: self.engine.clone() }
    }
}

impl<H: EngineHandler> std::fmt::Debug for EngineLayer<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineLayer").field("engine", &self.engine).finish()
    }
}

impl<H: EngineHandler> EngineLayer<H> {
    /// A layer for `engine`.
    pub fn new(engine: Arc<Engine<H>>) -> Self {
        EngineLayer { engine }
    }
}

impl<H: EngineHandler, S> tower_layer::Layer<S> for EngineLayer<H> {
    type Service = EngineService<H, S>;
    fn layer(&self, inner: S) -> Self::Service {
        EngineService::new(self.engine.clone(), inner)
    }
}
