//! Shoal nodes and Node.js socket.io servers (`@socket.io/redis-adapter` 8.3
//! `createShardedAdapter`) in one cluster on one Redis, with official clients: every
//! operation in both directions, and the bytes each side publishes compared.

#[path = "sharded_support.rs"]
mod support;

use serde_json::json;
use shoal::Args;
use shoal_redis::SubscriptionMode;
use shoal_redis::cluster_wire::{self, Body};
use support::{Broker, NodeServer, PublishMonitor, ShoalNode, T, bin, mixed_cluster_scenario};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_cluster_dynamic() {
    let broker = Broker::single().await;
    mixed_cluster_scenario(&broker, SubscriptionMode::Dynamic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_cluster_static() {
    let broker = Broker::single().await;
    mixed_cluster_scenario(&broker, SubscriptionMode::Static).await;
}

/// Node in `dynamic-private` sends a broadcast to one socket id through that socket's
/// own channel, which a Shoal node cannot subscribe: Shoal's server reports no room
/// event for a socket's own room (`NsInner::join` skips it), so the adapter never learns
/// when a socket-id room appears. Needs `on_room_created`/`on_room_deleted` for the
/// socket's own room in shoal's namespace code.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn mixed_cluster_dynamic_private() {
    let broker = Broker::single().await;
    mixed_cluster_scenario(&broker, SubscriptionMode::DynamicPrivate).await;
}

/// The message with its sender uid and request id replaced by fixed text (both are 16
/// hex characters), for comparing what Node and Shoal publish.
fn normalized(payload: &[u8]) -> (Vec<u8>, Option<String>) {
    let msg = cluster_wire::decode(payload).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(payload)));
    let mut out = payload.to_vec();
    let mut replace = |what: &str, with: &[u8; 16]| {
        let what = what.as_bytes();
        assert_eq!(what.len(), 16, "{:?}", String::from_utf8_lossy(what));
        let mut i = 0;
        while i + 16 <= out.len() {
            if &out[i..i + 16] == what {
                out[i..i + 16].copy_from_slice(with);
                i += 16;
            } else {
                i += 1;
            }
        }
    };
    let uid = msg.uid.clone().expect("a uid");
    replace(&uid, b"UUUUUUUUUUUUUUUU");
    let rid = match &msg.body {
        Body::Broadcast { request_id, .. } | Body::ServerSideEmit { request_id, .. } => request_id.clone(),
        Body::FetchSockets { request_id, .. }
        | Body::FetchSocketsResponse { request_id, .. }
        | Body::BroadcastClientCount { request_id, .. }
        | Body::ServerSideEmitResponse { request_id, .. } => Some(request_id.clone()),
        _ => None,
    };
    if let Some(r) = &rid {
        replace(r, b"RRRRRRRRRRRRRRRR");
    }
    (out, Some(uid))
}

fn show(b: &[u8]) -> String {
    if b.first() == Some(&b'{') {
        String::from_utf8_lossy(b).into_owned()
    } else {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }
}

fn same(what: &str, node: &[u8], shoal: &[u8]) {
    let (n, _) = normalized(node);
    let (s, _) = normalized(shoal);
    assert_eq!(show(&s), show(&n), "{what}: Shoal's bytes (left) differ from Node's (right)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn published_bytes_match_node() {
    let broker = Broker::single().await;
    let a = ShoalNode::start("A", &broker.shoal_url(), SubscriptionMode::Dynamic, &[]).await;
    let mut n = NodeServer::start("N", &broker, SubscriptionMode::Dynamic, &[]).await;
    a.wait_server_count("/", 2).await;
    let Broker::Single(redis) = &broker else { unreachable!() };
    let mut mon = PublishMonitor::start(redis).await;
    const MAIN: &str = "socket.io#/#";
    let ns = a.io.of("/");

    // broadcast to everyone
    n.call(json!({"cmd": "broadcast", "event": "hello", "args": ["world"]})).await;
    let nb = mon.expect(MAIN).await;
    ns.emit_args("hello", Args::from_values(vec![json!("world")])).unwrap();
    let sb = mon.expect(MAIN).await;
    same("broadcast", &nb, &sb);
    let shoal_uid = normalized(&sb).1.unwrap();
    assert_eq!(shoal_uid.len(), 16);
    let to_node = format!("socket.io#/#{}#", n.uid);
    let to_shoal = format!("socket.io#/#{shoal_uid}#");
    assert!(shoal_uid.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    assert_eq!(
        std::str::from_utf8(&sb).unwrap(),
        format!(
            r#"{{"type":3,"data":{{"packet":{{"type":2,"data":["hello","world"]}},"opts":{{"rooms":[],"except":[],"flags":{{}}}}}},"uid":"{shoal_uid}","nsp":"/"}}"#
        )
    );

    // two rooms, except, volatile, compress
    n.call(json!({"cmd": "broadcast", "event": "e", "args": [1, {"k": null}], "rooms": ["r1", "r2"],
                  "except": ["x"], "volatile": true, "compress": false}))
        .await;
    let nb = mon.expect(MAIN).await;
    ns.to("r1")
        .to("r2")
        .except("x")
        .volatile()
        .compress(false)
        .emit_args("e", Args::from_values(vec![json!(1), json!({"k": null})]))
        .unwrap();
    same("broadcast with options", &nb, &mon.expect(MAIN).await);

    // binary: MessagePack of the whole message
    n.call(json!({"cmd": "broadcast", "event": "bin", "args": [bin(&[0, 1, 255])]})).await;
    let nb = mon.expect(MAIN).await;
    assert_ne!(nb[0], b'{');
    ns.emit("bin", &bytes::Bytes::from_static(&[0, 1, 255])).unwrap();
    same("binary broadcast", &nb, &mon.expect(MAIN).await);

    // one room: its own channel
    n.call(json!({"cmd": "broadcast", "event": "r", "args": [], "rooms": ["r1"]})).await;
    let nb = mon.expect("socket.io#/#r1#").await;
    ns.to("r1").emit_args("r", Args::default()).unwrap();
    let sb = mon.expect("socket.io#/#r1#").await;
    same("room broadcast", &nb, &sb);

    // joins, leaves, disconnects, fetch
    n.call(json!({"cmd": "socketsJoin", "rooms": ["a"], "except": ["b"], "join": ["x", "y"]})).await;
    let nb = mon.expect(MAIN).await;
    ns.to("a").except("b").sockets_join(["x", "y"]).await.unwrap();
    same("sockets join", &nb, &mon.expect(MAIN).await);
    n.call(json!({"cmd": "socketsLeave", "leave": ["x"]})).await;
    let nb = mon.expect(MAIN).await;
    ns.sockets_leave(["x"]).await.unwrap();
    same("sockets leave", &nb, &mon.expect(MAIN).await);
    n.call(json!({"cmd": "disconnectSockets", "rooms": ["zz"], "close": true})).await;
    let nb = mon.expect(MAIN).await;
    ns.to("zz").disconnect_sockets(true).await.unwrap();
    same("disconnect sockets", &nb, &mon.expect(MAIN).await);
    n.call(json!({"cmd": "fetchSockets", "rooms": ["zz"]})).await;
    let nb = mon.expect(MAIN).await;
    assert!(ns.to("zz").fetch_sockets().await.unwrap().is_empty());
    same("fetch sockets", &nb, &mon.expect(MAIN).await);
    let node_answer = mon.expect(&to_shoal).await;
    let shoal_answer = mon.expect(&to_node).await;
    same("fetch sockets response", &node_answer, &shoal_answer);

    // server-side emits
    n.call(json!({"cmd": "serverSideEmit", "event": "sse", "args": [{"k": 1}]})).await;
    let nb = mon.expect(MAIN).await;
    ns.server_side_emit("sse", &json!({"k": 1})).unwrap();
    same("server-side emit", &nb, &mon.expect(MAIN).await);

    // requests with ids, and the answers each side sends the other
    n.call(json!({"cmd": "broadcastWithAck", "event": "ack", "args": [], "timeout": 2000})).await;
    let nb = mon.expect(MAIN).await;
    let shoal_count = mon.expect(&to_node).await;
    ns.timeout(std::time::Duration::from_millis(2000)).emit_args_with_ack("ack", Args::default()).await.unwrap();
    let sb = mon.expect(MAIN).await;
    let node_count = mon.expect(&to_shoal).await;
    same("broadcast with ack", &nb, &sb);
    same("client count", &node_count, &shoal_count);

    n.call(json!({"cmd": "serverSideEmitWithAck", "event": "sse-ack", "args": ["q"]})).await;
    let nb = mon.expect(MAIN).await;
    let shoal_answer = mon.expect(&to_node).await;
    let r = ns.server_side_emit_with_ack("sse-ack", &"q", T).await.unwrap();
    assert_eq!(r[0].args.values, vec![json!("N")]);
    let sb = mon.expect(MAIN).await;
    let node_answer = mon.expect(&to_shoal).await;
    same("server-side emit with ack", &nb, &sb);
    // the answers differ only by the name the node answers with ("A" / "N")
    let (na, _) = normalized(&node_answer);
    let (sa, _) = normalized(&shoal_answer);
    assert_eq!(String::from_utf8(sa).unwrap().replace("\"A\"", "\"N\""), String::from_utf8(na).unwrap());
}
