//! The emitter's messages against the reference implementations, through a real Redis:
//! - classic: byte for byte what Node's `@socket.io/redis-emitter` 5.1 publishes for the
//!   same calls (captured with `PSUBSCRIBE *`);
//! - sharded: the same messages (as values: key order and uid aside) as a Node server
//!   with the sharded adapter publishes for the same broadcast or operation (captured
//!   with `SSUBSCRIBE`), on the same channels.
//!
//! Needs `redis-server` and the Node packages of `tests/js-redis` (`scripts/deps`, `npm ci
//! --prefix tests/js-redis`).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Capture, hex, run};
use serde_json::{Value, json};
use shoal_emitter::{Emitter, EmitterConfig, EmitterMode, SubscriptionMode};
use shoal_redis::wire;
use shoal_testkit::{NodeProcess, RedisServer};

fn classic_cases() -> Vec<Value> {
    let long = "x".repeat(40);
    let longer = "y".repeat(300);
    let many: Vec<Value> = (0..20).map(|i| json!(i * 1000)).collect();
    let wide: serde_json::Map<String, Value> = (0..17).map(|i| (format!("k{i}"), json!(i))).collect();
    vec![
        json!({"cmd": "emit", "event": "hello", "args": ["world"]}),
        json!({"cmd": "emit", "event": "noargs", "args": []}),
        json!({"cmd": "emit", "event": "numbers", "args": [42, -3, 1.5, 300, -200, 70000, 4294967296u64, 0, -0.5, -40000, -3000000000i64, 127, 128, 255, 256, 65535, 65536, -32, -33, -128, -129]}),
        json!({"cmd": "emit", "event": "object", "args": [{"a": 1, "b": [true, false, null, "x"], "c": {"d": 2.5, "e": {}}, "long": long}]}),
        json!({"cmd": "emit", "event": "strings", "args": ["", "héllo ✓ 😀", longer, long]}),
        json!({"cmd": "emit", "event": "containers", "args": [many, wide, [], {}]}),
        json!({"cmd": "emit", "event": "binary", "args": [{"$bin": "YXNkZmFzZGY="}]}),
        json!({"cmd": "emit", "event": "binaries", "args": ["x", {"file": {"$bin": "AQID"}, "name": "f"}, [{"$bin": ""}, {"$bin": "/w=="}]]}),
        json!({"cmd": "emit", "event": "room", "rooms": ["room1"], "args": [1]}),
        json!({"cmd": "emit", "event": "rooms", "rooms": ["a", "b"], "except": ["c"], "args": ["z"]}),
        json!({"cmd": "emit", "event": "dup", "rooms": ["a", "a"], "args": []}),
        json!({"cmd": "emit", "event": "except", "except": ["x", "y"], "args": []}),
        json!({"cmd": "emit", "event": "volatile", "volatile": true, "args": ["v"]}),
        json!({"cmd": "emit", "event": "compress", "compress": true, "args": []}),
        json!({"cmd": "emit", "event": "nocompress", "compress": false, "args": []}),
        json!({"cmd": "emit", "event": "both", "rooms": ["r"], "volatile": true, "compress": false, "args": []}),
        json!({"cmd": "emit", "event": "nsp", "nsp": "/chat", "args": ["c"]}),
        json!({"cmd": "emit", "event": "nsp2", "nsp": "chat", "rooms": ["r1"], "args": []}),
        json!({"cmd": "emit", "event": "sid", "rooms": ["abcdefghij0123456789"], "args": []}),
        json!({"cmd": "socketsJoin", "join": ["r2"]}),
        json!({"cmd": "socketsJoin", "rooms": ["r1"], "except": ["e"], "join": ["r2", "r3"]}),
        json!({"cmd": "socketsJoin", "nsp": "/chat", "join": "single"}),
        json!({"cmd": "socketsLeave", "rooms": ["r1", "r4"], "leave": ["r1", "r2"]}),
        json!({"cmd": "disconnectSockets", "close": false}),
        json!({"cmd": "disconnectSockets", "rooms": ["r1"], "except": ["r2"], "close": true}),
        json!({"cmd": "serverSideEmit", "event": "sse", "args": ["a", 1, {"b": [2, 2.5]}]}),
        json!({"cmd": "serverSideEmit", "event": "ssebin", "nsp": "/chat", "args": [{"$bin": "AQID"}, {"f": {"$bin": "/w=="}}]}),
        json!({"cmd": "serverSideEmit", "event": "sse0", "args": []}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_messages_are_byte_identical_to_node_emitter() {
    let redis = RedisServer::start().await;
    let mut capture = Capture::classic(&redis).await;
    let mut node = NodeProcess::spawn("emitter.mjs", &["--redis", &redis.url()]);
    node.wait_for_event("ready").await;
    let emitter = Emitter::connect(&redis.url(), EmitterConfig::default()).await.unwrap();

    let cases = classic_cases();
    for cmd in &cases {
        let published = node.call(cmd.clone()).await;
        let published = published["published"].as_array().unwrap();
        assert_eq!(published.len(), 1, "{cmd}: {published:?}");
        let (node_channel, node_bytes) = capture.next().await;
        assert_eq!(published[0]["channel"], json!(node_channel));

        run(&emitter, cmd).await;
        let (channel, bytes) = capture.next().await;
        assert_eq!(channel, node_channel, "{cmd}: channel");
        assert!(
            bytes == node_bytes,
            "{cmd}: payloads differ\n node: {}\n rust: {}\n node text: {}\n rust text: {}",
            hex(&node_bytes),
            hex(&bytes),
            String::from_utf8_lossy(&node_bytes),
            String::from_utf8_lossy(&bytes)
        );
    }

    // typed arguments: a struct with a `Bytes` field is what Node gets from an object
    // holding a Buffer
    #[derive(serde::Serialize)]
    struct File {
        name: &'static str,
        data: Bytes,
        size: f64,
    }
    let cmd = json!({"cmd": "emit", "event": "file", "rooms": ["r"],
        "args": [{"name": "a.bin", "data": {"$bin": "AAEC/w=="}, "size": 4}]});
    node.call(cmd).await;
    let (node_channel, node_bytes) = capture.next().await;
    let file = File { name: "a.bin", data: Bytes::from_static(&[0, 1, 2, 255]), size: 4.0 };
    emitter.clone().to("r").emit("file", &file).await.unwrap();
    let (channel, bytes) = capture.next().await;
    assert_eq!((channel, hex(&bytes)), (node_channel, hex(&node_bytes)));

    // the same for a server-side emit (JSON: Node renders the Buffer as an object)
    let cmd = json!({"cmd": "serverSideEmit", "event": "file",
        "args": [{"name": "a.bin", "data": {"$bin": "AAEC/w=="}, "size": 4}]});
    node.call(cmd).await;
    let (_, node_bytes) = capture.next().await;
    emitter.server_side_emit("file", &file).await.unwrap();
    let (_, bytes) = capture.next().await;
    assert_eq!(String::from_utf8_lossy(&bytes), String::from_utf8_lossy(&node_bytes));

    // nothing else was published by either
    assert_eq!(capture.drain(Duration::from_millis(200)).await, Vec::new());
    node.call(json!({"cmd": "close"})).await;
}

/// Decodes a sharded message (JSON or MessagePack) without its uid.
fn cluster_message(bytes: &[u8]) -> (Value, Vec<Bytes>) {
    let (mut v, attachments) = wire::decode_any(bytes).unwrap();
    let uid = v.as_object_mut().unwrap().remove("uid");
    assert!(uid.is_some(), "no uid in {v}");
    (v, attachments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharded_messages_match_node_sharded_adapter() {
    let redis = RedisServer::start().await;
    let channels = [
        "socket.io#/#",
        "socket.io#/#room1#",
        "socket.io#/#abcdefghij0123456789#",
        "socket.io#/chat#",
        "socket.io#/chat#r#",
    ];
    let mut capture = Capture::sharded(&redis, &channels).await;
    let mut server =
        NodeProcess::spawn("server.mjs", &["--redis", &redis.url(), "--mode", "sharded", "--nsp", "/chat"]);
    server.wait_for_event("listening").await;
    let emitter = Emitter::connect(
        &redis.url(),
        EmitterConfig::default().mode(EmitterMode::Sharded { subscription: SubscriptionMode::Dynamic }),
    )
    .await
    .unwrap();

    let cases = [
        json!({"cmd": "broadcast", "event": "hello", "args": ["world", 1, 2.5, {"a": [null, true]}]}),
        json!({"cmd": "broadcast", "event": "room", "rooms": ["room1"], "args": []}),
        json!({"cmd": "broadcast", "event": "sid", "rooms": ["abcdefghij0123456789"], "args": []}),
        json!({"cmd": "broadcast", "event": "many", "rooms": ["a", "b"], "except": ["c"], "volatile": true, "args": [1]}),
        json!({"cmd": "broadcast", "event": "nsp", "nsp": "/chat", "rooms": ["r"], "compress": false, "args": []}),
        json!({"cmd": "broadcast", "event": "binary", "args": [{"$bin": "AQID"}, {"f": {"$bin": "/w=="}}]}),
        json!({"cmd": "socketsJoin", "rooms": ["room1"], "except": ["x"], "join": ["r2"]}),
        json!({"cmd": "socketsLeave", "nsp": "/chat", "leave": ["r2", "r3"]}),
        json!({"cmd": "disconnectSockets", "rooms": ["room1"], "close": true}),
        json!({"cmd": "disconnectSockets", "close": false}),
        json!({"cmd": "serverSideEmit", "event": "sse", "args": ["a", {"b": 2}]}),
        json!({"cmd": "serverSideEmit", "event": "ssebin", "args": [{"$bin": "AQID"}]}),
    ];
    for cmd in &cases {
        server.call(cmd.clone()).await;
        let (node_channel, node_bytes) = capture.next().await;
        let rust_cmd = match cmd["cmd"].as_str() {
            Some("broadcast") => {
                let mut c = cmd.clone();
                c["cmd"] = json!("emit");
                c
            }
            _ => cmd.clone(),
        };
        run(&emitter, &rust_cmd).await;
        let (channel, bytes) = capture.next().await;
        assert_eq!(channel, node_channel, "{cmd}: channel");
        assert_eq!(bytes.first() == Some(&b'{'), node_bytes.first() == Some(&b'{'), "{cmd}: JSON vs MessagePack");
        let (mut node_msg, node_att) = cluster_message(&node_bytes);
        let (msg, att) = cluster_message(&bytes);
        // Node's broadcasts carry the packet without `nsp` (published before the local
        // broadcast sets it); tolerate it if a version adds it
        if let Some(p) = node_msg.pointer_mut("/data/packet").and_then(Value::as_object_mut) {
            p.remove("nsp");
        }
        assert_eq!(msg, node_msg, "{cmd}\n node: {}\n rust: {}", hex(&node_bytes), hex(&bytes));
        assert_eq!(att, node_att, "{cmd}: attachments");
    }
    assert_eq!(capture.drain(Duration::from_millis(200)).await, Vec::new());
    server.call(json!({"cmd": "close"})).await;
}
