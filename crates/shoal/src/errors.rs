//! Errors and disconnect reasons.

use std::fmt;

use serde_json::Value;
use shoal_engineio::CloseReason;

pub use shoal_core::AckTimeout;
pub use shoal_core::AdapterError;

/// Why a socket left its namespace, named as in Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DisconnectReason {
    /// The client left the namespace (`socket.disconnect()` on the client).
    ClientNamespaceDisconnect,
    /// The server disconnected the socket (`socket.disconnect()`).
    ServerNamespaceDisconnect,
    /// The connection was closed by the client or lost.
    TransportClose,
    /// The connection failed.
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent a packet that does not parse.
    ParseError,
    /// The connection was closed by the server: a Socket.IO packet that does not decode,
    /// no namespace joined within `connect_timeout`, or an Engine.IO-level close.
    ForcedClose,
    /// The server closed the connection because the client sent a packet not allowed in
    /// its state (for a namespace it has not joined, a second CONNECT, a CONNECT_ERROR).
    ForcedServerClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client could not keep up with what the server sent.
    SlowConsumer,
}

impl DisconnectReason {
    /// The reason as Node names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientNamespaceDisconnect => "client namespace disconnect",
            Self::ServerNamespaceDisconnect => "server namespace disconnect",
            Self::TransportClose => "transport close",
            Self::TransportError => "transport error",
            Self::PingTimeout => "ping timeout",
            Self::ParseError => "parse error",
            Self::ForcedClose => "forced close",
            Self::ForcedServerClose => "forced server close",
            Self::ServerShuttingDown => "server shutting down",
            Self::SlowConsumer => "slow consumer",
        }
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::TransportClose => Self::TransportClose,
            CloseReason::TransportError => Self::TransportError,
            CloseReason::PingTimeout => Self::PingTimeout,
            CloseReason::ParseError => Self::ParseError,
            CloseReason::ServerShuttingDown => Self::ServerShuttingDown,
            CloseReason::SlowConsumer => Self::SlowConsumer,
            _ => Self::ForcedClose,
        }
    }
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An emit that could not be sent.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The data could not be serialized.
    #[error("serialization failed: {0}")]
    Serialize(#[from] serde_json::Error),
    /// The socket is disconnected.
    #[error("socket disconnected")]
    Disconnected,
    /// The client's send queue is full; it is being disconnected as a slow consumer.
    #[error("client send queue full")]
    SlowConsumer,
    /// The socket has too many acknowledgements pending (`max_pending_acks`).
    #[error("too many pending acknowledgements")]
    TooManyPendingAcks,
    /// The adapter could not reach other nodes (local delivery happened).
    #[error("adapter: {0}")]
    Adapter(#[from] AdapterError),
}

impl From<shoal_engineio::SendError> for SendError {
    fn from(e: shoal_engineio::SendError) -> Self {
        match e {
            shoal_engineio::SendError::SlowConsumer => SendError::SlowConsumer,
            _ => SendError::Disconnected,
        }
    }
}

/// An acknowledgement that did not come.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// The emit failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// No answer in time.
    #[error("acknowledgement timeout")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected before acknowledging")]
    Disconnected,
    /// The answer could not be deserialized into the requested type.
    #[error("invalid acknowledgement: {0}")]
    Decode(serde_json::Error),
}

/// A broadcast with acknowledgements that did not complete.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastAckError {
    /// The emit failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// Not every client answered in time (the answers received are inside).
    #[error(transparent)]
    Timeout(#[from] AckTimeout),
}

/// A namespace connection refused by a middleware: the client receives a CONNECT_ERROR
/// packet with `{"message": …, "data": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectError {
    /// The message (`err.message` on the client).
    pub message: String,
    /// Extra data (`err.data` on the client); omitted when `None`.
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError { message: message.into(), data: None }
    }

    /// A refusal with a message and data.
    pub fn with_data(message: impl Into<String>, data: Value) -> Self {
        ConnectError { message: message.into(), data: Some(data) }
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}
