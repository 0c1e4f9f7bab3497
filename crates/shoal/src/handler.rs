//! Handlers: what runs on connect, on events and on disconnect, and how it runs.
//!
//! A handler is an `async` closure. Its future is polled once right where the event is
//! dispatched, on the connection's own task; only if it does not finish at once is it
//! spawned as a task. Handlers that complete without waiting (most of them: answer an
//! ack, emit, join a room) therefore cost no task and keep the order of events; handlers
//! registered before the first `.await` of a connect handler see every event that
//! follows the connection.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use serde::Serialize;
use serde::de::DeserializeOwned;
use shoal_engineio::Session;
use shoal_socketio_proto::Args;

use crate::client::ClientState;

use crate::errors::{ConnectError, DisconnectReason, SendError};
use crate::socket::Socket;

/// Polls `fut` once on the current task; spawns it only if it is not done. Spawned
/// handlers count against the connection's `max_pending_handlers`: past it, the
/// connection stops reading until some finish.
pub(crate) fn run<F: Future<Output = ()> + Send + 'static>(session: &Arc<Session<ClientState>>, fut: F) {
    let mut fut = Box::pin(fut);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    // A panicking handler must not take the connection's task down with it.
    match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(&mut cx))) {
        Ok(Poll::Ready(())) => {}
        Ok(Poll::Pending) => {
            let guard = PendingHandler::new(session.clone());
            tokio::spawn(async move {
                let _guard = guard;
                fut.await;
            });
        }
        Err(_) => tracing::error!("a handler panicked"),
    }
}

/// Counts a spawned handler of a connection while it runs.
struct PendingHandler(Arc<Session<ClientState>>);

impl PendingHandler {
    fn new(session: Arc<Session<ClientState>>) -> Self {
        session.data().pending_handlers.fetch_add(1, Ordering::AcqRel);
        PendingHandler(session)
    }
}

impl Drop for PendingHandler {
    fn drop(&mut self) {
        let before = self.0.data().pending_handlers.fetch_sub(1, Ordering::AcqRel);
        if before == self.0.data().max_pending_handlers() {
            // it was at the limit: the connection may read again
            self.0.resume_reading();
        }
    }
}

/// A handler called when a socket connects to a namespace.
pub trait ConnectHandler: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket);
}

impl<F, Fut> ConnectHandler for F
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket) {
        let session = socket.0.session.clone();
        run(&session, self(socket));
    }
}

/// A boxed future, as middlewares return.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A namespace middleware: runs before a socket connects (it is not yet in any room) and
/// may refuse it. It may set the socket's data.
pub trait Middleware: Send + Sync + 'static {
    /// Runs the middleware.
    fn call(&self, socket: Socket) -> BoxFuture<Result<(), ConnectError>>;
}

impl<F, Fut> Middleware for F
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), ConnectError>> + Send + 'static,
{
    fn call(&self, socket: Socket) -> BoxFuture<Result<(), ConnectError>> {
        Box::pin(self(socket))
    }
}

/// A handler for an event.
pub trait EventHandler: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, event: Event);
}

impl<F, Fut> EventHandler for F
where
    F: Fn(Socket, Event) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, event: Event) {
        let session = socket.0.session.clone();
        run(&session, self(socket, event));
    }
}

/// A handler for `disconnecting` (the socket still has its rooms) or `disconnect`.
pub trait DisconnectHandler: Send + Sync + 'static {
    /// Runs the handler.
    fn call(&self, socket: Socket, reason: DisconnectReason);
}

impl<F, Fut> DisconnectHandler for F
where
    F: Fn(Socket, DisconnectReason) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    fn call(&self, socket: Socket, reason: DisconnectReason) {
        let session = socket.0.session.clone();
        run(&session, self(socket, reason));
    }
}

/// An event received from a client.
#[derive(Debug)]
pub struct Event {
    name: String,
    args: Args,
    ack: Option<AckSender>,
}

impl Event {
    pub(crate) fn new(name: String, args: Args, ack: Option<AckSender>) -> Event {
        Event { name, args, ack }
    }

    /// The event name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The arguments (without the event name), with their binary attachments.
    pub fn args(&self) -> &Args {
        &self.args
    }

    /// Takes the arguments out.
    pub fn into_args(self) -> Args {
        self.args
    }

    /// Deserializes the first argument (binary values map to `bytes::Bytes`).
    ///
    /// # Errors
    /// When the argument does not have the shape of `T`.
    pub fn data<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.args.get(0)
    }

    /// Deserializes all the arguments as one value (a tuple `(A, B)`, a `Vec`...).
    ///
    /// # Errors
    /// When the arguments do not have the shape of `T`.
    pub fn all<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        self.args.deserialize()
    }

    /// True if the client asked for an acknowledgement.
    pub fn wants_ack(&self) -> bool {
        self.ack.is_some()
    }

    /// Takes the acknowledgement sender, to answer later or elsewhere.
    pub fn take_ack(&mut self) -> Option<AckSender> {
        self.ack.take()
    }

    /// Answers the client's acknowledgement with one value (nothing happens if the client
    /// did not ask for one).
    ///
    /// # Errors
    /// When the value cannot be serialized or the socket is gone.
    pub fn ack<T: Serialize + ?Sized>(&mut self, data: &T) -> Result<(), SendError> {
        match self.ack.take() {
            Some(a) => a.send(data),
            None => Ok(()),
        }
    }

    /// Answers the acknowledgement with several arguments.
    ///
    /// # Errors
    /// When the socket is gone.
    pub fn ack_args(&mut self, args: Args) -> Result<(), SendError> {
        match self.ack.take() {
            Some(a) => a.send_args(args),
            None => Ok(()),
        }
    }
}

/// Answers one acknowledgement requested by a client (at most once: it is consumed).
#[derive(Debug)]
pub struct AckSender {
    socket: Socket,
    id: u64,
}

impl AckSender {
    pub(crate) fn new(socket: Socket, id: u64) -> AckSender {
        AckSender { socket, id }
    }

    /// Sends one value as the answer.
    ///
    /// # Errors
    /// When the value cannot be serialized or the socket is gone.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), SendError> {
        self.socket.send_ack_typed(self.id, data)
    }

    /// Sends several arguments as the answer.
    ///
    /// # Errors
    /// When the socket is gone.
    pub fn send_args(self, args: Args) -> Result<(), SendError> {
        self.socket.send_ack_args(self.id, args)
    }
}
