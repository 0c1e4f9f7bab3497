//! The Node side of the Redis interop tests, proven with Node alone: two Node socket.io
//! servers (`tests/js-redis/server.mjs`) sharing a Redis adapter, official clients on each
//! (`clients.mjs`), and `@socket.io/redis-emitter` (`emitter.mjs`). Checks that a broadcast
//! on A reaches B's clients (also to one room only), `fetchSockets` on A sees B's sockets,
//! `serverSideEmitWithAck` returns B's answer, and the emitter reaches every client
//! (classic only: the emitter speaks plain PUBLISH). The Shoal adapter tests mirror this
//! with a Shoal node in place of one of the Node servers.
//!
//! Needs `redis-server`/`redis-cli` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::{NodeProcess, RedisCluster, RedisServer};

/// How long a client event may take to arrive.
const T: Duration = Duration::from_secs(10);
/// How long to watch for a message that must not arrive.
const QUIET: Duration = Duration::from_millis(300);

fn received(name: &'static str, index: u64) -> impl FnMut(&Value) -> bool {
    move |v| v["event"] == "received" && v["name"] == name && v["index"] == index
}

/// One Node server plus a `clients.mjs` holding its two clients (client 0 in `room1`).
struct Side {
    server: NodeProcess,
    clients: NodeProcess,
    ids: Vec<String>,
}

async fn side(name: &str, redis: &[String], mode: &[&str]) -> Side {
    let mut args: Vec<&str> = redis.iter().map(String::as_str).collect();
    args.extend_from_slice(mode);
    args.extend_from_slice(&["--name", name]);
    let mut server = NodeProcess::spawn("server.mjs", &args);
    let listening = server.wait_for_event("listening").await;
    let url = format!("http://127.0.0.1:{}", listening["port"]);
    let mut clients = NodeProcess::spawn(
        "clients.mjs",
        &["--url", &url, "--count", "2", "--transports", "websocket", "--auth", r#"[{"rooms":["room1"]},{}]"#],
    );
    let ready = clients.wait_for_event("ready").await;
    let ids: Vec<String> =
        ready["clients"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 2);
    // the server reports a connection once its rooms (and their subscriptions) are set up
    for id in &ids {
        let conn = server.wait_for(|v| v["event"] == "connection" && v["id"] == id.as_str(), T).await;
        assert_eq!(conn["nsp"], "/");
    }
    Side { server, clients, ids }
}

/// Runs the checks; returns the processes (still running) for checks of Redis state.
async fn scenario(label: &str, redis: Vec<String>, mode: &[&str], emitter: bool) -> Vec<NodeProcess> {
    let started = Instant::now();
    let mut emitter = emitter.then(|| {
        let args: Vec<&str> = redis.iter().map(String::as_str).collect();
        NodeProcess::spawn("emitter.mjs", &args)
    });
    let mut a = side("A", &redis, mode).await;
    let mut b = side("B", &redis, mode).await;

    assert_eq!(a.server.call(json!({"cmd": "serverCount"})).await, json!(2), "{label}: serverCount");

    // a broadcast on A (with binary) reaches every client of both servers
    let bin = json!({"$bin": "AAEC/w=="});
    a.server.call(json!({"cmd": "broadcast", "event": "hello", "args": ["world", bin, {"n": 1}]})).await;
    for side in [&mut a, &mut b] {
        for i in 0..2 {
            let got = side.clients.wait_for(received("hello", i), T).await;
            assert_eq!(got["args"], json!(["world", bin, {"n": 1}]), "{label}");
        }
    }

    // to one room: client 0 of each server only (sharded dynamic: the room's own channel)
    a.server.call(json!({"cmd": "broadcast", "event": "in-room", "args": [1], "rooms": ["room1"]})).await;
    for side in [&mut a, &mut b] {
        side.clients.wait_for(received("in-room", 0), T).await;
    }
    for side in [&mut a, &mut b] {
        side.clients.assert_none(received("in-room", 1), QUIET).await;
    }

    // fetchSockets on A returns the sockets of both servers
    let sockets = a.server.call(json!({"cmd": "fetchSockets"})).await;
    let mut got: Vec<(String, bool)> = sockets
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_owned(), s["local"].as_bool().unwrap()))
        .collect();
    got.sort();
    let mut want: Vec<(String, bool)> =
        a.ids.iter().map(|id| (id.clone(), true)).chain(b.ids.iter().map(|id| (id.clone(), false))).collect();
    want.sort();
    assert_eq!(got, want, "{label}: fetchSockets");
    let in_room = a.server.call(json!({"cmd": "fetchSockets", "rooms": ["room1"]})).await;
    let mut in_room: Vec<&str> = in_room.as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    in_room.sort_unstable();
    let mut want_room = vec![a.ids[0].as_str(), b.ids[0].as_str()];
    want_room.sort_unstable();
    assert_eq!(in_room, want_room, "{label}: fetchSockets in room1");

    // serverSideEmitWithAck on A: B reports the event and answers with its name (no binary
    // here: the classic adapter sends server-side emits as JSON, a Buffer arrives as
    // {"type": "Buffer", "data": [...]})
    let acks = a.server.call(json!({"cmd": "serverSideEmitWithAck", "event": "sync", "args": ["x", {"k": [1]}]})).await;
    assert_eq!(acks, json!(["B"]), "{label}: serverSideEmitWithAck");
    let sse = b.server.wait_for_event("serverSideEmit").await;
    assert_eq!((&sse["name"], &sse["args"], &sse["ack"]), (&json!("sync"), &json!(["x", {"k": [1]}]), &json!(true)));
    a.server.assert_none(|v| v["event"] == "serverSideEmit", Duration::from_millis(50)).await;

    // a client event with an ack reaches its server, which echoes the arguments
    let echoed = b.clients.call(json!({"cmd": "emitWithAck", "index": 1, "event": "ping", "args": [7, bin]})).await;
    assert_eq!(echoed, json!([7, bin]));
    let msg = b.server.wait_for_event("message").await;
    assert_eq!((&msg["id"], &msg["name"], &msg["args"]), (&json!(b.ids[1]), &json!("ping"), &json!([7, bin])));

    // the emitter reaches every client
    if let Some(emitter) = emitter.as_mut() {
        emitter.wait_for_event("ready").await;
        let res = emitter.call(json!({"cmd": "emit", "event": "from-emitter", "args": [bin]})).await;
        assert_eq!(res["published"][0]["channel"], "socket.io#/#", "{label}: {res}");
        for side in [&mut a, &mut b] {
            for i in 0..2 {
                let got = side.clients.wait_for(received("from-emitter", i), T).await;
                assert_eq!(got["args"], json!([bin]));
            }
        }
    }
    eprintln!("{label}: {:?}", started.elapsed());
    let mut procs = vec![a.server, a.clients, b.server, b.clients];
    procs.extend(emitter);
    procs
}

#[tokio::test]
async fn classic_on_one_redis() {
    let redis = RedisServer::start().await;
    scenario("classic", vec!["--redis".into(), redis.url()], &["--mode", "classic"], true).await;
}

#[tokio::test]
async fn sharded_dynamic_on_one_redis() {
    let redis = RedisServer::start().await;
    let _running = scenario(
        "sharded/dynamic",
        vec!["--redis".into(), redis.url()],
        &["--mode", "sharded", "--subscription-mode", "dynamic"],
        false,
    )
    .await;
    // dynamic mode: room1 has its own shard channel, next to the main one and one
    // response channel per server
    let channels = redis.shard_channels("socket.io#*").await;
    assert!(channels.contains(&"socket.io#/#".to_owned()), "{channels:?}");
    assert!(channels.contains(&"socket.io#/#room1#".to_owned()), "{channels:?}");
    assert_eq!(channels.len(), 4, "{channels:?}");
}

#[tokio::test]
async fn sharded_dynamic_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3).await;
    let _running = scenario(
        "sharded/dynamic on a cluster",
        vec!["--cluster".into(), cluster.urls().join(",")],
        &["--mode", "sharded", "--subscription-mode", "dynamic"],
        false,
    )
    .await;
    assert_eq!(cluster.shardnumsub("socket.io#/#").await, 2);
    assert_eq!(cluster.shardnumsub("socket.io#/#room1#").await, 2);
}

#[tokio::test]
async fn classic_on_a_three_master_cluster() {
    let cluster = RedisCluster::start(3).await;
    let _running = scenario(
        "classic on a cluster",
        vec!["--cluster".into(), cluster.urls().join(",")],
        &["--mode", "classic"],
        true,
    )
    .await;
    assert_eq!(cluster.numsub("socket.io-request#/#").await, 2);
}
