//! The shared secret that keeps other local processes off the embedded broker.

use std::fmt;
use std::hash::{BuildHasher, Hasher};

/// A secret shared by the primary's broker and its workers (given to them in their
/// environment, `SHOAL_CLUSTER_TOKEN`): the broker listens on loopback, where any local
/// process could otherwise connect and publish into the cluster. Its `Debug` output
/// hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthToken(String);

impl AuthToken {
    /// A token with this value.
    pub fn new(token: impl Into<String>) -> AuthToken {
        AuthToken(token.into())
    }

    /// 128 random bits from the operating system (`/dev/urandom`), as hex.
    pub fn random() -> AuthToken {
        let mut raw = [0u8; 16];
        let from_os =
            std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut raw)).is_ok();
        if !from_os {
            // std's hasher keys are random per process: a weaker but usable fallback
            for (i, chunk) in raw.chunks_mut(8).enumerate() {
                let mut h = std::collections::hash_map::RandomState::new().build_hasher();
                h.write_usize(i);
                h.write_u128(
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
                );
                chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
            }
        }
        AuthToken(raw.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The token's value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Compares with `other` in time independent of where they differ.
    pub(crate) fn matches(&self, other: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), other.as_bytes());
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl fmt::Debug for AuthToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AuthToken(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::AuthToken;

    #[test]
    fn random_tokens_differ_and_compare() {
        let a = AuthToken::random();
        let b = AuthToken::random();
        assert_eq!(a.as_str().len(), 32);
        assert_ne!(a, b);
        assert!(a.matches(a.as_str()));
        assert!(!a.matches(b.as_str()));
        assert!(!a.matches(""));
        assert_eq!(format!("{a:?}"), "AuthToken(***)");
    }
}
