//! Session ids that name the node owning the session.
//!
//! A [`Sid`] is 20 characters of the URL-safe base64 alphabet (`[A-Za-z0-9_-]`), like the
//! ids of Node's engine.io, so every tool that matches `sid=([\w\-]{20})` keeps working.
//! The first 4 characters are the [`NodeId`] of the node that created the session; the
//! other 16 are 96 bits from the operating system's CSPRNG. Any component (a node that
//! receives a misrouted request, the `shoal balance` proxy) can read the owner from the
//! sid alone, without a shared table.

use std::fmt;
use std::str::FromStr;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn is_id_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

/// The error for a string that is not a valid [`Sid`] or [`NodeId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid id: expected {expected} characters of [A-Za-z0-9_-]")]
pub struct SidParseError {
    expected: usize,
}

/// The id of a node: 4 characters of `[A-Za-z0-9_-]` (24 bits).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId([u8; 4]);

impl NodeId {
    /// A random node id, for nodes that are not given one.
    pub fn random() -> NodeId {
        let mut raw = [0u8; 3];
        fill_random(&mut raw);
        let mut out = [0u8; 4];
        encode_3(raw, &mut out);
        NodeId(out)
    }

    /// A node id derived from a longer name (a stable hash of it). Two different names may,
    /// rarely, give the same id; configure ids directly when that matters.
    pub fn from_name(name: &str) -> NodeId {
        if let Ok(id) = name.parse() {
            return id;
        }
        // FNV-1a, 32 bits, folded to 24
        let mut h: u32 = 0x811c_9dc5;
        for b in name.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        let [a, b, c, d] = h.to_be_bytes();
        let mut out = [0u8; 4];
        encode_3([a ^ d, b, c], &mut out);
        NodeId(out)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        // only alphabet characters are ever stored
        std::str::from_utf8(&self.0).unwrap_or("????")
    }
}

impl FromStr for NodeId {
    type Err = SidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let b = s.as_bytes();
        match <[u8; 4]>::try_from(b) {
            Ok(arr) if arr.iter().all(|&c| is_id_char(c)) => Ok(NodeId(arr)),
            _ => Err(SidParseError { expected: 4 }),
        }
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", self.as_str())
    }
}

/// A 20-character session (or socket) id: a [`NodeId`] followed by 96 random bits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid([u8; 20]);

impl Sid {
    /// The length of every sid.
    pub const LEN: usize = 20;

    /// A new, unpredictable sid owned by `node`.
    pub fn generate(node: NodeId) -> Sid {
        let mut raw = [0u8; 12];
        fill_random(&mut raw);
        let mut out = [0u8; 20];
        out[..4].copy_from_slice(&node.0);
        for (i, chunk) in raw.chunks_exact(3).enumerate() {
            let mut quad = [0u8; 4];
            encode_3([chunk[0], chunk[1], chunk[2]], &mut quad);
            out[4 + i * 4..8 + i * 4].copy_from_slice(&quad);
        }
        Sid(out)
    }

    /// The node that created this sid (its first 4 characters).
    pub fn node(&self) -> NodeId {
        let mut n = [0u8; 4];
        n.copy_from_slice(&self.0[..4]);
        NodeId(n)
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("????????????????????")
    }
}

impl FromStr for Sid {
    type Err = SidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match <[u8; 20]>::try_from(s.as_bytes()) {
            Ok(arr) if arr.iter().all(|&c| is_id_char(c)) => Ok(Sid(arr)),
            _ => Err(SidParseError { expected: 20 }),
        }
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({})", self.as_str())
    }
}

impl AsRef<str> for Sid {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

fn encode_3(raw: [u8; 3], out: &mut [u8; 4]) {
    let n = (u32::from(raw[0]) << 16) | (u32::from(raw[1]) << 8) | u32::from(raw[2]);
    for (i, o) in out.iter_mut().enumerate() {
        *o = ALPHABET[((n >> (18 - 6 * i)) & 63) as usize];
    }
}

fn fill_random(buf: &mut [u8]) {
    // The OS CSPRNG cannot fail on the platforms we support; if it ever did, running on
    // with predictable ids would be a security bug, so stop loudly.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn sids_are_20_url_safe_chars_with_node() {
        let node: NodeId = "ab_-".parse().unwrap();
        let mut seen = HashSet::new();
        for _ in 0..10_000 {
            let sid = Sid::generate(node);
            assert_eq!(sid.as_str().len(), 20);
            assert!(sid.as_str().bytes().all(is_id_char));
            assert_eq!(sid.node(), node);
            assert_eq!(sid.as_str().parse::<Sid>().unwrap(), sid);
            assert!(seen.insert(sid), "duplicate sid");
        }
    }

    #[test]
    fn random_part_uses_the_whole_alphabet() {
        let mut chars = HashSet::new();
        for _ in 0..2_000 {
            chars.extend(Sid::generate(NodeId::random()).as_str().bytes());
        }
        assert_eq!(chars.len(), 64);
    }

    #[test]
    fn parse_rejects_bad_ids() {
        for bad in [
            "",
            "abc",
            "abcdefghijklmnopqrs",
            "abcdefghijklmnopqrstu",
            "abcdefghijklmnopqrs/",
            "abcdefghijklmnopqrs\u{e9}",
        ] {
            assert!(bad.parse::<Sid>().is_err(), "{bad}");
        }
        for bad in ["", "abc", "abcde", "ab/d"] {
            assert!(bad.parse::<NodeId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn node_ids_from_names_are_stable() {
        assert_eq!(NodeId::from_name("node-1"), NodeId::from_name("node-1"));
        assert_ne!(NodeId::from_name("node-1"), NodeId::from_name("node-2"));
        assert_eq!(NodeId::from_name("AbCd").as_str(), "AbCd");
        assert_eq!(NodeId::from_name("whatever").as_str().len(), 4);
    }
}
