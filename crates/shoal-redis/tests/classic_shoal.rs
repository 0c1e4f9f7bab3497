//! Three Shoal nodes sharing one Redis through the classic adapter, with official
//! socket.io clients on each: broadcasts (all, one room, several rooms, except, volatile,
//! local, binary) reach every client exactly once; acknowledgements are collected across
//! nodes; fetch sockets, remote join/leave/disconnect, server-side emits, all rooms and
//! the server count work across nodes.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

#[path = "classic_support.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};
use shoal::{Args, BroadcastAckError};
use shoal_core::AdapterError;
use shoal_testkit::RedisServer;
use support::{Clients, Monitor, ShoalNode, broadcast_event, decode, describe, once, sorted, wait_until};

/// Clients: 0..3 on A, 3..6 on B, 6..8 on C (namespace `/`), 8 on B in `/chat`.
fn auths() -> Vec<Value> {
    vec![
        json!({"rooms": ["r1", "r2", "ra"], "data": {"user": "a0"}}),
        json!({"rooms": ["r2"], "data": {"user": "a1", "n": 1}}),
        json!({}),
        json!({"rooms": ["r1"], "data": {"user": "b0"}}),
        json!({"rooms": ["r2", "x"], "data": {"user": "b1"}}),
        json!({}),
        json!({"rooms": ["r1", "x"], "data": {"user": "c0"}}),
        json!({"data": ["c1"]}),
    ]
}

const ALL: [usize; 8] = [0, 1, 2, 3, 4, 5, 6, 7];

struct Three {
    redis: RedisServer,
    n: Vec<ShoalNode>,
    c: Clients,
}

impl Three {
    fn id(&self, index: usize) -> String {
        self.c.ids[index].clone()
    }

    /// A fence: every node broadcasts `fence` to `/`; once every client got the three,
    /// everything any node broadcast before has been delivered (Redis keeps the order of
    /// one publisher, each client connection is FIFO).
    async fn fence(&mut self) {
        for node in &self.n {
            node.io.emit("fence", &node.name).unwrap();
        }
        for i in ALL {
            for _ in 0..3 {
                self.c.received("fence", i).await;
            }
        }
    }
}

async fn three() -> Three {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut n = Vec::new();
    for name in ["A", "B", "C"] {
        n.push(ShoalNode::start(name, &url, &["/chat"]).await);
    }
    let refs: Vec<&ShoalNode> = n.iter().collect();
    support::wait_server_counts(&refs, "/", 3).await;
    support::wait_server_counts(&refs, "/chat", 3).await;
    let mut c = Clients::start().await;
    let auths = auths();
    c.connect(&n[0].url(), "/", &auths[0..3]).await;
    c.connect(&n[1].url(), "/", &auths[3..6]).await;
    c.connect(&n[2].url(), "/", &auths[6..8]).await;
    c.connect(&n[1].url(), "/chat", &[json!({})]).await;
    for (node, count) in n.iter().zip([3, 3, 2]) {
        wait_until("clients connected", || node.io.of("/").socket_count() == count).await;
    }
    Three { redis, n, c }
}

fn placeholder(num: usize) -> Value {
    json!({"_placeholder": true, "num": num})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_every_node_exactly_once() {
    let started = Instant::now();
    let mut s = three().await;
    let mut mon = Monitor::psubscribe(s.redis.addr(), "socket.io#/#*").await;

    for (k, node) in s.n.iter().enumerate() {
        node.io.emit(&format!("all-{k}"), &k).unwrap();
    }
    s.n[0].io.to("r1").emit("room", &"r1").unwrap();
    s.n[1].io.of("/").to("r1").to("r2").emit("rooms", &"r1+r2").unwrap();
    s.n[2].io.of("/").except("x").emit("except", &"x").unwrap();
    s.n[0].io.of("/").to("r1").except("x").emit("room-except", &1).unwrap();
    s.n[1].io.of("/").local().emit("local", &3).unwrap();
    let bin = Args {
        values: vec![json!("text"), placeholder(0), json!({"nested": placeholder(1), "n": 1.5})],
        attachments: vec![Bytes::from_static(&[0, 1, 2, 255]), Bytes::from_static(b"hello")],
    };
    s.n[2].io.of("/").emit_args("bin", bin).unwrap();
    s.n[0].io.of("/chat").emit("chat", &"only /chat").unwrap();
    s.n[0].io.of("/chat").emit("chat-fence", &0).unwrap();
    s.fence().await;
    s.c.received("chat-fence", 8).await;
    // volatile: a packet is dropped for a client whose connection is busy writing (as in
    // Node), so it goes once every queue is empty, followed by a fence from the same node
    // only (a fence from another node could be queued first and make it drop)
    s.n[1].io.of("/").volatile().emit("volatile", &2).unwrap();
    s.n[1].io.of("/").emit("fence", &"B").unwrap();
    s.c.all_received("fence", &ALL).await;

    for k in 0..3 {
        assert_eq!(s.c.take_counts(&format!("all-{k}")), once(&ALL), "broadcast to all from node {k}");
    }
    assert_eq!(s.c.take_counts("room"), once(&[0, 3, 6]), "to(r1)");
    assert_eq!(s.c.take_counts("rooms"), once(&[0, 1, 3, 4, 6]), "to(r1).to(r2): each member once");
    assert_eq!(s.c.take_counts("except"), once(&[0, 1, 2, 3, 5, 7]), "except(x)");
    assert_eq!(s.c.take_counts("room-except"), once(&[0, 3]), "to(r1).except(x)");
    assert_eq!(s.c.take_counts("volatile"), once(&ALL), "volatile");
    assert_eq!(s.c.take_counts("local"), once(&[3, 4, 5]), "local() stays on B");
    assert_eq!(s.c.take_counts("chat"), once(&[8]), "/chat broadcast reaches /chat only");
    let bins = s.c.p.take_matching(|v| v["event"] == "received" && v["name"] == "bin");
    assert_eq!(bins.len(), 8, "binary broadcast: {bins:?}");
    for b in &bins {
        assert_eq!(
            b["args"],
            json!(["text", {"$bin": "AAEC/w=="}, {"nested": {"$bin": "aGVsbG8="}, "n": 1.5}]),
            "binary arguments arrive as binary"
        );
    }

    // what went over Redis: one publish per broadcast, on the room channel for one room
    let mut fences = 0;
    let msgs = mon
        .until(|_, p| {
            fences += usize::from(broadcast_event(p).as_deref() == Some("fence"));
            fences == 4
        })
        .await;
    let mut by_event: BTreeMap<String, Vec<(String, Value)>> = BTreeMap::new();
    for (c, p) in &msgs {
        by_event.entry(broadcast_event(p).unwrap_or_default()).or_default().push((c.clone(), decode(p)));
    }
    let channel_of = |ev: &str| -> String {
        let v = by_event.get(ev).unwrap_or_else(|| panic!("{ev} was not published: {:?}", describe(&msgs)));
        assert_eq!(v.len(), 1, "{ev} published once: {v:?}");
        v[0].0.clone()
    };
    assert_eq!(channel_of("all-0"), "socket.io#/#");
    assert_eq!(channel_of("room"), "socket.io#/#r1#", "one room: the room's channel");
    assert_eq!(channel_of("rooms"), "socket.io#/#", "several rooms: the main channel");
    assert_eq!(channel_of("except"), "socket.io#/#");
    assert_eq!(channel_of("room-except"), "socket.io#/#r1#");
    assert_eq!(channel_of("volatile"), "socket.io#/#");
    assert_eq!(channel_of("bin"), "socket.io#/#");
    assert!(!by_event.contains_key("local"), "local() must not be published");
    let room = &by_event["room"][0].1;
    assert_eq!(room[1], json!({"type": 2, "data": ["room", "r1"], "nsp": "/"}));
    assert_eq!(room[2], json!({"rooms": ["r1"], "except": [], "flags": {}}));
    assert_eq!(room[0].as_str().map(str::len), Some(6), "uid of 6 characters: {room}");
    assert_eq!(by_event["room-except"][0].1[2], json!({"rooms": ["r1"], "except": ["x"], "flags": {}}));
    assert_eq!(by_event["volatile"][0].1[2]["flags"], json!({"volatile": true}));
    let raw_bin = &msgs.iter().find(|(_, p)| broadcast_event(p).as_deref() == Some("bin")).unwrap().1;
    assert!(raw_bin.windows(6).any(|w| w == [0xc4, 4, 0, 1, 2, 255]), "binary goes as MessagePack bin: {raw_bin:02x?}");
    eprintln!("broadcasts_reach_every_node_exactly_once: {:?}", started.elapsed());
}

fn ack_values(r: &[shoal::AckResponse]) -> Vec<u64> {
    let mut v: Vec<u64> = r.iter().map(|a| a.args.values[0].as_u64().unwrap()).collect();
    v.sort_unstable();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_acks_are_collected_across_nodes() {
    let started = Instant::now();
    let mut s = three().await;
    let (a, b, c) = (&s.n[0], &s.n[1], &s.n[2]);

    let r = a.io.of("/").timeout(Duration::from_secs(5)).emit_with_ack("ask", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![0, 1, 2, 3, 4, 5, 6, 7], "every client of every node answers once");
    let r = b.io.of("/").to("r1").timeout(Duration::from_secs(5)).emit_with_ack("ask-room", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![0, 3, 6]);

    // binary answers from a remote client (MessagePack type 9 with bin)
    s.c.set_ack(Some(3), Some(json!({"$bin": "AAEC/w=="}))).await;
    let r = a.io.of("/").to("r1").timeout(Duration::from_secs(5)).emit_with_ack("ask-bin", &"q").await.unwrap();
    assert_eq!(r.len(), 3);
    let from3: Vec<_> = r.iter().filter(|x| !x.args.attachments.is_empty()).collect();
    assert_eq!(from3.len(), 1, "{r:?}");
    assert_eq!(from3[0].args.values, vec![placeholder(0)]);
    assert_eq!(from3[0].args.attachments, vec![Bytes::from_static(&[0, 1, 2, 255])]);
    s.c.reset_ack(3).await;

    // one silent client: timeout with the partial answers
    s.c.set_ack(Some(4), None).await;
    let t0 = Instant::now();
    let err = c.io.of("/").timeout(Duration::from_secs(1)).emit_with_ack("ask-silent", &"q").await.unwrap_err();
    let waited = t0.elapsed();
    let BroadcastAckError::Timeout(t) = err else { panic!("expected a timeout, got {err:?}") };
    assert_eq!(ack_values(&t.responses), vec![0, 1, 2, 3, 5, 6, 7], "partial answers");
    assert_eq!((t.expected, t.servers_reported, t.servers), (8, 3, 3), "{t:?}");
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(3), "{waited:?}");
    s.c.reset_ack(4).await;

    // nodes without matching clients answer a count of 0 at once: no waiting for the timeout
    let mut mon = Monitor::subscribe(s.redis.addr(), "socket.io-response#/#").await;
    let t0 = Instant::now();
    let r = s.n[1].io.of("/").to("ra").timeout(Duration::from_secs(5)).emit_with_ack("ask-ra", &"q").await.unwrap();
    let waited = t0.elapsed();
    assert_eq!(ack_values(&r), vec![0]);
    assert!(waited < Duration::from_millis(1500), "completed after {waited:?}");
    let mut counts = Vec::new();
    while counts.len() < 2 {
        let (_, p) = mon.next(support::T).await.expect("client counts on the response channel");
        let v = decode(&p);
        if v["type"] == 8 {
            counts.push(v["clientCount"].as_u64().unwrap());
        }
    }
    counts.sort_unstable();
    assert_eq!(counts, vec![0, 1], "A reports 1 client, C reports 0");

    // a namespace where two nodes have no socket at all
    let t0 = Instant::now();
    let r = s.n[0].io.of("/chat").timeout(Duration::from_secs(5)).emit_with_ack("chat-ask", &"q").await.unwrap();
    assert_eq!(ack_values(&r), vec![8]);
    assert!(t0.elapsed() < Duration::from_millis(1500), "completed after {:?}", t0.elapsed());
    eprintln!("broadcast_acks_are_collected_across_nodes: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_sockets_and_remote_socket_operations() {
    let started = Instant::now();
    let mut s = three().await;
    let auths = auths();

    // every node sees the sockets of all, with id, rooms, data and handshake
    for node in &s.n {
        let sockets = node.io.of("/").fetch_sockets().await.unwrap();
        assert_eq!(sockets.len(), 8, "{}: {sockets:?}", node.name);
        for (i, auth) in auths.iter().enumerate() {
            let id = s.id(i);
            let info = sockets.iter().find(|x| x.id == id).unwrap_or_else(|| panic!("{id} missing"));
            let mut rooms: Vec<String> = vec![id.clone()];
            rooms.extend(auth["rooms"].as_array().into_iter().flatten().map(|r| r.as_str().unwrap().to_owned()));
            assert_eq!(sorted(info.rooms.iter().map(|r| r.as_str())), sorted(&rooms), "rooms of {i}");
            if let Some(data) = auth.get("data") {
                assert_eq!(&info.data, data, "data of {i}");
            }
            let hs = info.handshake.as_object().unwrap();
            assert_eq!(
                sorted(hs.keys()),
                sorted(["headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"]),
                "handshake keys of {i}"
            );
            assert_eq!(hs["auth"], *auth, "auth of {i}");
            assert_eq!(hs["query"]["EIO"], "4");
            assert_eq!(hs["query"]["transport"], "websocket");
            assert!(hs["headers"]["host"].is_string());
            assert!(
                hs["issued"].is_u64()
                    && hs["time"].is_string()
                    && hs["url"].as_str().unwrap().starts_with("/socket.io/")
            );
            assert!(hs["xdomain"].is_boolean() && hs["secure"].is_boolean() && hs["address"].is_string());
        }
    }
    let one = s.n[2].io.of("/").to(s.id(4)).fetch_sockets().await.unwrap();
    assert_eq!(one.iter().map(|x| x.id.clone()).collect::<Vec<_>>(), vec![s.id(4)], "to(<socket id>)");
    let some = s.n[0].io.of("/").to("r1").except("x").fetch_sockets().await.unwrap();
    assert_eq!(sorted(some.iter().map(|x| x.id.as_str())), sorted([s.id(0), s.id(3)]));
    let local = s.n[1].io.of("/").local().fetch_sockets().await.unwrap();
    assert_eq!(sorted(local.iter().map(|x| x.id.as_str())), sorted([s.id(3), s.id(4), s.id(5)]));

    // remote socket: emit, join, leave (from A to a socket of B)
    s.n[0].io.of("/").to(s.id(4)).emit("direct", &4).unwrap();
    s.n[0].io.of("/").to(s.id(4)).sockets_join(["j1"]).await.unwrap();
    let (b, id4) = (&s.n[1], s.id(4));
    wait_until("socket 4 joins j1 on B", || b.rooms_of("/", &id4).unwrap().contains(&"j1".to_owned())).await;
    s.n[2].io.of("/").to("j1").emit("in-j1", &1).unwrap();
    // (C's broadcast and A's leave come from two publishers: no order between them)
    s.c.received("in-j1", 4).await;
    s.n[0].io.of("/").to(s.id(4)).sockets_leave(["j1"]).await.unwrap();
    let b = &s.n[1];
    wait_until("socket 4 leaves j1 on B", || !b.rooms_of("/", &id4).unwrap().contains(&"j1".to_owned())).await;
    s.fence().await;
    assert_eq!(s.c.take_counts("direct"), once(&[4]));
    assert!(s.c.take_counts("in-j1").is_empty(), "in-j1 once, to 4 only");

    // a room-wide join requested by B applies on every node
    s.n[1].io.of("/").to("r2").sockets_join(["r2b"]).await.unwrap();
    let members = [s.id(0), s.id(1), s.id(4)];
    for (node, ids) in [(&s.n[0], &members[0..2]), (&s.n[1], &members[2..3])] {
        for id in ids {
            wait_until("r2 members join r2b", || node.rooms_of("/", id).unwrap().contains(&"r2b".to_owned())).await;
        }
    }
    let in_r2b = s.n[2].io.of("/").to("r2b").fetch_sockets().await.unwrap();
    assert_eq!(sorted(in_r2b.iter().map(|x| x.id.as_str())), sorted(&members));
    s.n[2].io.of("/").to("r2b").sockets_leave(["r2b"]).await.unwrap();
    for (node, ids) in [(&s.n[0], &members[0..2]), (&s.n[1], &members[2..3])] {
        for id in ids {
            wait_until("r2b members leave r2b", || !node.rooms_of("/", id).unwrap().contains(&"r2b".to_owned())).await;
        }
    }

    // exactly once on the requesting node itself: applied at once, its own copy coming back
    // through Redis is not applied again (a local change made in between stands)
    let a = &s.n[0];
    let sock0 = a.socket("/", &s.id(0)).unwrap();
    a.io.of("/").to(s.id(0)).sockets_join(["once"]).await.unwrap();
    assert!(sock0.in_room("once"), "join applied on the requesting node at once");
    sock0.leave("once");
    sock0.join("stay");
    a.io.of("/").to(s.id(0)).sockets_leave(["stay"]).await.unwrap();
    assert!(!sock0.in_room("stay"), "leave applied on the requesting node at once");
    sock0.join("stay");
    // a request/answer round trip through Redis: A's own requests came back before the answers
    a.io.of("/").all_rooms().await.unwrap();
    assert!(!sock0.in_room("once"), "the join came back through Redis and was applied a second time");
    assert!(sock0.in_room("stay"), "the leave came back through Redis and was applied a second time");

    // disconnects: a room on two nodes, a remote socket with close, a local one
    s.n[2].io.of("/").to("x").disconnect_sockets(false).await.unwrap();
    for i in [4, 6] {
        assert_eq!(s.c.disconnected(i).await, "io server disconnect", "client {i}");
    }
    s.n[0].io.of("/").to(s.id(7)).disconnect_sockets(true).await.unwrap();
    assert_eq!(s.c.disconnected(7).await, "io server disconnect");
    s.n[1].io.of("/").to(s.id(5)).disconnect_sockets(false).await.unwrap();
    assert_eq!(s.c.disconnected(5).await, "io server disconnect");
    let (n1, n2) = (&s.n[1], &s.n[2]);
    wait_until("B keeps 1 socket", || n1.io.of("/").socket_count() == 1).await;
    wait_until("C keeps no socket", || n2.io.of("/").socket_count() == 0).await;
    let left = s.n[0].io.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sorted(left.iter().map(|x| x.id.as_str())), sorted([s.id(0), s.id(1), s.id(2), s.id(3)]));
    // no client got disconnected twice or by mistake
    s.c.p.assert_none(|v| v["event"] == "disconnected", Duration::from_millis(200)).await;
    eprintln!("fetch_sockets_and_remote_socket_operations: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_emit_all_rooms_and_server_count() {
    let started = Instant::now();
    let s = three().await;
    let (a, b, c) = (&s.n[0], &s.n[1], &s.n[2]);

    // server count, and what Redis says: one request-channel subscription per node and namespace
    for node in &s.n {
        assert_eq!(node.io.of("/").server_count().await.unwrap(), 3, "{}", node.name);
        assert_eq!(node.io.of("/chat").server_count().await.unwrap(), 3, "{}", node.name);
    }
    assert_eq!(s.redis.numsub("socket.io-request#/#").await, 3);
    assert_eq!(s.redis.numsub("socket.io-request#/chat#").await, 3);
    assert_eq!(s.redis.numsub("socket.io-response#/#").await, 3);
    assert_eq!(s.redis.numpat().await, 2, "socket.io#/#* and socket.io#/chat#* (NUMPAT counts unique patterns)");
    // per connection: exactly three subscriber connections, each with 2 patterns and 6
    // channels (request, response, own response channel for / and /chat)
    let list = s.redis.cmd(&["CLIENT", "LIST"]).await.unwrap();
    let subscribers: Vec<(String, String)> = list
        .as_str()
        .unwrap()
        .lines()
        .filter_map(|l| {
            let field = |k: &str| l.split(' ').find_map(|f| f.strip_prefix(k)).unwrap_or("0").to_owned();
            let (sub, psub) = (field("sub="), field("psub="));
            (sub != "0" || psub != "0").then_some((sub, psub))
        })
        .collect();
    assert_eq!(subscribers, vec![("6".to_owned(), "2".to_owned()); 3], "(sub, psub) of each subscriber: {list}");
    let specific = s.redis.channels("socket.io-response#/#?*").await;
    assert_eq!(specific.len(), 3, "one specific response channel per node: {specific:?}");

    // server-side emit without ack: every other node, once; not the sender
    a.io.of("/").server_side_emit("sse", &json!({"n": 1})).unwrap();
    a.io.of("/").server_side_emit("fence", &0).unwrap();
    for node in [b, c] {
        node.events.wait("/", "fence", 1).await;
        let got = node.events.named("/", "sse");
        assert_eq!(got.len(), 1, "{}: {got:?}", node.name);
        assert_eq!(got[0].args, vec![json!({"n": 1})]);
    }
    // with binary (MessagePack on the request channel)
    a.io.of("/").server_side_emit("sse-bin", &Bytes::from_static(&[9, 8, 7])).unwrap();
    for node in [b, c] {
        let got = node.events.wait("/", "sse-bin", 1).await;
        assert_eq!(got[0].args, vec![placeholder(0)], "{}", node.name);
        assert_eq!(got[0].attachments, vec![Bytes::from_static(&[9, 8, 7])], "{}", node.name);
    }

    // with acks: one answer per other node
    let r = a.io.of("/").server_side_emit_with_ack("sse-ack", &2, Duration::from_secs(3)).await.unwrap();
    let names = sorted(r.iter().map(|x| x.args.values[0].as_str().unwrap()));
    assert_eq!(names, vec!["B", "C"]);
    // in /chat too (C has no socket there, it still has the handlers)
    let r = b.io.of("/chat").server_side_emit_with_ack("sse-ack", &3, Duration::from_secs(3)).await.unwrap();
    assert_eq!(sorted(r.iter().map(|x| x.args.values[0].as_str().unwrap())), vec!["A", "C"]);
    assert!(a.events.named("/", "sse").is_empty() && a.events.named("/", "sse-ack").is_empty(), "not to itself");

    // one node does not answer: timeout, with the answers that came (Node's `err.responses`)
    c.silent.store(true, Ordering::Release);
    let t0 = Instant::now();
    let err = a.io.of("/").server_side_emit_with_ack("sse-ack", &4, Duration::from_secs(1)).await.unwrap_err();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(3), "{waited:?}");
    assert!(format!("{err}").contains("timed out"), "{err}");
    let shoal::SendError::Adapter(AdapterError::AckTimeout { responses, expected }) = err else { panic!("{err:?}") };
    assert_eq!(expected, 2);
    assert_eq!(sorted(responses.iter().map(|x| x.args.values[0].as_str().unwrap())), vec!["B"]);
    c.silent.store(false, Ordering::Release);

    // all rooms: every room of every node, socket-id rooms included
    let mut expected: Vec<String> = ["r1", "r2", "ra", "x"].iter().map(|r| (*r).to_owned()).collect();
    expected.extend(s.c.ids[0..8].iter().cloned());
    let expected = sorted(expected);
    for node in &s.n {
        let rooms = node.io.of("/").all_rooms().await.unwrap();
        assert_eq!(sorted(rooms.iter().map(|r| r.as_str())), expected, "{}", node.name);
    }
    let chat = a.io.of("/chat").all_rooms().await.unwrap();
    assert_eq!(chat.len(), 1, "the /chat socket's own room: {chat:?}");
    eprintln!("server_side_emit_all_rooms_and_server_count: {:?}", started.elapsed());
}

/// A server-side handler answering with binary: the requesting node gets the bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_acks_carry_binary() {
    let redis = RedisServer::start().await;
    let a = ShoalNode::start("A", &redis.url(), &[]).await;
    let b = ShoalNode::start("B", &redis.url(), &[]).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let r = a.io.of("/").server_side_emit_with_ack("sse-bin-ack", &0, Duration::from_secs(3)).await.unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].args.values, vec![placeholder(0)], "{r:?}");
    assert_eq!(r[0].args.attachments, vec![Bytes::from_static(&[1, 2, 3])], "{r:?}");
}

/// A burst of broadcasts from one node, alternating the main channel and a room channel:
/// the client of another node receives every one, in order (one ordered publishing
/// pipeline; Redis keeps the order of one connection), and nothing is dropped on the way
/// (`lagged`, `publish_errors`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_broadcasts_arrives_complete_and_in_order() {
    const N: u64 = 20_000;
    let started = Instant::now();
    let redis = RedisServer::start().await;
    let a = ShoalNode::start("A", &redis.url(), &[]).await;
    let b = ShoalNode::start_with("B", shoal_redis::RedisAdapterConfig::new(redis.url()), &[], |b| {
        b.max_buffered_packets(1_000_000).max_buffered_bytes(1 << 30)
    })
    .await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let mut client = shoal_bench::conn::WsClient::connect_socketio(b.addr, None, 3).await.unwrap();
    wait_until("client connected", || b.io.of("/").socket_count() == 1).await;
    b.io.of("/").sockets()[0].join("r1");

    let receiver = tokio::spawn(async move {
        let mut next = 0u64;
        let mut out_of_order = Vec::new();
        let r = tokio::time::timeout(
            Duration::from_secs(25),
            client.run(|frame, _| {
                if let Some(rest) = frame.strip_prefix(b"42[\"n\",")
                    && let Some(n) =
                        std::str::from_utf8(&rest[..rest.len() - 1]).ok().and_then(|s| s.parse::<u64>().ok())
                {
                    if n != next && out_of_order.len() < 10 {
                        out_of_order.push((next, n));
                    }
                    next = n + 1;
                    if n == N - 1 {
                        return std::ops::ControlFlow::Break(());
                    }
                }
                std::ops::ControlFlow::Continue(())
            }),
        )
        .await;
        (r.is_ok(), next, out_of_order)
    });
    let t0 = Instant::now();
    for n in 0..N {
        let r = if n % 2 == 0 { a.io.emit("n", &n) } else { a.io.to("r1").emit("n", &n) };
        r.unwrap();
        if n % 1000 == 999 {
            tokio::task::yield_now().await;
        }
    }
    let sent = t0.elapsed();
    let (done, last, out_of_order) = receiver.await.unwrap();
    let took = t0.elapsed();
    let (sa, sb) = (a.factory.driver().stats(), b.factory.driver().stats());
    eprintln!(
        "burst of {N}: emitted in {sent:?}, received by B's client in {took:?}; A published {} (errors {}), B \
         received {} (lagged {})",
        sa.published.load(Ordering::Relaxed),
        sa.publish_errors.load(Ordering::Relaxed),
        sb.received.load(Ordering::Relaxed),
        sb.lagged.load(Ordering::Relaxed)
    );
    assert!(out_of_order.is_empty(), "gaps or reordering (expected, got): {out_of_order:?}");
    assert!(done, "the client got up to {last} of {N} within 25 s");
    assert_eq!(sb.lagged.load(Ordering::Relaxed), 0);
    assert_eq!(sa.publish_errors.load(Ordering::Relaxed), 0);
    eprintln!("a_burst_of_broadcasts_arrives_complete_and_in_order: {:?}", started.elapsed());
}

/// A node that shuts down (`close`) unsubscribes: the others count one server less at once
/// and their requests do not wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_node_leaves_the_count() {
    let redis = RedisServer::start().await;
    let requests_timeout = Duration::from_secs(3);
    let config = || shoal_redis::RedisAdapterConfig::new(redis.url()).requests_timeout(requests_timeout);
    let a = ShoalNode::start_with("A", config(), &["/chat"], |b| b).await;
    let b = ShoalNode::start_with("B", config(), &["/chat"], |b| b).await;
    let c = ShoalNode::start_with("C", config(), &["/chat"], |b| b).await;
    support::wait_server_counts(&[&a, &b, &c], "/", 3).await;
    support::wait_server_counts(&[&a, &b, &c], "/chat", 3).await;
    c.io.close_with_timeout(Duration::from_secs(1)).await;
    assert_eq!(redis.numsub("socket.io-request#/#").await, 2, "C's / adapter unsubscribed");
    assert_eq!(redis.numsub("socket.io-request#/chat#").await, 2, "C's /chat adapter unsubscribed");
    assert_eq!(a.io.of("/").server_count().await.unwrap(), 2);
    let t0 = Instant::now();
    assert!(a.io.of("/").fetch_sockets().await.unwrap().is_empty());
    assert!(a.io.of("/").all_rooms().await.unwrap().is_empty());
    let r = a.io.of("/").server_side_emit_with_ack("sse-ack", &1, requests_timeout).await.unwrap();
    assert_eq!(r.len(), 1);
    assert!(t0.elapsed() < Duration::from_secs(1), "requests waited for the closed node: {:?}", t0.elapsed());
    assert!(c.events.all().is_empty());
}

/// Broadcasts with acknowledgements that completed are no longer pending: one after the
/// other, many more than `max_pending_requests` go through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completed_ack_broadcasts_are_not_pending() {
    let redis = RedisServer::start().await;
    let config = || {
        let mut c = shoal_redis::RedisAdapterConfig::new(redis.url());
        c.max_pending_requests = 20;
        c
    };
    let a = ShoalNode::start_with("A", config(), &[], |b| b).await;
    let b = ShoalNode::start_with("B", config(), &[], |b| b).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let mut c = Clients::start().await;
    c.connect(&b.url(), "/", &[json!({})]).await;
    for i in 0..60 {
        let r = a.io.of("/").timeout(Duration::from_secs(10)).emit_with_ack("ask", &i).await;
        match r {
            Ok(r) => assert_eq!(r.len(), 1),
            Err(e) => panic!("ack broadcast {i} (the previous ones all completed): {e}"),
        }
    }
}
