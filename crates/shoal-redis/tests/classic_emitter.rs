//! Node's `@socket.io/redis-emitter` 5.1 (`tests/js-redis/emitter.mjs`) reaches the clients
//! of two Shoal nodes through the classic adapter: emit to all, to a room (the room's own
//! channel), to several rooms, except, to a socket id, binary arguments, volatile, another
//! namespace, socketsJoin/socketsLeave, disconnectSockets and serverSideEmit.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

#[path = "classic_support.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::{NodeProcess, RedisServer};
use support::{Clients, ShoalNode, once, wait_until};

const ALL: [usize; 4] = [0, 1, 2, 3];

/// Every PUBLISH an emitter command caused: `[(channel, receivers)]`.
fn published(r: &Value) -> Vec<(String, i64)> {
    r["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["channel"].as_str().unwrap().to_owned(), p["receivers"].as_i64().unwrap()))
        .collect()
}

fn has_room(node: &ShoalNode, id: &str, room: &str) -> bool {
    node.rooms_of("/", id).is_some_and(|r| r.iter().any(|x| x == room))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_emitter_reaches_shoal_clients() {
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let url = redis.url();
    let s1 = ShoalNode::start("S1", &url, &["/chat"]).await;
    let s2 = ShoalNode::start("S2", &url, &["/chat"]).await;
    support::wait_server_counts(&[&s1, &s2], "/", 2).await;
    support::wait_server_counts(&[&s1, &s2], "/chat", 2).await;
    let mut em = NodeProcess::spawn("emitter.mjs", &["--redis", &url]);
    em.wait_for_event("ready").await;
    let mut c = Clients::start().await;
    c.connect(&s1.url(), "/", &[json!({"rooms": ["r1"]}), json!({"rooms": ["r2"]})]).await;
    c.connect(&s2.url(), "/", &[json!({"rooms": ["r1", "r3"]}), json!({})]).await;
    c.connect(&s2.url(), "/chat", &[json!({})]).await;
    for node in [&s1, &s2] {
        wait_until("clients connected", || node.io.of("/").socket_count() == 2).await;
    }
    let ids = c.ids.clone();
    let bin = json!({"$bin": "AAEC/w=="});

    let r = em.call(json!({"cmd": "emit", "event": "e-all", "args": [1, "2", [3], {"four": 4}]})).await;
    assert_eq!(published(&r), vec![("socket.io#/#".to_owned(), 2)], "both nodes PSUBSCRIBE socket.io#/#*");
    let r = em.call(json!({"cmd": "emit", "event": "e-room", "rooms": ["r1"]})).await;
    assert_eq!(published(&r), vec![("socket.io#/#r1#".to_owned(), 2)], "one room: the room channel");
    em.call(json!({"cmd": "emit", "event": "e-rooms", "rooms": ["r1", "r2"]})).await;
    em.call(json!({"cmd": "emit", "event": "e-except", "except": ["r1"]})).await;
    em.call(json!({"cmd": "emit", "event": "e-room-except", "rooms": ["r1"], "except": ["r3"]})).await;
    em.call(json!({"cmd": "emit", "event": "e-socket", "rooms": [ids[3].clone()]})).await;
    s1.socket("/", &ids[1]).unwrap().join("42");
    let r = em.call(json!({"cmd": "emit", "event": "e-numeric", "rooms": [42]})).await;
    assert_eq!(published(&r), vec![("socket.io#/#42#".to_owned(), 2)]);
    em.call(json!({"cmd": "emit", "event": "e-bin", "args": [bin, {"nested": bin, "s": "x"}]})).await;
    em.call(json!({"cmd": "emit", "nsp": "/chat", "event": "e-chat", "args": ["c"]})).await;
    em.call(json!({"cmd": "emit", "nsp": "chat", "event": "e-chat2"})).await;
    em.call(json!({"cmd": "emit", "event": "e-fence"})).await;
    c.all_received("e-fence", &ALL).await;
    em.call(json!({"cmd": "emit", "nsp": "/chat", "event": "e-fence"})).await;
    c.received("e-fence", 4).await;

    for i in ALL {
        let got = c.p.take_matching(|v| v["event"] == "received" && v["name"] == "e-all" && v["index"] == i);
        assert_eq!(got.len(), 1, "client {i}: {got:?}");
        assert_eq!(got[0]["args"], json!([1, "2", [3], {"four": 4}]));
    }
    assert_eq!(c.take_counts("e-room"), once(&[0, 2]));
    assert_eq!(c.take_counts("e-rooms"), once(&[0, 1, 2]));
    assert_eq!(c.take_counts("e-except"), once(&[1, 3]));
    assert_eq!(c.take_counts("e-room-except"), once(&[0]));
    assert_eq!(c.take_counts("e-socket"), once(&[3]));
    assert_eq!(c.take_counts("e-numeric"), once(&[1]), "numeric room (MessagePack integer)");
    assert_eq!(c.take_counts("e-chat"), once(&[4]));
    assert_eq!(c.take_counts("e-chat2"), once(&[4]), "a missing leading / is added");
    let bins = c.p.take_matching(|v| v["event"] == "received" && v["name"] == "e-bin");
    assert_eq!(bins.len(), 4);
    for b in bins {
        assert_eq!(b["args"], json!([bin, {"nested": bin, "s": "x"}]));
    }
    // volatile, once the queues are empty
    em.call(json!({"cmd": "emit", "event": "e-volatile", "volatile": true})).await;
    em.call(json!({"cmd": "emit", "event": "e-fence2"})).await;
    c.all_received("e-fence2", &ALL).await;
    assert_eq!(c.take_counts("e-volatile"), once(&ALL));

    // socketsJoin / socketsLeave (JSON requests without uid)
    let r = em.call(json!({"cmd": "socketsJoin", "rooms": ["r1"], "join": ["ej"]})).await;
    assert_eq!(published(&r), vec![("socket.io-request#/#".to_owned(), 2)]);
    wait_until("r1 members join ej", || has_room(&s1, &ids[0], "ej") && has_room(&s2, &ids[2], "ej")).await;
    em.call(json!({"cmd": "socketsJoin", "join": ["everyone", "e2"]})).await;
    wait_until("everyone joins", || {
        has_room(&s1, &ids[0], "e2")
            && has_room(&s1, &ids[1], "e2")
            && has_room(&s2, &ids[2], "e2")
            && has_room(&s2, &ids[3], "everyone")
    })
    .await;
    em.call(json!({"cmd": "socketsLeave", "rooms": ["ej"], "except": [ids[2].clone()], "leave": ["ej", "e2"]})).await;
    wait_until("0 leaves ej and e2", || !has_room(&s1, &ids[0], "ej") && !has_room(&s1, &ids[0], "e2")).await;
    assert!(has_room(&s2, &ids[2], "ej") && has_room(&s2, &ids[2], "e2"), "excepted socket keeps its rooms");
    assert!(!has_room(&s1, &ids[1], "ej") && has_room(&s1, &ids[1], "e2"), "not targeted");
    assert_eq!(s1.rooms_of("/", &ids[1]), Some(vec!["42".into(), "e2".into(), "everyone".into(), "r2".into()]));

    // serverSideEmit (uid "emitter"): every node, once
    let r = em.call(json!({"cmd": "serverSideEmit", "event": "sse", "args": [1, {"x": [2]}]})).await;
    assert_eq!(published(&r), vec![("socket.io-request#/#".to_owned(), 2)]);
    for node in [&s1, &s2] {
        let got = node.events.wait("/", "sse", 1).await;
        assert_eq!(got[0].args, vec![json!(1), json!({"x": [2]})], "{}", node.name);
    }
    em.call(json!({"cmd": "serverSideEmit", "event": "fence"})).await;
    for node in [&s1, &s2] {
        node.events.wait("/", "fence", 1).await;
        assert_eq!(node.events.named("/", "sse").len(), 1, "{}: once", node.name);
    }

    // disconnectSockets: a room (without close), a socket id (with close)
    em.call(json!({"cmd": "disconnectSockets", "rooms": ["r2"], "close": false})).await;
    assert_eq!(c.disconnected(1).await, "io server disconnect");
    em.call(json!({"cmd": "disconnectSockets", "rooms": [ids[3].clone()], "close": true})).await;
    assert_eq!(c.disconnected(3).await, "io server disconnect");
    wait_until("S1 keeps 1 socket", || s1.io.of("/").socket_count() == 1).await;
    wait_until("S2 keeps 1 socket", || s2.io.of("/").socket_count() == 1).await;
    em.call(json!({"cmd": "disconnectSockets", "close": false})).await;
    for i in [0, 2] {
        assert_eq!(c.disconnected(i).await, "io server disconnect");
    }
    wait_until("no socket left in /", || s1.io.of("/").socket_count() + s2.io.of("/").socket_count() == 0).await;
    assert_eq!(s2.io.of("/chat").socket_count(), 1, "/chat is another namespace");
    c.p.assert_none(|v| v["event"] == "disconnected", Duration::from_millis(200)).await;
    eprintln!("redis_emitter_reaches_shoal_clients: {:?}", started.elapsed());
}
