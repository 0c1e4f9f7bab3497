//! The adapter error.

/// An adapter operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdapterError {
    /// The broker (Redis...) cannot be reached: the operation did not reach other nodes.
    /// Local delivery still happened where it applies. Retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// Not every node answered in time; the partial result is lost.
    #[error("timed out waiting for other nodes")]
    Timeout,
    /// A server-side emit with acknowledgement: not every other node answered in time.
    /// `responses` holds the answers that came (Node sets them on its error as
    /// `err.responses`); `expected` is the number of nodes asked.
    #[error("timed out waiting for other nodes: {} of {expected} answered", responses.len())]
    AckTimeout {
        /// The answers received in time, one per node.
        responses: Vec<crate::AckResponse>,
        /// How many nodes were asked.
        expected: usize,
    },
    /// Encoding or decoding a message between nodes failed.
    #[error("codec error: {0}")]
    Codec(String),
    /// Too many requests are waiting for answers; retry later.
    #[error("too many pending requests")]
    TooManyRequests,
    /// Anything else, from the adapter implementation.
    #[error("{0}")]
    Other(String),
}
