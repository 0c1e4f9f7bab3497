//! A Shoal node answering crafted requests published straight to Redis, as a Node peer
//! (or an older adapter version) would send them: the exact bytes of its answers (JSON key
//! order and MessagePack layout as Node writes them), the legacy request forms, and
//! malformed or foreign messages that must be ignored without harm.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

#[path = "classic_support.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::{RedisServer, RespConnection};
use support::{Clients, Monitor, ShoalNode, T, decode, sorted, wait_until};

const REQ: &str = "socket.io-request#/#";

struct Peer {
    conn: RespConnection,
    responses: Monitor,
}

impl Peer {
    async fn publish(&mut self, channel: &str, payload: &[u8]) -> i64 {
        let r = self.conn.cmd(&[b"PUBLISH".as_slice(), channel.as_bytes(), payload]).await.unwrap();
        r.as_int().unwrap_or_else(|| panic!("PUBLISH answered {r}"))
    }

    /// The next answer on the common response channel whose `requestId` is `rid`.
    async fn answer(&mut self, rid: &str) -> Vec<u8> {
        let deadline = tokio::time::Instant::now() + T;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let (_, p) = self.responses.next(left).await.unwrap_or_else(|| panic!("no answer to {rid} within {T:?}"));
            if decode(&p)["requestId"] == rid {
                return p;
            }
        }
    }

    /// Nothing about `rid` arrives within a round trip (a later request is answered first).
    async fn no_answer(&mut self, rid: &str) {
        let probe = format!("probe-{rid}");
        let msg = json!({"uid": "peer01", "requestId": probe, "type": 1});
        self.publish(REQ, msg.to_string().as_bytes()).await;
        loop {
            let (_, p) = self.responses.next(T).await.expect("the probe is answered");
            let v = decode(&p);
            assert_ne!(v["requestId"], rid, "unexpected answer {v}");
            if v["requestId"] == probe.as_str() {
                return;
            }
        }
    }
}

async fn setup() -> (RedisServer, ShoalNode, Clients, Peer) {
    let redis = RedisServer::start().await;
    let node = ShoalNode::start("S", &redis.url(), &[]).await;
    node.wait_server_count("/", 1).await;
    let mut c = Clients::start().await;
    c.connect(&node.url(), "/", &[json!({"rooms": ["r1"], "data": {"k": 1}}), json!({"rooms": ["r2"]})]).await;
    wait_until("clients connected", || node.io.of("/").socket_count() == 2).await;
    let peer = Peer {
        conn: RespConnection::connect(redis.addr()).await.unwrap(),
        responses: Monitor::subscribe(redis.addr(), "socket.io-response#/#").await,
    };
    (redis, node, c, peer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_byte_compatible_with_node() {
    let started = Instant::now();
    let (_redis, node, mut c, mut p) = setup().await;
    let (id0, id1) = (c.ids[0].clone(), c.ids[1].clone());

    // ALL_ROOMS: {"requestId","rooms"}
    p.publish(REQ, br#"{"uid":"peer01","requestId":"rq1","type":1}"#).await;
    let a = p.answer("rq1").await;
    let v: Value = serde_json::from_slice(&a).unwrap();
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["requestId", "rooms"]);
    let rooms: Vec<&str> = v["rooms"].as_array().unwrap().iter().map(|r| r.as_str().unwrap()).collect();
    assert_eq!(sorted(rooms), sorted(["r1", "r2", id0.as_str(), id1.as_str()]));

    // legacy SOCKETS (type 0): {"requestId","sockets":[ids]}
    p.publish(REQ, br#"{"uid":"peer01","requestId":"rq0","type":0,"rooms":["r1"]}"#).await;
    assert_eq!(p.answer("rq0").await, format!(r#"{{"requestId":"rq0","sockets":["{id0}"]}}"#).into_bytes());

    // REMOTE_FETCH: {"requestId","sockets":[{"id","handshake","rooms","data"}]}
    p.publish(REQ, br#"{"uid":"peer01","requestId":"rq5","type":5,"opts":{"rooms":["r1"],"except":[]}}"#).await;
    let v: Value = serde_json::from_slice(&p.answer("rq5").await).unwrap();
    assert_eq!(v.as_object().unwrap().keys().collect::<Vec<_>>(), ["requestId", "sockets"]);
    let s = &v["sockets"][0];
    assert_eq!(s.as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "handshake", "rooms", "data"]);
    assert_eq!(
        (s["id"].as_str(), s["rooms"].clone(), s["data"].clone()),
        (Some(id0.as_str()), json!([id0, "r1"]), json!({"k": 1}))
    );

    // SERVER_SIDE_EMIT with ack: {"type":6,"requestId","data":<first ack argument>}, once
    p.publish(REQ, br#"{"uid":"peer01","requestId":"rq6","type":6,"data":["sse-ack",1,{"x":2}]}"#).await;
    assert_eq!(p.answer("rq6").await, br#"{"type":6,"requestId":"rq6","data":"S"}"#.to_vec());
    let got = node.events.wait("/", "sse-ack", 1).await;
    assert_eq!(got[0].args, vec![json!(1), json!({"x": 2})]);
    p.no_answer("rq6").await;
    // without ack, and from the emitter
    p.publish(REQ, br#"{"uid":"emitter","type":6,"data":["sse",true]}"#).await;
    assert_eq!(node.events.wait("/", "sse", 1).await[0].args, vec![json!(true)]);

    // BROADCAST with ack (MessagePack request): type 8 (JSON) then one type 9 (MessagePack)
    // per client answer
    let req = rmpv_map(&[
        ("uid", mp_str("peer01")),
        ("requestId", mp_str("rq7")),
        ("type", 7.into()),
        (
            "packet",
            rmpv_map(&[
                ("type", 2.into()),
                ("data", rmpv::Value::Array(vec![mp_str("ask"), 1.into()])),
                ("nsp", mp_str("/")),
            ]),
        ),
        (
            "opts",
            rmpv_map(&[
                ("rooms", rmpv::Value::Array(vec![])),
                ("except", rmpv::Value::Array(vec![])),
                ("flags", rmpv_map(&[("timeout", 3000.into())])),
            ]),
        ),
    ]);
    p.publish(REQ, &shoal_redis::wire::mp_encode(&req)).await;
    assert_eq!(p.answer("rq7").await, br#"{"type":8,"requestId":"rq7","clientCount":2}"#.to_vec());
    let mut acks = vec![p.answer("rq7").await, p.answer("rq7").await];
    acks.sort();
    // notepack: {type: 9, requestId: "rq7", packet: <index>}
    let expected = |i: u8| -> Vec<u8> {
        let mut v = vec![0x83, 0xa4];
        v.extend_from_slice(b"type");
        v.extend_from_slice(&[0x09, 0xa9]);
        v.extend_from_slice(b"requestId");
        v.push(0xa3);
        v.extend_from_slice(b"rq7");
        v.push(0xa6);
        v.extend_from_slice(b"packet");
        v.push(i);
        v
    };
    assert_eq!(acks, vec![expected(0), expected(1)], "{:02x?}", acks);
    // a broadcast with ack matching no client: a count of 0 at once, nothing else
    let mut req0 = req.clone();
    if let rmpv::Value::Map(m) = &mut req0 {
        m[1].1 = mp_str("rq70");
        m[4].1 =
            rmpv_map(&[("rooms", rmpv::Value::Array(vec![mp_str("nobody")])), ("except", rmpv::Value::Array(vec![]))]);
    }
    p.publish(REQ, &shoal_redis::wire::mp_encode(&req0)).await;
    assert_eq!(p.answer("rq70").await, br#"{"type":8,"requestId":"rq70","clientCount":0}"#.to_vec());
    p.no_answer("rq70").await;
    c.p.assert_none(|v| v["event"] == "disconnected", Duration::from_millis(10)).await;
    eprintln!("answers_are_byte_compatible_with_node: {:?}", started.elapsed());
}

fn mp_str(s: &str) -> rmpv::Value {
    rmpv::Value::from(s)
}

fn rmpv_map(kv: &[(&str, rmpv::Value)]) -> rmpv::Value {
    rmpv::Value::Map(kv.iter().map(|(k, v)| (mp_str(k), v.clone())).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_requests_are_applied() {
    let (_redis, node, mut c, mut p) = setup().await;
    let id1 = c.ids[1].clone();
    let join = json!({"requestId": "lj", "type": 2, "sid": id1, "room": "legacy"});
    p.publish(REQ, join.to_string().as_bytes()).await;
    assert_eq!(p.answer("lj").await, br#"{"requestId":"lj"}"#.to_vec());
    assert_eq!(node.rooms_of("/", &id1), Some(vec!["legacy".into(), "r2".into()]));
    let leave = json!({"requestId": "ll", "type": 3, "sid": id1, "room": "legacy"});
    p.publish(REQ, leave.to_string().as_bytes()).await;
    assert_eq!(p.answer("ll").await, br#"{"requestId":"ll"}"#.to_vec());
    assert_eq!(node.rooms_of("/", &id1), Some(vec!["r2".into()]));
    let disconnect = json!({"requestId": "ld", "type": 4, "sid": id1, "close": false});
    p.publish(REQ, disconnect.to_string().as_bytes()).await;
    assert_eq!(p.answer("ld").await, br#"{"requestId":"ld"}"#.to_vec());
    assert_eq!(c.disconnected(1).await, "io server disconnect");
}

/// Node answers a legacy join/leave/disconnect only on the node that has the socket (the
/// requester resolves on the first answer); any other node stays silent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_requests_for_a_socket_elsewhere_are_not_answered() {
    let (_redis, _node, _c, mut p) = setup().await;
    for (rid, ty) in [("lj2", 2), ("ll2", 3)] {
        let msg = json!({"requestId": rid, "type": ty, "sid": "AAAAAAAAAAAAAAAAAAAA", "room": "x"});
        p.publish(REQ, msg.to_string().as_bytes()).await;
        p.no_answer(rid).await;
    }
    let msg = json!({"requestId": "ld2", "type": 4, "sid": "AAAAAAAAAAAAAAAAAAAA", "close": false});
    p.publish(REQ, msg.to_string().as_bytes()).await;
    p.no_answer("ld2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_messages_are_ignored() {
    let (redis, node, mut c, mut p) = setup().await;
    let packet = |nsp: Option<&str>, ev: &str| {
        let mut m = vec![("type", 2.into()), ("data", rmpv::Value::Array(vec![mp_str(ev)]))];
        if let Some(n) = nsp {
            m.push(("nsp", mp_str(n)));
        }
        rmpv_map(&m)
    };
    let opts = rmpv_map(&[("rooms", rmpv::Value::Array(vec![])), ("except", rmpv::Value::Array(vec![]))]);
    let bc = |uid: &str, pk: rmpv::Value| {
        shoal_redis::wire::mp_encode(&rmpv::Value::Array(vec![mp_str(uid), pk, opts.clone()]))
    };
    let garbage: [&[u8]; 8] = [
        b"",
        b"\xc1",
        b"\x92\xa1a\xa1b",
        b"\xdd\xff\xff\xff\xff",
        b"{not json",
        b"[1,2,3]",
        b"\x93\xa1u\xc0\xc0",
        b"\x93\xa1u\x81\xa4data\xa1x\x80",
    ];
    for g in garbage {
        p.publish("socket.io#/#", g).await;
        p.publish("socket.io#/#r1#", g).await;
        p.publish(REQ, g).await;
        p.publish("socket.io-response#/#", g).await;
    }
    for g in [
        &br#"{"type":99,"uid":"x","requestId":"u1"}"#[..],
        br#"{"type":"1","requestId":"u2"}"#,
        br#"{"type":5,"uid":"x"}"#,
        br#"{"type":1}"#,
        br#"{"type":6,"uid":"x","data":"not an array"}"#,
        br#"{"type":2,"rooms":"not an array"}"#,
        br#"{"requestId":"nobody-asked","sockets":[]}"#,
    ] {
        p.publish(REQ, g).await;
    }
    for g in [&br#"{"requestId":"nobody-asked","sockets":[]}"#[..], br#"{"type":8,"requestId":"x","clientCount":"y"}"#]
    {
        p.publish("socket.io-response#/#", g).await;
    }
    // another namespace in the packet, on this namespace's channel: ignored
    p.publish("socket.io#/#", &bc("peer01", packet(Some("/other"), "wrong-nsp"))).await;
    // no nsp (old emitters): this namespace
    p.publish("socket.io#/#", &bc("peer01", packet(None, "no-nsp"))).await;
    // another key's channel is not even subscribed
    assert_eq!(p.publish("other#/#", &bc("peer01", packet(Some("/"), "other-key"))).await, 0);
    p.publish("socket.io#/#", &bc("peer01", packet(Some("/"), "after"))).await;
    for i in [0, 1] {
        c.received("no-nsp", i).await;
        c.received("after", i).await;
    }
    assert!(c.take_counts("wrong-nsp").is_empty());
    // the node still works
    assert_eq!(node.io.of("/").fetch_sockets().await.unwrap().len(), 2);
    assert_eq!(node.io.of("/").server_count().await.unwrap(), 1);
    assert_eq!(redis.numsub(REQ).await, 1);
    assert!(node.events.all().is_empty(), "{:?}", node.events.all());
    p.no_answer("u1").await;
}
