//! Node servers with the Redis adapter ride out a Redis crash: after `RedisServer::kill`
//! and `restart`, node-redis reconnects and resubscribes, and broadcasts flow again.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

use std::time::Duration;

use serde_json::{Value, json};
use shoal_testkit::{NodeProcess, RedisServer};

const T: Duration = Duration::from_secs(10);

fn redis_state(client: &'static str, state: &'static str) -> impl FnMut(&Value) -> bool {
    move |v| v["event"] == "redis" && v["client"] == client && v["state"] == state
}

#[tokio::test]
async fn node_servers_recover_from_a_redis_restart() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let mut a = NodeProcess::spawn("server.mjs", &["--redis", &url, "--name", "A"]);
    let mut b = NodeProcess::spawn("server.mjs", &["--redis", &url, "--name", "B"]);
    a.wait_for_event("listening").await;
    let port_b = b.wait_for_event("listening").await["port"].clone();
    let mut clients = NodeProcess::spawn("clients.mjs", &["--url", &format!("http://127.0.0.1:{port_b}")]);
    clients.wait_for_event("ready").await;

    redis.kill();
    for server in [&mut a, &mut b] {
        server.wait_for(redis_state("sub", "error"), T).await;
    }
    redis.restart().await;
    for server in [&mut a, &mut b] {
        server.wait_for(redis_state("pub", "ready"), T).await;
        server.wait_for(redis_state("sub", "ready"), T).await;
    }
    // resubscription follows the reconnection: retry until B's client gets A's broadcast
    let deadline = tokio::time::Instant::now() + T;
    let mut n = 0;
    loop {
        n += 1;
        a.call(json!({"cmd": "broadcast", "event": "after", "args": [n]})).await;
        let got = clients.take_matching(|v| v["event"] == "received" && v["name"] == "after");
        if !got.is_empty() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no broadcast went through after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(redis.numsub("socket.io-request#/#").await, 2);
    assert_eq!(a.call(json!({"cmd": "serverCount"})).await, json!(2));
}
