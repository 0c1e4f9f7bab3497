//! Membership: which Shoal nodes are alive, where they can be reached, how loaded they are.
//!
//! Every node runs an [`Announcer`]; every component that routes requests (a node that
//! forwards misrouted requests to their owner, `shoal balance`, the cluster primary) runs
//! a [`Membership`] watcher. Both go through Redis:
//!
//! - key `<prefix>:node:<id>` holds the node's announcement, JSON
//!   `{"id","addr","load","draining","started"}` (`addr` = `host:port` of its internal
//!   address, `load` = its number of sessions, `started` = milliseconds since the Unix
//!   epoch), rewritten every [`MembershipConfig::interval`] (2 s) with an expiry of
//!   [`MembershipConfig::expiry`] (`SET … PX 6000`);
//! - the same JSON is published on channel `<prefix>:nodes` so that watchers learn of it
//!   at once; [`Announcer::leave`] deletes the key and publishes `{"id":…,"left":true}`;
//! - a watcher starts with `SCAN MATCH <prefix>:node:*` + `GET` (on every primary of a
//!   Redis Cluster), then follows the channel. It drops a node not refreshed within the
//!   expiry (it stopped heartbeating: crashed, partitioned) or that left, and scans again
//!   after every reconnection (Redis restarted: nothing was missed for long).
//!
//! The prefix is the adapter's key (default `socket.io`, so `socket.io:node:ab12`), which
//! cannot collide with the adapter's channels (`socket.io#/#…`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), shoal_redis::AdapterError> {
//! use std::sync::Arc;
//! use shoal_redis::RedisConnection;
//! use shoal_redis::membership::{LocalNode, Membership, MembershipConfig, NodeStatus};
//!
//! let conn = RedisConnection::new("redis://127.0.0.1:6379");
//! let members = Membership::connect(&conn, MembershipConfig::default()).await?;
//! let me = LocalNode::new("ab12".parse().unwrap(), "10.0.0.5:3000".parse().unwrap());
//! let announcer = members.announce(me, Arc::new(|| NodeStatus { load: 0, draining: false })).await;
//! for node in members.nodes().iter() {
//!     println!("{} at {} ({} sessions)", node.id, node.addr, node.load);
//! }
//! announcer.leave().await;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fred::clients::SubscriberClient;
use fred::prelude::*;
use fred::types::{ClusterHash, CustomCommand};
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use shoal_core::{AdapterError, NodeId};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::driver::{RedisConnection, fred_builder, unavailable};

/// Settings of membership (announcer and watcher alike).
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    /// Key and channel prefix (the adapter's key). Default `socket.io`.
    pub prefix: String,
    /// How often a node announces itself. Default 2 s.
    pub interval: Duration,
    /// How long an announcement is valid: the key's expiry, and how long a watcher keeps
    /// a node it has not heard from. Default 6 s; must be longer than `interval`.
    pub expiry: Duration,
}

impl Default for MembershipConfig {
    fn default() -> Self {
        MembershipConfig {
            prefix: "socket.io".into(),
            interval: Duration::from_secs(2),
            expiry: Duration::from_secs(6),
        }
    }
}

impl MembershipConfig {
    /// Sets the prefix.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the announcement interval.
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the expiry.
    #[must_use]
    pub fn expiry(mut self, expiry: Duration) -> Self {
        self.expiry = expiry;
        self
    }

    /// Checks the settings.
    ///
    /// # Errors
    /// [`AdapterError::Other`] for an empty prefix, a zero interval, or an expiry not
    /// longer than the interval.
    pub fn validate(&self) -> Result<(), AdapterError> {
        if self.prefix.is_empty() {
            return Err(AdapterError::Other("membership prefix must not be empty".into()));
        }
        if self.interval.is_zero() || self.expiry <= self.interval {
            return Err(AdapterError::Other("membership expiry must be longer than a positive interval".into()));
        }
        Ok(())
    }

    fn key(&self, id: NodeId) -> String {
        format!("{}:node:{}", self.prefix, id)
    }

    fn channel(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
}

/// What a node says about itself on each announcement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeStatus {
    /// Its number of sessions.
    pub load: u64,
    /// True while it refuses new sessions (draining).
    pub draining: bool,
}

/// Reads the current status of the local node (called on every announcement).
pub type StatusFn = Arc<dyn Fn() -> NodeStatus + Send + Sync>;

/// The node an [`Announcer`] announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalNode {
    /// Its id (the first 4 characters of its session ids).
    pub id: NodeId,
    /// Where other nodes and proxies reach it.
    pub addr: SocketAddr,
    /// When it started, in milliseconds since the Unix epoch.
    pub started: u64,
}

impl LocalNode {
    /// `id` at `addr`, started now.
    pub fn new(id: NodeId, addr: SocketAddr) -> LocalNode {
        LocalNode { id, addr, started: now_ms() }
    }
}

/// The internal address a node announces: `configured` (`HOST:PORT`, resolved) when
/// given, else the address it is `bound` to, with 127.0.0.1 (or ::1) for "any address".
///
/// # Errors
/// When `configured` does not resolve.
pub async fn advertise_address(configured: Option<&str>, bound: SocketAddr) -> std::io::Result<SocketAddr> {
    let Some(a) = configured else {
        let mut addr = bound;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
        }
        return Ok(addr);
    };
    let mut found =
        tokio::net::lookup_host(a).await.map_err(|e| std::io::Error::new(e.kind(), format!("advertise {a:?}: {e}")))?;
    found.next().ok_or_else(|| std::io::Error::other(format!("advertise {a:?}: no address")))
}

/// A node as a watcher knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Its id.
    pub id: NodeId,
    /// Its internal address.
    pub addr: SocketAddr,
    /// Its number of sessions, as last announced.
    pub load: u64,
    /// True while it is draining (takes no new sessions).
    pub draining: bool,
    /// When it started, in milliseconds since the Unix epoch.
    pub started: u64,
    /// When this watcher last heard from it.
    pub last_seen: Instant,
}

/// The JSON of an announcement (and of a departure, with `left`).
#[derive(Debug, Serialize, Deserialize)]
struct Wire {
    id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    addr: Option<String>,
    #[serde(default)]
    load: u64,
    #[serde(default)]
    draining: bool,
    #[serde(default)]
    started: u64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    left: bool,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

async fn command_client(conn: &RedisConnection) -> Result<Client, AdapterError> {
    let client = fred_builder(conn)?.0.build().map_err(unavailable)?;
    client.init().await.map_err(unavailable)?;
    Ok(client)
}

fn cmd(name: &'static str) -> CustomCommand {
    CustomCommand::new_static(name, ClusterHash::FirstKey, false)
}

struct Table {
    nodes: RwLock<HashMap<NodeId, NodeInfo>>,
    changes: watch::Sender<Arc<Vec<NodeInfo>>>,
}

impl Table {
    /// Publishes a sorted snapshot to the watchers.
    fn notify(&self) {
        let mut all: Vec<NodeInfo> = self.nodes.read().values().cloned().collect();
        all.sort_by_key(|n| n.id);
        self.changes.send_replace(Arc::new(all));
    }

    /// Applies one announcement (or departure); notifies when something changed.
    fn apply(&self, payload: &[u8]) {
        let wire: Wire = match serde_json::from_slice(payload) {
            Ok(w) => w,
            Err(e) => {
                tracing::debug!(cause = %e, "ignoring an invalid membership message");
                return;
            }
        };
        let Ok(id) = wire.id.parse::<NodeId>() else {
            tracing::debug!(id = %wire.id, "ignoring a membership message with an invalid node id");
            return;
        };
        if wire.left {
            if self.nodes.write().remove(&id).is_some() {
                tracing::info!(node = %id, "node left");
                self.notify();
            }
            return;
        }
        let Some(addr) = wire.addr.as_deref().and_then(|a| a.parse::<SocketAddr>().ok()) else {
            tracing::debug!(node = %id, addr = ?wire.addr, "ignoring an announcement without a valid address");
            return;
        };
        let info = NodeInfo {
            id,
            addr,
            load: wire.load,
            draining: wire.draining,
            started: wire.started,
            last_seen: Instant::now(),
        };
        let changed = {
            let mut nodes = self.nodes.write();
            match nodes.get_mut(&id) {
                Some(known) => {
                    let changed = known.addr != info.addr
                        || known.load != info.load
                        || known.draining != info.draining
                        || known.started != info.started;
                    *known = info;
                    changed
                }
                None => {
                    tracing::info!(node = %id, %addr, "node joined");
                    nodes.insert(id, info);
                    true
                }
            }
        };
        if changed {
            self.notify();
        }
    }

    /// Drops the nodes not heard from within `expiry`.
    fn prune(&self, expiry: Duration) {
        let now = Instant::now();
        let mut gone = Vec::new();
        self.nodes.write().retain(|id, n| {
            let keep = now.duration_since(n.last_seen) < expiry;
            if !keep {
                gone.push(*id);
            }
            keep
        });
        if !gone.is_empty() {
            for id in gone {
                tracing::info!(node = %id, "node expired (no heartbeat)");
            }
            self.notify();
        }
    }
}

/// The watcher: every live node, kept up to date from Redis. Cheap to share (`Arc`).
pub struct Membership {
    config: MembershipConfig,
    conn: RedisConnection,
    client: Client,
    subscriber: SubscriberClient,
    table: Arc<Table>,
    closed: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Membership")
            .field("config", &self.config)
            .field("nodes", &self.table.nodes.read().len())
            .finish_non_exhaustive()
    }
}

impl Membership {
    /// Connects to Redis, loads the nodes announced so far (`SCAN`), and follows the
    /// announcements from then on. Later disconnections are retried forever; after each
    /// reconnection the nodes are scanned again.
    ///
    /// # Errors
    /// Invalid settings or URL, or Redis unreachable at start.
    pub async fn connect(conn: &RedisConnection, config: MembershipConfig) -> Result<Arc<Membership>, AdapterError> {
        config.validate()?;
        let client = command_client(conn).await?;
        let subscriber = fred_builder(conn)?.0.build_subscriber_client().map_err(unavailable)?;
        subscriber.init().await.map_err(unavailable)?;
        let (changes, _) = watch::channel(Arc::new(Vec::new()));
        let table = Arc::new(Table { nodes: RwLock::new(HashMap::new()), changes });
        let closed = Arc::new(AtomicBool::new(false));
        let channel = config.channel();
        let mut tasks = Vec::new();

        // messages first, then subscribe, then scan: nothing announced in between is missed
        let mut rx = subscriber.message_rx();
        let (t, ch) = (table.clone(), channel.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(msg) if *msg.channel == *ch => {
                        if let Some(b) = msg.value.as_bytes() {
                            t.apply(b);
                        }
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "membership watcher fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        }));
        subscriber.subscribe(channel.as_str()).await.map_err(unavailable)?;
        scan(&client, &config, &table).await?;

        // after a reconnection: subscribe again, scan again
        let mut reconnects = subscriber.reconnect_rx();
        let (sub, cl, cfg, t, ch) =
            (subscriber.clone(), client.clone(), config.clone(), table.clone(), channel.clone());
        tasks.push(tokio::spawn(async move {
            while reconnects.recv().await.is_ok() {
                match sub.subscribe(ch.as_str()).await {
                    Ok(()) => tracing::info!("membership watcher reconnected"),
                    Err(e) => tracing::warn!(cause = %e, "membership: subscribing again failed"),
                }
                // the command connection may come back a little later than this one
                for attempt in 1..=20 {
                    match scan(&cl, &cfg, &t).await {
                        Ok(()) => break,
                        Err(e) if attempt == 20 => tracing::warn!(cause = %e, "membership: scanning again failed"),
                        Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
                    }
                }
            }
        }));
        // expiry of silent nodes
        let (t, expiry) = (table.clone(), config.expiry);
        let tick = (config.interval / 4).clamp(Duration::from_millis(50), Duration::from_millis(500));
        tasks.push(tokio::spawn(async move {
            let mut every = tokio::time::interval(tick);
            loop {
                every.tick().await;
                t.prune(expiry);
            }
        }));
        Ok(Arc::new(Membership { config, conn: conn.clone(), client, subscriber, table, closed, tasks }))
    }

    /// The settings.
    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }

    /// The node `id`, if alive.
    pub fn get(&self, id: NodeId) -> Option<NodeInfo> {
        self.table.nodes.read().get(&id).cloned()
    }

    /// The internal address of node `id`, if alive (draining nodes included: they still
    /// serve their sessions).
    pub fn address(&self, id: NodeId) -> Option<SocketAddr> {
        self.table.nodes.read().get(&id).map(|n| n.addr)
    }

    /// Every live node, sorted by id.
    pub fn nodes(&self) -> Arc<Vec<NodeInfo>> {
        self.table.changes.borrow().clone()
    }

    /// Notified with the new list of nodes whenever a node joins, leaves, expires, or
    /// changes address, load or draining state.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Vec<NodeInfo>>> {
        self.table.changes.subscribe()
    }

    /// Starts announcing `node` over this watcher's connection (see [`Announcer`]); the
    /// first announcement has been tried when this returns.
    pub async fn announce(&self, node: LocalNode, status: StatusFn) -> Announcer {
        Announcer::spawn(self.client.clone(), false, self.config.clone(), node, status).await
    }

    /// Announces node `id`, listening on `bound`, at the address [`advertise_address`]
    /// makes of `configured` and `bound`; the first announcement has been tried when this
    /// returns.
    ///
    /// # Errors
    /// When `configured` does not resolve.
    pub async fn announce_at(
        &self,
        id: NodeId,
        configured: Option<&str>,
        bound: SocketAddr,
        status: StatusFn,
    ) -> std::io::Result<Announcer> {
        let advertise = advertise_address(configured, bound).await?;
        Ok(self.announce(LocalNode::new(id, advertise), status).await)
    }

    /// The connection settings this watcher uses.
    pub fn connection(&self) -> &RedisConnection {
        &self.conn
    }

    /// Stops following and disconnects.
    pub async fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for t in &self.tasks {
            t.abort();
        }
        let _ = self.subscriber.quit().await;
        let _ = self.client.quit().await;
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Loads every announcement stored in Redis.
async fn scan(client: &Client, config: &MembershipConfig, table: &Table) -> Result<(), AdapterError> {
    let pattern = format!("{}:node:*", config.prefix);
    let mut keys = Vec::new();
    if client.is_clustered() {
        let primaries = client.cached_cluster_state().map(|s| s.unique_primary_nodes()).unwrap_or_default();
        for server in primaries {
            scan_node(&client.with_cluster_node(server), &pattern, &mut keys).await?;
        }
    } else {
        scan_node(client, &pattern, &mut keys).await?;
    }
    for key in keys {
        let v: Value = client.custom(cmd("GET"), vec![key]).await.map_err(unavailable)?;
        if let Some(b) = v.as_bytes() {
            table.apply(b);
        }
    }
    Ok(())
}

async fn scan_node<C: ClientLike>(client: &C, pattern: &str, out: &mut Vec<String>) -> Result<(), AdapterError> {
    let mut cursor = "0".to_owned();
    // bounded: a keyspace being rewritten under us must not keep us here forever
    for _ in 0..100_000 {
        let args = vec![cursor.clone(), "MATCH".into(), pattern.to_owned(), "COUNT".into(), "256".into()];
        let v: Value = client
            .custom(CustomCommand::new_static("SCAN", ClusterHash::Random, false), args)
            .await
            .map_err(unavailable)?;
        let Value::Array(parts) = v else { return Err(AdapterError::Other("unexpected SCAN answer".into())) };
        let mut parts = parts.into_iter();
        cursor = parts.next().and_then(|c| c.as_string()).unwrap_or_else(|| "0".into());
        if let Some(Value::Array(found)) = parts.next() {
            out.extend(found.into_iter().filter_map(|k| k.as_string()));
        }
        if cursor == "0" {
            break;
        }
    }
    Ok(())
}

/// Announces the local node every `interval` until dropped or [`Announcer::leave`].
pub struct Announcer {
    node: LocalNode,
    config: MembershipConfig,
    client: Client,
    own_client: bool,
    now: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Announcer").field("node", &self.node).field("config", &self.config).finish_non_exhaustive()
    }
}

impl Announcer {
    /// Connects to Redis and starts announcing `node` (at once, then every `interval`),
    /// with the status `status` returns each time. Announcements that fail (Redis down)
    /// are logged and the next one is tried on time.
    ///
    /// # Errors
    /// Invalid settings or URL, or Redis unreachable at start.
    pub async fn start(
        conn: &RedisConnection,
        config: MembershipConfig,
        node: LocalNode,
        status: StatusFn,
    ) -> Result<Announcer, AdapterError> {
        config.validate()?;
        let client = command_client(conn).await?;
        Ok(Announcer::spawn(client, true, config, node, status).await)
    }

    async fn spawn(
        client: Client,
        own_client: bool,
        config: MembershipConfig,
        node: LocalNode,
        status: StatusFn,
    ) -> Announcer {
        let now = Arc::new(Notify::new());
        // the first announcement is stored before this returns, so that the node is
        // visible to every watcher as soon as its owner goes on
        let mut failing = false;
        let first = announce_once(&client, &config, node, &status).await;
        report(node, &mut failing, first);
        let (c, cfg, n) = (client.clone(), config.clone(), now.clone());
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(cfg.interval) => {}
                    _ = n.notified() => {}
                }
                let result = announce_once(&c, &cfg, node, &status).await;
                report(node, &mut failing, result);
            }
        });
        Announcer { node, config, client, own_client, now, task }
    }

    /// The announced node.
    pub fn node(&self) -> LocalNode {
        self.node
    }

    /// Announces now instead of at the next tick (after the status changed, as when
    /// draining starts).
    pub fn announce_now(&self) {
        self.now.notify_one();
    }

    /// Stops announcing, deletes the key and publishes the departure, so that watchers
    /// drop the node at once. Announcing stops for good.
    pub async fn leave(&self) {
        self.task.abort();
        let id = self.node.id;
        let key = self.config.key(id);
        let left = serde_json::to_string(&Wire {
            id: id.to_string(),
            addr: None,
            load: 0,
            draining: false,
            started: self.node.started,
            left: true,
        })
        .unwrap_or_default();
        if let Err(e) = self.client.custom::<Value, _>(cmd("DEL"), vec![key]).await {
            tracing::warn!(node = %id, cause = %e, "membership: deleting the key failed");
        }
        if let Err(e) = self.client.custom::<Value, _>(cmd("PUBLISH"), vec![self.config.channel(), left]).await {
            tracing::warn!(node = %id, cause = %e, "membership: publishing the departure failed");
        }
        if self.own_client {
            let _ = self.client.quit().await;
        }
    }
}

/// Stores the node's key (with its expiry) and publishes the announcement.
async fn announce_once(
    c: &Client,
    cfg: &MembershipConfig,
    node: LocalNode,
    status: &StatusFn,
) -> Result<(), fred::error::Error> {
    let st = status();
    let wire = Wire {
        id: node.id.to_string(),
        addr: Some(node.addr.to_string()),
        load: st.load,
        draining: st.draining,
        started: node.started,
        left: false,
    };
    let json = serde_json::to_string(&wire).unwrap_or_default();
    let px = cfg.expiry.as_millis().to_string();
    c.custom::<Value, _>(cmd("SET"), vec![cfg.key(node.id), json.clone(), "PX".into(), px]).await?;
    c.custom::<Value, _>(cmd("PUBLISH"), vec![cfg.channel(), json]).await?;
    Ok(())
}

/// Logs the first failure of a run of failed announcements and the recovery.
fn report(node: LocalNode, failing: &mut bool, result: Result<(), fred::error::Error>) {
    match result {
        Ok(()) if *failing => {
            *failing = false;
            tracing::info!(node = %node.id, "membership announcements resumed");
        }
        Ok(()) => {}
        Err(e) if !*failing => {
            *failing = true;
            tracing::warn!(node = %node.id, cause = %e, "membership announcement failed");
        }
        Err(_) => {}
    }
}

impl Drop for Announcer {
    fn drop(&mut self) {
        // without `leave`, the key expires and watchers drop the node within the expiry
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        let (changes, _) = watch::channel(Arc::new(Vec::new()));
        Table { nodes: RwLock::new(HashMap::new()), changes }
    }

    #[test]
    fn wire_format() {
        let w = Wire {
            id: "ab12".into(),
            addr: Some("127.0.0.1:3000".into()),
            load: 3,
            draining: false,
            started: 17,
            left: false,
        };
        assert_eq!(
            serde_json::to_string(&w).unwrap(),
            r#"{"id":"ab12","addr":"127.0.0.1:3000","load":3,"draining":false,"started":17}"#
        );
    }

    #[tokio::test]
    async fn table_joins_updates_leaves_and_expires() {
        let t = table();
        let mut rx = t.changes.subscribe();
        t.apply(br#"{"id":"ab12","addr":"127.0.0.1:3000","load":1,"draining":false,"started":1}"#);
        assert!(rx.has_changed().unwrap());
        assert_eq!(rx.borrow_and_update().len(), 1);
        // same content: no notification
        t.apply(br#"{"id":"ab12","addr":"127.0.0.1:3000","load":1,"draining":false,"started":1}"#);
        assert!(!rx.has_changed().unwrap());
        t.apply(br#"{"id":"ab12","addr":"127.0.0.1:3000","load":2,"draining":true,"started":1}"#);
        assert!(rx.borrow_and_update()[0].draining);
        // junk is ignored
        for junk in [&b"nope"[..], br#"{"id":"toolong"}"#, br#"{"id":"cd34","addr":"nowhere"}"#, br#"[]"#] {
            t.apply(junk);
        }
        assert!(!rx.has_changed().unwrap());
        t.apply(br#"{"id":"cd34","addr":"127.0.0.1:3001"}"#);
        assert_eq!(rx.borrow_and_update().len(), 2);
        t.apply(br#"{"id":"cd34","left":true}"#);
        assert_eq!(rx.borrow_and_update().len(), 1);
        t.prune(Duration::from_secs(6));
        assert!(!rx.has_changed().unwrap(), "heard from just now");
        t.prune(Duration::ZERO);
        assert!(rx.borrow_and_update().is_empty());
    }

    #[test]
    fn config_is_checked() {
        assert!(MembershipConfig::default().validate().is_ok());
        assert!(MembershipConfig::default().prefix("").validate().is_err());
        assert!(MembershipConfig::default().expiry(Duration::from_secs(1)).validate().is_err());
        assert!(MembershipConfig::default().interval(Duration::ZERO).validate().is_err());
    }
}
