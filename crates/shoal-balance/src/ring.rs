//! A consistent-hash ring with virtual nodes.
//!
//! Each member (an upstream, named by a stable key such as its address) puts
//! [`Ring::points_per_member`] points on a 64-bit circle; a key goes to the member owning
//! the first point at or after the key's hash. Adding or removing a member only moves the
//! keys that land on (or leave) that member's points: about `1/N` of them.

/// 64-bit FNV-1a followed by the MurmurHash3 finalizer, for well-spread positions.
pub fn hash64(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// A consistent-hash ring over members of type `T` (indexes, addresses...).
#[derive(Debug, Clone)]
pub struct Ring<T> {
    points: Vec<(u64, T)>,
}

impl<T> Default for Ring<T> {
    fn default() -> Self {
        Ring { points: Vec::new() }
    }
}

impl<T: Clone> Ring<T> {
    /// Virtual nodes per member.
    pub const POINTS: usize = 160;

    /// Virtual nodes per member ([`Ring::POINTS`]).
    pub fn points_per_member(&self) -> usize {
        Self::POINTS
    }

    /// A ring of `members`, each given as (stable name, value).
    pub fn new<'a>(members: impl IntoIterator<Item = (&'a str, T)>) -> Ring<T> {
        let mut points = Vec::new();
        for (name, value) in members {
            let mut buf = Vec::with_capacity(name.len() + 8);
            for i in 0..Self::POINTS {
                buf.clear();
                buf.extend_from_slice(name.as_bytes());
                buf.push(b'#');
                buf.extend_from_slice(i.to_string().as_bytes());
                points.push((hash64(&buf), value.clone()));
            }
        }
        points.sort_by_key(|(h, _)| *h);
        Ring { points }
    }

    /// True when the ring has no member.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The member that owns `key`.
    pub fn get(&self, key: &[u8]) -> Option<&T> {
        if self.points.is_empty() {
            return None;
        }
        let h = hash64(key);
        let i = self.points.partition_point(|(p, _)| *p < h);
        let i = if i == self.points.len() { 0 } else { i };
        Some(&self.points[i].1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(names: &[&str]) -> Ring<String> {
        Ring::new(names.iter().map(|n| (*n, (*n).to_owned())))
    }

    fn keys() -> Vec<String> {
        (0..20_000).map(|i| format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256)).collect()
    }

    #[test]
    fn empty_ring_has_no_owner() {
        assert!(ring(&[]).get(b"x").is_none());
    }

    #[test]
    fn spread_is_even_enough() {
        let r = ring(&["127.0.0.1:3001", "127.0.0.1:3002", "127.0.0.1:3003"]);
        let mut counts = std::collections::HashMap::new();
        for k in keys() {
            *counts.entry(r.get(k.as_bytes()).unwrap().clone()).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 3);
        for (name, n) in counts {
            // ideal 6667 each; 160 points per member keep every share within ±25 %
            assert!((5000..8300).contains(&n), "{name} got {n} of 20000");
        }
    }

    #[test]
    fn adding_or_removing_a_member_moves_only_its_share() {
        let three = ring(&["a:1", "b:2", "c:3"]);
        let four = ring(&["a:1", "b:2", "c:3", "d:4"]);
        let keys = keys();
        let mut moved = 0;
        for k in &keys {
            let before = three.get(k.as_bytes()).unwrap();
            let after = four.get(k.as_bytes()).unwrap();
            if before != after {
                // a key that moves, moves to the new member only
                assert_eq!(after, "d:4", "{k} moved from {before} to {after}");
                moved += 1;
            }
        }
        let fraction = moved as f64 / keys.len() as f64;
        // ideal 1/4
        assert!((0.18..0.32).contains(&fraction), "moved {fraction}");

        // removing b: only b's keys move
        let without_b = ring(&["a:1", "c:3"]);
        let mut moved = 0;
        for k in &keys {
            let before = three.get(k.as_bytes()).unwrap();
            let after = without_b.get(k.as_bytes()).unwrap();
            if before != after {
                assert_eq!(before, "b:2", "{k} was on {before}, not on the removed member");
                moved += 1;
            }
        }
        let fraction = moved as f64 / keys.len() as f64;
        assert!((0.25..0.42).contains(&fraction), "moved {fraction}");
    }

    #[test]
    fn order_of_members_does_not_matter() {
        let a = ring(&["a:1", "b:2", "c:3"]);
        let b = ring(&["c:3", "a:1", "b:2"]);
        for k in keys().iter().take(1000) {
            assert_eq!(a.get(k.as_bytes()), b.get(k.as_bytes()));
        }
    }
}
