//! Errors of cluster mode.

/// Why cluster mode could not start or stopped with a failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// A setting is invalid (zero workers, a backoff range upside down...). Fix the
    /// configuration.
    #[error("invalid cluster configuration: {0}")]
    Config(String),
    /// The primary could not bind its public port or the broker's port. Free the port
    /// or pick another one.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// The environment of a worker is inconsistent (`SHOAL_WORKER` without
    /// `SHOAL_CLUSTER_BROKER`, not a number...): a worker started by hand rather than
    /// by a primary.
    #[error("invalid worker environment: {0}")]
    Environment(String),
    /// A worker could not reach the primary's broker or register with it. The primary
    /// is gone or overloaded; the worker exits and the primary (if alive) restarts it.
    #[error("cannot reach the cluster broker at {addr}: {cause}")]
    Broker {
        /// The broker's address.
        addr: String,
        /// Why.
        cause: String,
    },
    /// The Redis adapter of a worker could not start (with `redis`).
    #[error("cannot start the Redis adapter: {0}")]
    Adapter(#[from] shoal::AdapterError),
    /// The primary's balancer stopped on its own (its listener failed): the cluster
    /// was stopped.
    #[error("the cluster's balancer failed: {0}")]
    Balancer(String),
    /// The worker's own function returned an error.
    #[error("worker failed: {0}")]
    Worker(String),
    /// Another IO error (signal handlers, the runtime).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
}

/// A malformed frame of the broker protocol: the connection is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The frame announces more bytes than the limit allows.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The body ends before its fields do.
    #[error("truncated frame")]
    Truncated,
    /// Bytes are left after the last field.
    #[error("unexpected bytes after the frame's fields")]
    Trailing,
    /// A string is not UTF-8.
    #[error("string field is not UTF-8")]
    Utf8,
    /// Unknown opcode.
    #[error("unknown opcode {0}")]
    Opcode(u8),
    /// Unknown subscription kind.
    #[error("unknown subscription kind {0}")]
    Kind(u8),
    /// The connection did not open with the broker's token.
    #[error("the connection did not authenticate")]
    Unauthenticated,
}
