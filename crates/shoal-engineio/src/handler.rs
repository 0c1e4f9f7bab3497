//! The interface the layer above implements.

use std::sync::Arc;

use bytes::Bytes;

use crate::session::{CloseReason, Session};

/// A message received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message (valid UTF-8).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
}

/// What the Engine.IO server calls on session events. The Socket.IO layer implements it;
/// the transport never sees namespaces.
///
/// Callbacks for one session are never called concurrently, and always in order:
/// `on_open`, then `on_message` for each message in arrival order, then `on_close` once.
/// They run on the session's task (or the request's task for polling): keep them short
/// and never block; spawn for long work.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-session state of the layer above.
    type Data: Default + Send + Sync + 'static;

    /// A session was opened (its handshake is being sent).
    fn on_open(&self, session: &Arc<Session<Self::Data>>);

    /// A message arrived.
    fn on_message(&self, session: &Arc<Session<Self::Data>>, message: Message);

    /// The session ended.
    fn on_close(&self, session: &Arc<Session<Self::Data>>, reason: CloseReason);

    /// Whether the session may read more messages now. Returning `false` pauses reading
    /// from the client (TCP backpressure then slows it down) until
    /// [`Session::resume_reading`] is called; the layer above uses it to bound the work
    /// one client can have in flight. Default: always.
    fn accepts_messages(&self, session: &Arc<Session<Self::Data>>) -> bool {
        let _ = session;
        true
    }
}
