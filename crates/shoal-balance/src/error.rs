//! Errors of the balancer.

/// An error building or running a [`crate::Balancer`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BalanceError {
    /// A setting is out of range (the message says which and why). Fix the configuration.
    #[error("invalid balancer configuration: {0}")]
    Config(String),
    /// The listener failed in a way that cannot be retried (its local address cannot be
    /// read, say).
    #[error("listener failed: {0}")]
    Listener(#[source] std::io::Error),
}
