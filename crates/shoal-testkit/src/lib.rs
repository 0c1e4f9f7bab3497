//! Test infrastructure for Shoal's interop tests with Redis and Node.js.
//!
//! - [`RedisServer`]: a throw-away `redis-server` on a free loopback port (killed on drop),
//!   which tests can kill, restart, pause and inspect;
//! - [`RedisCluster`]: a throw-away Redis Cluster of N masters;
//! - [`RespConnection`] / [`RespValue`]: a tiny RESP2 client, to look at Redis state
//!   (`PUBSUB NUMSUB`, `PUBSUB SHARDNUMSUB`, ...), publish crafted payloads, or subscribe
//!   and read what an adapter publishes;
//! - [`NodeProcess`]: a Node.js script of `tests/js-redis/` (Node socket.io servers with
//!   `@socket.io/redis-adapter`, official clients, `@socket.io/redis-emitter`) driven
//!   through JSON lines on its stdin and stdout.
//!
//! System requirements: `redis-server` and `redis-cli` (run `scripts/deps`), Node.js, and
//! the Node packages of `tests/js-redis` (`npm ci --prefix tests/js-redis`). Everything
//! listens on 127.0.0.1 only.
//!
//! ```no_run
//! # async fn demo() {
//! use serde_json::json;
//! use shoal_testkit::{NodeProcess, RedisServer};
//!
//! let redis = RedisServer::start().await;
//! let mut server = NodeProcess::spawn("server.mjs", &["--redis", &redis.url()]);
//! let listening = server.wait_for_event("listening").await;
//! let count = server.call(json!({"cmd": "serverCount"})).await;
//! assert_eq!(count, json!(1));
//! # let _ = listening;
//! # }
//! ```

mod node;
mod redis;
mod resp;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

pub use node::{DEFAULT_TIMEOUT, NodeProcess, js_redis_dir, record_connected};
pub use redis::{RedisCluster, RedisServer};
pub use resp::{RespConnection, RespValue, resp_cmd};

/// The repository root (the workspace directory holding `crates/`, `tests/`, `scripts/`).
pub fn repo_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..");
    root.canonicalize().unwrap_or(root)
}

/// A TCP port that was free on 127.0.0.1 a moment ago (bound to port 0, then released).
///
/// Another process may take it before the caller binds it; [`RedisServer::start`] retries
/// with another port when that happens.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1:0 to find a free port");
    listener.local_addr().expect("local address of a bound listener").port()
}

/// A fresh, empty directory under [`std::env::temp_dir`], unique to this process and call.
pub(crate) fn unique_temp_dir(what: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("shoal-testkit-{what}-{}-{n}-{nanos}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}
