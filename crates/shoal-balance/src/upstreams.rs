//! The set of upstream nodes: their ids, health, draining state and connection counts.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use parking_lot::RwLock;
use shoal_engineio_proto::NodeId;
use tokio::sync::Notify;

use crate::ring::Ring;

/// Live counters of one upstream, shared with the exchanges running through it.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Open client exchanges: requests in flight and WebSocket tunnels.
    pub(crate) active: AtomicUsize,
    /// Requests forwarded so far.
    pub(crate) requests: AtomicU64,
}

/// Counts one open exchange on an upstream until dropped.
#[derive(Debug)]
pub(crate) struct ActiveGuard(Arc<Counters>);

impl ActiveGuard {
    pub(crate) fn new(c: Arc<Counters>) -> ActiveGuard {
        c.active.fetch_add(1, Ordering::Relaxed);
        c.requests.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(c)
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An upstream chosen for a request.
#[derive(Debug, Clone)]
pub(crate) struct Picked {
    pub(crate) addr: SocketAddr,
    pub(crate) counters: Arc<Counters>,
}

/// A snapshot of one upstream, from [`Upstreams::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamInfo {
    /// Its node id, once known (given, or learned from `/health` or a handshake).
    pub id: Option<NodeId>,
    /// Its address.
    pub addr: SocketAddr,
    /// False once health checks (or a connect error) took it out of rotation.
    pub healthy: bool,
    /// True while it takes no new sessions (its `/health` answers 503, or
    /// [`Upstreams::set_draining`]); its sessions are still routed to it.
    pub draining: bool,
    /// True when it takes new sessions now: healthy, not draining, id known.
    pub eligible: bool,
    /// Open client exchanges through this balancer: requests in flight and tunnels.
    pub active: usize,
    /// Requests forwarded to it so far.
    pub requests: u64,
    /// The load it last reported ([`Upstreams::set_load`]), if any.
    pub load: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    id: Option<NodeId>,
    healthy: bool,
    oks: u32,
    fails: u32,
    draining_reported: bool,
    draining_set: bool,
    load: Option<u64>,
    counters: Arc<Counters>,
}

impl Entry {
    fn new(addr: SocketAddr, id: Option<NodeId>) -> Entry {
        Entry {
            addr,
            id,
            healthy: true,
            oks: 0,
            fails: 0,
            draining_reported: false,
            draining_set: false,
            load: None,
            counters: Arc::default(),
        }
    }

    fn eligible(&self) -> bool {
        self.healthy && !self.draining_reported && !self.draining_set && self.id.is_some()
    }

    fn picked(&self) -> Picked {
        Picked { addr: self.addr, counters: self.counters.clone() }
    }
}

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry>,
    /// Indexes of the entries that take new sessions.
    eligible: Vec<usize>,
    /// Consistent-hash ring of the eligible entries (by address).
    ring: Ring<usize>,
}

impl State {
    /// Recomputes the eligible list and the ring.
    fn refresh(&mut self) {
        // cheap (160 points per upstream) and rare (membership and health changes)
        self.eligible = (0..self.entries.len()).filter(|&i| self.entries[i].eligible()).collect();
        let names: Vec<(String, usize)> =
            self.eligible.iter().map(|&i| (self.entries[i].addr.to_string(), i)).collect();
        self.ring = Ring::new(names.iter().map(|(n, i)| (n.as_str(), *i)));
    }

    fn index_of_addr(&self, addr: SocketAddr) -> Option<usize> {
        self.entries.iter().position(|e| e.addr == addr)
    }

    fn index_of_id(&self, id: NodeId) -> Option<usize> {
        self.entries.iter().position(|e| e.id == Some(id))
    }
}

#[derive(Debug)]
struct Inner {
    state: RwLock<State>,
    turn: AtomicUsize,
    rng: AtomicU64,
    changed: Notify,
}

/// The upstream nodes of a balancer: a cheap-to-clone handle, to add, remove, drain
/// nodes and report their load while the balancer runs (static configuration, Redis
/// membership, cluster mode's workers).
///
/// An upstream takes new sessions when it is healthy, not draining and its node id is
/// known; requests with a sid go to the upstream whose id the sid names, whatever its
/// health (a dead one then gets `400 Session ID unknown`).
#[derive(Debug, Clone)]
pub struct Upstreams {
    inner: Arc<Inner>,
}

impl Default for Upstreams {
    fn default() -> Self {
        Upstreams::new()
    }
}

impl Upstreams {
    /// An empty set.
    pub fn new() -> Upstreams {
        let seed = RandomState::new().hash_one(std::time::SystemTime::now()) | 1;
        Upstreams {
            inner: Arc::new(Inner {
                state: RwLock::new(State::default()),
                turn: AtomicUsize::new(0),
                rng: AtomicU64::new(seed),
                changed: Notify::new(),
            }),
        }
    }

    fn mutate<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let r = {
            let mut s = self.inner.state.write();
            let r = f(&mut s);
            s.refresh();
            r
        };
        self.inner.changed.notify_waiters();
        r
    }

    /// Adds node `id` at `addr`, or updates the entry with that id or address (a node
    /// that moved, or an address now owned by another node id).
    pub fn add(&self, id: NodeId, addr: SocketAddr) {
        self.mutate(|s| {
            let by_id = s.index_of_id(id);
            let by_addr = s.index_of_addr(addr);
            match (by_id, by_addr) {
                (Some(i), Some(j)) if i == j => {}
                (Some(i), other) => {
                    if let Some(j) = other {
                        s.entries.remove(j);
                    }
                    let i = s.index_of_id(id).unwrap_or(i);
                    s.entries[i].addr = addr;
                }
                (None, Some(j)) => {
                    // another node at this address: start afresh
                    let counters = s.entries[j].counters.clone();
                    s.entries[j] = Entry { counters, ..Entry::new(addr, Some(id)) };
                }
                (None, None) => s.entries.push(Entry::new(addr, Some(id))),
            }
        });
    }

    /// Adds the upstream at `addr`, whose node id is learned by the health checks (from
    /// `/health`, or from a probe handshake). It takes new sessions once its id is known.
    pub fn add_addr(&self, addr: SocketAddr) {
        self.mutate(|s| {
            if s.index_of_addr(addr).is_none() {
                s.entries.push(Entry::new(addr, None));
            }
        });
    }

    /// Removes node `id`; its sids then get `400 Session ID unknown`. False if unknown.
    pub fn remove(&self, id: NodeId) -> bool {
        self.mutate(|s| s.index_of_id(id).map(|i| s.entries.remove(i)).is_some())
    }

    /// Removes the upstream at `addr`. False if unknown.
    pub fn remove_addr(&self, addr: SocketAddr) -> bool {
        self.mutate(|s| s.index_of_addr(addr).map(|i| s.entries.remove(i)).is_some())
    }

    /// Drains node `id` (no new sessions, its sids still routed), or undoes it. False if
    /// unknown.
    pub fn set_draining(&self, id: NodeId, draining: bool) -> bool {
        self.mutate(|s| s.index_of_id(id).map(|i| s.entries[i].draining_set = draining).is_some())
    }

    /// Marks node `id` up or down at once, as a health check would after enough
    /// successes or failures (cluster mode: a worker that exited). False if unknown.
    pub fn set_healthy(&self, id: NodeId, healthy: bool) -> bool {
        self.mutate(|s| {
            s.index_of_id(id)
                .map(|i| {
                    let e = &mut s.entries[i];
                    e.healthy = healthy;
                    e.oks = 0;
                    e.fails = 0;
                })
                .is_some()
        })
    }

    /// Records the load node `id` reports (its number of sessions), the tie-breaker of
    /// least-connections. False if unknown.
    pub fn set_load(&self, id: NodeId, load: u64) -> bool {
        let mut s = self.inner.state.write();
        match s.index_of_id(id) {
            Some(i) => {
                s.entries[i].load = Some(load);
                true
            }
            None => false,
        }
    }

    /// A snapshot of every upstream.
    pub fn list(&self) -> Vec<UpstreamInfo> {
        let s = self.inner.state.read();
        s.entries
            .iter()
            .map(|e| UpstreamInfo {
                id: e.id,
                addr: e.addr,
                healthy: e.healthy,
                draining: e.draining_reported || e.draining_set,
                eligible: e.eligible(),
                active: e.counters.active.load(Ordering::Relaxed),
                requests: e.counters.requests.load(Ordering::Relaxed),
                load: e.load,
            })
            .collect()
    }

    /// Number of upstreams.
    pub fn len(&self) -> usize {
        self.inner.state.read().entries.len()
    }

    /// True when there is no upstream.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of upstreams taking new sessions now.
    pub fn eligible_count(&self) -> usize {
        self.inner.state.read().eligible.len()
    }

    /// Completes at the next change of the set (an upstream added, removed, or changing
    /// state).
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    // ---- for the balancer ----

    /// The upstream owning sessions of node `id`, whatever its health.
    pub(crate) fn by_node(&self, id: NodeId) -> Option<Picked> {
        let s = self.inner.state.read();
        s.index_of_id(id).map(|i| s.entries[i].picked())
    }

    /// Node `id`'s upstream if it takes new sessions.
    pub(crate) fn eligible_node(&self, id: NodeId) -> Option<Picked> {
        let s = self.inner.state.read();
        s.index_of_id(id).filter(|&i| s.entries[i].eligible()).map(|i| s.entries[i].picked())
    }

    fn candidates<'a>(s: &'a State, exclude: &'a [SocketAddr]) -> impl Iterator<Item = usize> + 'a {
        s.eligible.iter().copied().filter(move |&i| !exclude.contains(&s.entries[i].addr))
    }

    /// Least connections, then least reported load, then in turn.
    pub(crate) fn pick_least(&self, exclude: &[SocketAddr]) -> Option<Picked> {
        let s = self.inner.state.read();
        let n = s.eligible.len();
        if n == 0 {
            return None;
        }
        let start = self.inner.turn.fetch_add(1, Ordering::Relaxed) % n;
        let mut best: Option<(usize, u64, usize)> = None;
        for k in 0..n {
            let i = s.eligible[(start + k) % n];
            if exclude.contains(&s.entries[i].addr) {
                continue;
            }
            let e = &s.entries[i];
            let score = (e.counters.active.load(Ordering::Relaxed), e.load.unwrap_or(0));
            if best.is_none_or(|(a, l, _)| score < (a, l)) {
                best = Some((score.0, score.1, i));
            }
        }
        best.map(|(_, _, i)| s.entries[i].picked())
    }

    /// The next one in turn.
    pub(crate) fn pick_round_robin(&self, exclude: &[SocketAddr]) -> Option<Picked> {
        let s = self.inner.state.read();
        let list: Vec<usize> = Self::candidates(&s, exclude).collect();
        if list.is_empty() {
            return None;
        }
        let k = self.inner.turn.fetch_add(1, Ordering::Relaxed) % list.len();
        Some(s.entries[list[k]].picked())
    }

    /// One at random.
    pub(crate) fn pick_random(&self, exclude: &[SocketAddr]) -> Option<Picked> {
        let s = self.inner.state.read();
        let list: Vec<usize> = Self::candidates(&s, exclude).collect();
        if list.is_empty() {
            return None;
        }
        let r = self.next_random();
        Some(s.entries[list[(r % list.len() as u64) as usize]].picked())
    }

    /// The owner of `key` on the consistent-hash ring; least-connections among the others
    /// when the owner is excluded (it failed for this request).
    pub(crate) fn pick_hash(&self, key: &[u8], exclude: &[SocketAddr]) -> Option<Picked> {
        {
            let s = self.inner.state.read();
            let owner = *s.ring.get(key)?;
            if !exclude.contains(&s.entries[owner].addr) {
                return Some(s.entries[owner].picked());
            }
        }
        self.pick_least(exclude)
    }

    fn next_random(&self) -> u64 {
        // xorshift64*, racy updates are fine for load spreading
        let mut x = self.inner.rng.load(Ordering::Relaxed);
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.inner.rng.store(x, Ordering::Relaxed);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A connect error: out of rotation at once, until health checks bring it back.
    pub(crate) fn mark_down(&self, addr: SocketAddr) {
        let changed = self.mutate(|s| match s.index_of_addr(addr) {
            Some(i) if s.entries[i].healthy => {
                let e = &mut s.entries[i];
                e.healthy = false;
                e.oks = 0;
                true
            }
            _ => false,
        });
        if changed {
            tracing::warn!(upstream = %addr, "upstream unreachable: out of rotation until healthy again");
        }
    }

    /// A handshake refused with 503: draining, until a health check says otherwise.
    pub(crate) fn mark_draining(&self, addr: SocketAddr) {
        let changed = self.mutate(|s| match s.index_of_addr(addr) {
            Some(i) if !s.entries[i].draining_reported => {
                s.entries[i].draining_reported = true;
                true
            }
            _ => false,
        });
        if changed {
            tracing::info!(upstream = %addr, "upstream refused a new session (draining): no new sessions there");
        }
    }

    /// The addresses to check, each with whether its id is still unknown.
    pub(crate) fn to_check(&self) -> Vec<(SocketAddr, bool)> {
        self.inner.state.read().entries.iter().map(|e| (e.addr, e.id.is_none())).collect()
    }

    /// Applies one health check result.
    pub(crate) fn record_check(&self, addr: SocketAddr, outcome: &CheckOutcome, rise: u32, fall: u32) {
        let mut note: Option<(&'static str, Option<NodeId>)> = None;
        let mut state_changed = false;
        {
            let mut s = self.inner.state.write();
            let Some(i) = s.index_of_addr(addr) else { return };
            // a node id moving here from another entry: that entry is stale
            if let CheckOutcome::Up { node: Some(id), .. } = outcome
                && let Some(j) = s.index_of_id(*id)
                && j != i
            {
                s.entries[j].id = None;
                s.entries[j].healthy = false;
                state_changed = true;
            }
            let e = &mut s.entries[i];
            match outcome {
                CheckOutcome::Up { draining, node } => {
                    e.fails = 0;
                    e.oks = e.oks.saturating_add(1);
                    if !e.healthy && e.oks >= rise {
                        e.healthy = true;
                        state_changed = true;
                        note = Some(("upstream healthy again: back in rotation", e.id));
                    }
                    if e.draining_reported != *draining {
                        e.draining_reported = *draining;
                        state_changed = true;
                        note =
                            Some((if *draining { "upstream draining" } else { "upstream no longer draining" }, e.id));
                    }
                    if let Some(id) = node
                        && e.id != Some(*id)
                    {
                        e.id = Some(*id);
                        state_changed = true;
                        note = Some(("upstream node id learned", Some(*id)));
                    }
                }
                CheckOutcome::Down(_) => {
                    e.oks = 0;
                    e.fails = e.fails.saturating_add(1);
                    if e.healthy && e.fails >= fall {
                        e.healthy = false;
                        state_changed = true;
                        note = Some(("upstream failed its health checks: out of rotation", e.id));
                    }
                }
            }
            if state_changed {
                s.refresh();
            }
        }
        if state_changed {
            self.inner.changed.notify_waiters();
        }
        if let Some((what, id)) = note {
            let id = id.map(|i| i.to_string()).unwrap_or_default();
            match outcome {
                CheckOutcome::Down(why) => tracing::warn!(upstream = %addr, node = %id, cause = %why, "{what}"),
                CheckOutcome::Up { .. } => tracing::info!(upstream = %addr, node = %id, "{what}"),
            }
        }
    }

    /// Addresses currently listed (to forget pooled connections of removed ones).
    pub(crate) fn addrs(&self) -> HashSet<SocketAddr> {
        self.inner.state.read().entries.iter().map(|e| e.addr).collect()
    }
}

/// The result of one health check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CheckOutcome {
    /// It answered 200 (or 503: draining).
    Up {
        /// 503.
        draining: bool,
        /// The node id it reported, if any.
        node: Option<NodeId>,
    },
    /// It did not answer well; why.
    Down(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        s.parse().unwrap()
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn eligibility_and_sid_lookup() {
        let u = Upstreams::new();
        u.add(id("aaaa"), addr(1));
        u.add_addr(addr(2));
        assert_eq!(u.eligible_count(), 1, "an upstream without id takes no new sessions");
        u.record_check(addr(2), &CheckOutcome::Up { draining: false, node: Some(id("bbbb")) }, 2, 2);
        assert_eq!(u.eligible_count(), 2);
        assert_eq!(u.by_node(id("bbbb")).unwrap().addr, addr(2));
        assert!(u.by_node(id("cccc")).is_none());

        // draining: no new sessions, sid still routed
        u.record_check(addr(2), &CheckOutcome::Up { draining: true, node: Some(id("bbbb")) }, 2, 2);
        assert_eq!(u.eligible_count(), 1);
        assert_eq!(u.by_node(id("bbbb")).unwrap().addr, addr(2));
        for _ in 0..10 {
            assert_eq!(u.pick_round_robin(&[]).unwrap().addr, addr(1));
        }
        assert!(u.set_draining(id("aaaa"), true));
        assert!(u.pick_least(&[]).is_none());
        assert!(u.set_draining(id("aaaa"), false));

        // two failures take it out, two successes bring it back
        u.record_check(addr(1), &CheckOutcome::Down("refused".into()), 2, 2);
        assert_eq!(u.eligible_count(), 1);
        u.record_check(addr(1), &CheckOutcome::Down("refused".into()), 2, 2);
        assert_eq!(u.eligible_count(), 0);
        u.record_check(addr(1), &CheckOutcome::Up { draining: false, node: None }, 2, 2);
        assert_eq!(u.eligible_count(), 0);
        u.record_check(addr(1), &CheckOutcome::Up { draining: false, node: None }, 2, 2);
        assert_eq!(u.eligible_count(), 1);

        // passive: down at once
        u.mark_down(addr(1));
        assert_eq!(u.eligible_count(), 0);

        assert!(u.remove(id("bbbb")));
        assert!(u.by_node(id("bbbb")).is_none());
        assert_eq!(u.len(), 1);
    }

    #[test]
    fn add_updates_moved_nodes() {
        let u = Upstreams::new();
        u.add(id("aaaa"), addr(1));
        u.add(id("aaaa"), addr(5));
        assert_eq!(u.len(), 1);
        assert_eq!(u.by_node(id("aaaa")).unwrap().addr, addr(5));
        // a new node at the same address replaces the id, with a fresh state
        u.mark_draining(addr(5));
        u.mark_down(addr(5));
        assert_eq!(u.eligible_count(), 0);
        u.add(id("cccc"), addr(5));
        assert_eq!(u.len(), 1);
        assert!(u.by_node(id("aaaa")).is_none());
        assert_eq!(u.eligible_count(), 1);
        // an id reported by another address moves there
        u.add_addr(addr(6));
        u.record_check(addr(6), &CheckOutcome::Up { draining: false, node: Some(id("cccc")) }, 2, 2);
        assert_eq!(u.by_node(id("cccc")).unwrap().addr, addr(6));
    }

    #[test]
    fn least_connections_prefers_idle_upstreams() {
        let u = Upstreams::new();
        u.add(id("aaaa"), addr(1));
        u.add(id("bbbb"), addr(2));
        let busy = u.by_node(id("aaaa")).unwrap();
        let _g1 = ActiveGuard::new(busy.counters.clone());
        for _ in 0..5 {
            assert_eq!(u.pick_least(&[]).unwrap().addr, addr(2));
        }
        assert_eq!(u.pick_least(&[addr(2)]).unwrap().addr, addr(1));
        // spread: equal counts alternate
        drop(_g1);
        let picks: HashSet<SocketAddr> = (0..4).map(|_| u.pick_least(&[]).unwrap().addr).collect();
        assert_eq!(picks.len(), 2);
        let picks: HashSet<SocketAddr> = (0..50).map(|_| u.pick_random(&[]).unwrap().addr).collect();
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn hash_owner_is_stable_and_skips_excluded() {
        let u = Upstreams::new();
        u.add(id("aaaa"), addr(1));
        u.add(id("bbbb"), addr(2));
        u.add(id("cccc"), addr(3));
        let owner = u.pick_hash(b"10.0.0.7", &[]).unwrap().addr;
        for _ in 0..10 {
            assert_eq!(u.pick_hash(b"10.0.0.7", &[]).unwrap().addr, owner);
        }
        assert_ne!(u.pick_hash(b"10.0.0.7", &[owner]).unwrap().addr, owner);
    }
}
