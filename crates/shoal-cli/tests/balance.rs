//! `shoal balance` in front of real `shoal serve` nodes (over a real Redis), driven by
//! the official socket.io-client (tests/js-redis/clients.mjs) and by raw HTTP.
//!
//! Needs redis-server (scripts/deps), Node.js and `npm ci --prefix tests/js-redis`.

mod support;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_balance::{Balancer, HealthConfig, NodeId, Strategy};
use shoal_testkit::{NodeProcess, RedisServer};
use support::{Answer, Shoal, read_response, send};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `shoal serve` on a free loopback port with node id `id` and Redis `redis`.
fn serve_node(id: &str, redis: &str, extra: &[&str]) -> Shoal {
    Shoal::serve(&[&["--node-id", id, "--redis", redis][..], extra].concat())
}

/// `shoal balance` on a free loopback port in front of `nodes`.
fn balancer(nodes: &[&Shoal], extra: &[&str]) -> Shoal {
    let ups: Vec<String> = nodes.iter().map(|n| n.addr.to_string()).collect();
    let mut args = vec!["--host", "127.0.0.1", "--port", "0"];
    for u in &ups {
        args.push("--upstream");
        args.push(u);
    }
    args.extend_from_slice(extra);
    Shoal::balance(&args)
}

/// One request on a fresh connection; `extra` are more header lines (each ending `\r\n`).
async fn request(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &str) -> Answer {
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut s = send(addr, &req).await;
    tokio::time::timeout(Duration::from_secs(60), read_response(&mut s))
        .await
        .expect("a response within 60 s")
        .expect("a complete response")
}

/// A polling handshake through `addr`; the sid.
async fn handshake(addr: SocketAddr, extra: &str) -> String {
    let r = request(addr, "GET", "/socket.io/?EIO=4&transport=polling", extra, "").await;
    assert_eq!(r.status, 200, "handshake: {r:?}");
    sid_of(&r.text())
}

fn sid_of(body: &str) -> String {
    let open = body.strip_prefix('0').unwrap_or_else(|| panic!("not an open packet: {body}"));
    let open = open.split('\u{1e}').next().unwrap();
    let v: Value = serde_json::from_str(open).unwrap();
    v["sid"].as_str().unwrap().to_owned()
}

/// Starts a clients.mjs process and waits for it to be ready.
async fn clients() -> NodeProcess {
    let mut p = NodeProcess::spawn("clients.mjs", &[]);
    p.wait_for_event("ready").await;
    p
}

/// Sends `cmds` (each gets id `{tag}-{i}`) and waits for all their replies; the results.
async fn call_all(p: &mut NodeProcess, tag: &str, cmds: Vec<Value>, timeout: Duration) -> Vec<Value> {
    let n = cmds.len();
    for (i, mut c) in cmds.into_iter().enumerate() {
        c["id"] = json!(format!("{tag}-{i}"));
        p.send(c);
    }
    let replies = p
        .wait_for_n(
            |v| v.get("reply").and_then(Value::as_str).is_some_and(|r| r.starts_with(&format!("{tag}-"))),
            n,
            timeout,
        )
        .await;
    let mut out = vec![Value::Null; n];
    for r in replies {
        let i: usize = r["reply"].as_str().unwrap()[tag.len() + 1..].parse().unwrap();
        if r["ok"] != json!(true) {
            p.fail(&format!("command {tag}-{i} failed: {r}"));
        }
        out[i] = r["result"].clone();
    }
    out
}

fn assert_no_trouble(p: &mut NodeProcess, what: &str) {
    let bad =
        p.take_matching(|v| matches!(v.get("event").and_then(Value::as_str), Some("disconnected" | "connectError")));
    assert!(bad.is_empty(), "{what}: clients saw {bad:?}");
}

/// The headline check: 3 nodes behind `shoal balance`, 300 polling-only and 300
/// WebSocket official clients in 60 rooms of 10 (each room spread over nodes and
/// transports), every client sends one chat message to its room: every delivery arrives,
/// and no client sees a connect error or a disconnection (so no 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_polling_and_websocket_clients_through_balance() {
    let redis = RedisServer::start().await;
    let nodes = [
        serve_node("aaa1", &redis.url(), &[]),
        serve_node("bbb2", &redis.url(), &[]),
        serve_node("ccc3", &redis.url(), &[]),
    ];
    let bal = balancer(&[&nodes[0], &nodes[1], &nodes[2]], &[]);
    let mut polling = clients().await;
    let mut ws = clients().await;
    const N: usize = 300;
    const ROOMS: usize = 60;
    let long = Duration::from_secs(240);
    let conn = |transport: &str| json!({"cmd": "connect", "url": bal.url(), "count": N, "transports": [transport], "timeout": 120_000});
    let p_ids = polling.call_within(conn("polling"), long).await;
    let w_ids = ws.call_within(conn("websocket"), long).await;
    let mut per_node: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for c in p_ids.as_array().unwrap() {
        per_node.entry(c["id"].as_str().unwrap()[..4].to_owned()).or_default().0 += 1;
    }
    for c in w_ids.as_array().unwrap() {
        per_node.entry(c["id"].as_str().unwrap()[..4].to_owned()).or_default().1 += 1;
    }
    assert_eq!(per_node.keys().cloned().collect::<Vec<_>>(), ["aaa1", "bbb2", "ccc3"], "{per_node:?}");

    // global client k: polling i is k = i, WebSocket i is k = N + i; room = k % ROOMS
    let room = |k: usize| format!("r{}", k % ROOMS);
    let joins = |offset: usize| -> Vec<Value> {
        (0..N)
            .map(|i| json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": [room(offset + i)], "timeout": 120_000}))
            .collect()
    };
    for (p, offset) in [(&mut polling, 0), (&mut ws, N)] {
        for r in call_all(p, "join", joins(offset), long).await {
            assert_eq!(r[0]["ok"], json!(true), "join: {r}");
        }
    }
    let chats = |offset: usize| -> Vec<Value> {
        (0..N)
            .map(|i| {
                let k = offset + i;
                json!({"cmd": "emitWithAck", "index": i, "event": "chat",
                       "args": [{"room": room(k), "text": format!("m{k}")}], "timeout": 120_000})
            })
            .collect()
    };
    for (p, offset) in [(&mut polling, 0), (&mut ws, N)] {
        for r in call_all(p, "chat", chats(offset), long).await {
            assert_eq!(r[0]["ok"], json!(true), "chat: {r}");
        }
    }
    // every client gets the 10 messages of its room, once each
    let per_room = 2 * N / ROOMS;
    for (p, offset) in [(&mut polling, 0), (&mut ws, N)] {
        let got = p
            .wait_for_n(
                |v| v.get("event") == Some(&json!("received")) && v.get("name") == Some(&json!("chat")),
                N * per_room,
                long,
            )
            .await;
        let mut texts: HashMap<usize, Vec<String>> = HashMap::new();
        for v in got {
            let i = v["index"].as_u64().unwrap() as usize;
            texts.entry(i).or_default().push(v["args"][0]["text"].as_str().unwrap().to_owned());
        }
        for i in 0..N {
            let k = offset + i;
            let mut expected: Vec<String> =
                (0..2 * N).filter(|j| j % ROOMS == k % ROOMS).map(|j| format!("m{j}")).collect();
            expected.sort();
            let mut seen = texts.remove(&i).unwrap_or_default();
            seen.sort();
            assert_eq!(seen, expected, "client {k} (room {})", room(k));
        }
        // and nothing more
        p.assert_none(
            |v| v.get("event") == Some(&json!("received")) && v.get("name") == Some(&json!("chat")),
            Duration::from_millis(500),
        )
        .await;
    }
    assert_no_trouble(&mut polling, "polling clients");
    assert_no_trouble(&mut ws, "WebSocket clients");
    let log = bal.new_lines().join("\n");
    assert!(!log.contains("ERROR"), "balancer log:\n{log}");
    eprintln!("sessions per node (polling, websocket): {per_node:?}");
}

/// `--strategy header-hash`: every handshake with one X-Forwarded-For client IP lands on
/// one node, different IPs spread over the nodes; a missing header is refused (400 with
/// a message) or falls back, as configured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_hash_routes_each_client_ip_to_one_node() {
    let redis = RedisServer::start().await;
    let nodes = [
        serve_node("aaa1", &redis.url(), &[]),
        serve_node("bbb2", &redis.url(), &[]),
        serve_node("ccc3", &redis.url(), &[]),
    ];
    let all = [&nodes[0], &nodes[1], &nodes[2]];
    let bal = balancer(&all, &["--strategy", "header-hash", "--on-missing", "refuse"]);
    let mut owners: HashMap<String, HashSet<String>> = HashMap::new();
    for round in 0..4 {
        for c in 0..25 {
            let ip = format!("203.0.113.{c}");
            // the nearest proxy's hop varies; hop 0 (the client) decides
            let xff = format!("X-Forwarded-For: {ip}, 10.0.0.{round}\r\n");
            let sid = handshake(bal.addr, &xff).await;
            owners.entry(ip).or_default().insert(sid[..4].to_owned());
        }
    }
    let mut used = HashSet::new();
    for (ip, nodes) in &owners {
        assert_eq!(nodes.len(), 1, "{ip} went to {nodes:?}");
        used.extend(nodes.iter().cloned());
    }
    assert!(used.len() >= 2, "25 client IPs all on {used:?}");

    let r = request(bal.addr, "GET", "/socket.io/?EIO=4&transport=polling", "", "").await;
    assert_eq!(r.status, 400, "{r:?}");
    assert!(r.text().contains("x-forwarded-for"), "{r:?}");
    // requests with a sid do not need the header
    let sid = handshake(bal.addr, "X-Forwarded-For: 198.51.100.1\r\n").await;
    let r = request(bal.addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), "", "40").await;
    assert_eq!(r.status, 200, "{r:?}");

    // --header-hop -1: the last hop decides
    let last = balancer(&all, &["--strategy", "header-hash", "--header-hop", "-1"]);
    let mut owner = HashSet::new();
    for c in 0..10 {
        let sid = handshake(last.addr, &format!("X-Forwarded-For: 203.0.113.{c}, 192.0.2.7\r\n")).await;
        owner.insert(sid[..4].to_owned());
    }
    assert_eq!(owner.len(), 1, "{owner:?}");

    // fallback: a missing header still gets a session
    let fallback = balancer(&all, &["--strategy", "header-hash", "--on-missing", "fallback"]);
    let mut seen = HashSet::new();
    for _ in 0..9 {
        seen.insert(handshake(fallback.addr, "").await[..4].to_owned());
    }
    assert!(seen.len() >= 2, "fallback is least-connections: {seen:?}");
}

/// Malformed requests get clean errors and the balancer keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clean_errors() {
    let redis = RedisServer::start().await;
    let node = serve_node("aaa1", &redis.url(), &[]);
    let bal = balancer(&[&node], &["--header-read-timeout", "1000", "--max-header-bytes", "8192"]);
    let addr = bal.addr;

    // garbage request line
    let mut s = send(addr, "\x16\x03\x01 hello there\r\n\r\n").await;
    let r = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s)).await.unwrap();
    assert_eq!(r.map(|r| r.status), Some(400));

    // a header line without colon, a bad Content-Length, a bad HTTP version
    for raw in [
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
        "POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
    ] {
        let mut s = send(addr, raw).await;
        let r = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s)).await.unwrap();
        let status = r.map(|r| r.status);
        assert!(matches!(status, Some(400 | 505)), "{raw:?}: {status:?}");
    }

    // huge headers
    let big = format!("X-Big: {}\r\n", "a".repeat(20_000));
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s
        .write_all(format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{big}\r\n").as_bytes())
        .await;
    let r = tokio::time::timeout(Duration::from_secs(10), read_response(&mut s)).await.unwrap();
    assert_eq!(r.map(|r| r.status), Some(431));

    // bad sid, sid of an unknown node, sid of the right length with a bad character
    let unknown = r#"{"code":1,"message":"Session ID unknown"}"#;
    for sid in ["short", "zzzzAAAAAAAAAAAAAAAA", "aaa1AAAAAAAA%2FAAAAAA", ""] {
        let r = request(addr, "GET", &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), "", "").await;
        assert_eq!((r.status, r.text().as_str()), (400, unknown), "sid {sid:?}");
        assert!(r.head.to_ascii_lowercase().contains("content-type: application/json"), "{r:?}");
    }
    // WebSocket upgrade with a sid of an unknown node
    let ws = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
    let r = request(addr, "GET", "/socket.io/?EIO=4&transport=websocket&sid=zzzzAAAAAAAAAAAAAAAA", ws, "").await;
    assert_eq!((r.status, r.text().as_str()), (400, unknown));
    // a session of the node's that it no longer knows: the node's own 400
    let r = request(addr, "GET", "/socket.io/?EIO=4&transport=polling&sid=aaa1AAAAAAAAAAAAAAAA", "", "").await;
    assert_eq!(r.status, 400);

    // slowloris: a head that never ends is cut after --header-read-timeout
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let started = Instant::now();
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if slow.write_all(b"X-Slow: 1\r\n").await.is_err() {
            closed = true;
            break;
        }
        let mut b = [0u8; 64];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(1), slow.read(&mut b)).await {
            closed = true;
            break;
        }
    }
    assert!(closed, "slow head still open after {:?}", started.elapsed());

    // still serving
    let sid = handshake(addr, "").await;
    assert_eq!(&sid[..4], "aaa1");
    let r = request(addr, "GET", "/health", "", "").await;
    assert_eq!(r.status, 200, "{r:?}");
}

/// The balancer as a library, in front of real nodes: a killed node leaves the rotation
/// within seconds (new sessions go to the others, its sids get 400); a node added through
/// the `Upstreams` handle takes new sessions while clients carry on; a drained node takes
/// no new sessions while its sessions are still served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_killed_added_and_drained_while_clients_run() {
    let redis = RedisServer::start().await;
    let mut n1 = serve_node("aaa1", &redis.url(), &[]);
    let n2 = serve_node("bbb2", &redis.url(), &[]);
    let n3 = serve_node("ccc3", &redis.url(), &[]);
    let balancer = Balancer::builder()
        .strategy(Strategy::RoundRobin)
        .upstream(n1.addr)
        .upstream(n2.addr)
        .upstream(n3.addr)
        .health(HealthConfig::default().interval(Duration::from_millis(500)))
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = {
        let b = balancer.clone();
        tokio::spawn(async move {
            b.serve(listener, async move {
                let _ = stop_rx.await;
            })
            .await
        })
    };
    let ups = balancer.upstreams().clone();
    wait_until("3 eligible upstreams", || ups.eligible_count() == 3).await;

    // clients that keep running through the changes
    let mut p = clients().await;
    let url = format!("http://{addr}");
    let ids = p
        .call_within(
            json!({"cmd": "connect", "url": url, "count": 6, "transports": ["polling"], "timeout": 60_000}),
            Duration::from_secs(90),
        )
        .await;
    let on_n1: Vec<usize> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("aaa1"))
        .map(|c| c["index"].as_u64().unwrap() as usize)
        .collect();
    assert_eq!(on_n1.len(), 2, "round-robin over 3 nodes: {ids}");
    let survivors: Vec<usize> = (0..6).filter(|i| !on_n1.contains(i)).collect();
    let sid1 = handshake(addr, "").await;
    let mut sid_on_n1 = sid1.clone();
    while !sid_on_n1.starts_with("aaa1") {
        sid_on_n1 = handshake(addr, "").await;
    }

    // kill node 1
    n1.kill();
    wait_until("node 1 out of rotation", || ups.eligible_count() == 2).await;
    for _ in 0..12 {
        let sid = handshake(addr, "").await;
        assert!(!sid.starts_with("aaa1"), "new session on the dead node: {sid}");
    }
    let r = request(addr, "GET", &format!("/socket.io/?EIO=4&transport=polling&sid={sid_on_n1}"), "", "").await;
    assert_eq!((r.status, r.text().as_str()), (400, r#"{"code":1,"message":"Session ID unknown"}"#));

    // add node 4 while the other clients go on
    let n4 = serve_node("ddd4", &redis.url(), &[]);
    ups.add_addr(n4.addr);
    wait_until("node 4 in rotation", || ups.eligible_count() == 3).await;
    let mut on_n4 = 0;
    for _ in 0..9 {
        if handshake(addr, "").await.starts_with("ddd4") {
            on_n4 += 1;
        }
    }
    assert!(on_n4 >= 2, "node 4 took {on_n4} of 9 new sessions");
    for &i in &survivors {
        let r = p
            .call_within(
                json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": ["after"], "timeout": 30_000}),
                Duration::from_secs(40),
            )
            .await;
        assert_eq!(r[0]["ok"], json!(true), "client {i}: {r}");
    }
    let trouble = p.take_matching(|v| {
        matches!(v.get("event").and_then(Value::as_str), Some("disconnected" | "connectError"))
            && survivors.contains(&(v["index"].as_u64().unwrap_or(99) as usize))
    });
    assert!(trouble.is_empty(), "clients on the surviving nodes saw {trouble:?}");

    // drain node 2: no new sessions; its sessions are still served
    let sid2 = loop {
        let s = handshake(addr, "").await;
        if s.starts_with("bbb2") {
            break s;
        }
    };
    assert!(ups.set_draining("bbb2".parse::<NodeId>().unwrap(), true));
    for _ in 0..12 {
        assert!(!handshake(addr, "").await.starts_with("bbb2"), "drained node took a session");
    }
    let r = request(addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={sid2}"), "", "40").await;
    assert_eq!(r.status, 200, "the drained node's session: {r:?}");
    drop(n2);
    drop(p);

    let _ = stop_tx.send(());
    let r = tokio::time::timeout(Duration::from_secs(60), serving).await.expect("serve returns after the drain");
    r.unwrap().unwrap();
    drop((n3, n4));
}

/// SIGTERM: the balancer stops accepting, lets a long-polling request in flight finish,
/// and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_requests_then_exits() {
    let redis = RedisServer::start().await;
    let node = serve_node("aaa1", &redis.url(), &["--ping-interval", "3000"]);
    let mut bal = balancer(&[&node], &["--drain-timeout", "20000"]);
    let sid = handshake(bal.addr, "").await;
    // join namespace / so the session lives, then hold a long-poll GET
    let r = request(bal.addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), "", "40").await;
    assert_eq!(r.status, 200);
    let r = request(bal.addr, "GET", &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), "", "").await;
    assert_eq!(r.status, 200, "{r:?}"); // the CONNECT answer
    let held =
        format!("GET /socket.io/?EIO=4&transport=polling&sid={sid} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut held = send(bal.addr, &held).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    bal.signal("TERM");
    // the held request completes (with the node's ping, within its 3 s ping interval)
    let r = tokio::time::timeout(Duration::from_secs(30), read_response(&mut held)).await.unwrap().expect("a response");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(r.text().starts_with('2'), "a ping: {r:?}");
    let status = bal.wait_exit(Duration::from_secs(30)).expect("exits after the drain");
    assert!(status.success(), "{status:?}");
    assert!(TcpStream::connect(bal.addr).await.is_err(), "still accepting after exit");
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `shoal balance --redis URL` with no `--upstream`: the upstreams are the nodes that
/// announce themselves in the membership (`shoal serve --redis`); a node started later
/// takes new sessions while clients run, a killed node is dropped once its announcement
/// expires, and a drained node (SIGUSR1) takes no new sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_membership_drives_the_upstreams() {
    let redis = RedisServer::start().await;
    let mut n1 = serve_node("aaa1", &redis.url(), &[]);
    let n2 = serve_node("bbb2", &redis.url(), &[]);
    let bal =
        Shoal::balance(&["--host", "127.0.0.1", "--port", "0", "--redis", &redis.url(), "--strategy", "round-robin"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = HashSet::new();
    while seen.len() < 2 {
        assert!(Instant::now() < deadline, "both announced nodes not used: {seen:?}");
        seen.insert(handshake(bal.addr, "").await[..4].to_owned());
    }
    assert_eq!(seen, HashSet::from(["aaa1".to_owned(), "bbb2".to_owned()]));

    let mut p = clients().await;
    let ids = p
        .call_within(
            json!({"cmd": "connect", "url": bal.url(), "count": 4, "transports": ["polling"], "timeout": 60_000}),
            Duration::from_secs(90),
        )
        .await;
    let on_n1: Vec<u64> = ids
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().unwrap().starts_with("aaa1"))
        .map(|c| c["index"].as_u64().unwrap())
        .collect();

    // node 3 starts and announces itself: it takes new sessions
    let n3 = serve_node("ccc3", &redis.url(), &[]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !handshake(bal.addr, "").await.starts_with("ccc3") {
        assert!(Instant::now() < deadline, "node 3 never took a session");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for i in 0..4 {
        let r = p
            .call_within(
                json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": ["x"], "timeout": 30_000}),
                Duration::from_secs(40),
            )
            .await;
        assert_eq!(r[0]["ok"], json!(true), "client {i}: {r}");
    }
    assert_no_trouble(&mut p, "clients while node 3 joined");

    // node 1 crashes: dropped once its announcement expires
    n1.kill();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("node left") && l.contains("aaa1")) {
        assert!(Instant::now() < deadline, "node 1 never left; balancer log:\n{}", log.join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.extend(bal.new_lines());
    }
    for _ in 0..6 {
        assert!(!handshake(bal.addr, "").await.starts_with("aaa1"));
    }

    // node 2 drains (SIGUSR1): no new sessions there, its sessions still served
    let mut sid2 = handshake(bal.addr, "").await;
    while !sid2.starts_with("bbb2") {
        sid2 = handshake(bal.addr, "").await;
    }
    n2.signal("USR1");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("upstream draining")) {
        assert!(Instant::now() < deadline, "node 2 never seen draining; balancer log:\n{}", log.join("\n"));
        tokio::time::sleep(Duration::from_millis(100)).await;
        log.extend(bal.new_lines());
    }
    for _ in 0..9 {
        assert!(handshake(bal.addr, "").await.starts_with("ccc3"), "only node 3 takes new sessions");
    }
    let r = request(bal.addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={sid2}"), "", "40").await;
    assert_eq!(r.status, 200, "the drained node's session: {r:?}");
    let trouble = p.take_matching(|v| {
        matches!(v.get("event").and_then(Value::as_str), Some("disconnected" | "connectError"))
            && !on_n1.contains(&v["index"].as_u64().unwrap_or(99))
    });
    assert!(trouble.is_empty(), "clients of the live nodes saw {trouble:?}");
    drop((p, n3));
}

/// Restart without refusing clients: a second `shoal balance --reuse-port` starts on the
/// port of the first, the first drains on SIGTERM and exits, and requests succeed
/// before, during and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_on_the_same_port_with_reuse_port() {
    let redis = RedisServer::start().await;
    let node = serve_node("aaa1", &redis.url(), &[]);
    let mut old = balancer(&[&node], &["--reuse-port"]);
    let port = old.addr.port().to_string();
    let up = node.addr.to_string();
    let new = Shoal::balance(&["--host", "127.0.0.1", "--port", &port, "--upstream", &up, "--reuse-port"]);
    assert_eq!(new.addr, old.addr);
    // a session made through the old one is served by the new one
    let sid = handshake(old.addr, "").await;
    old.signal("TERM");
    let status = old.wait_exit(Duration::from_secs(30)).expect("the old balancer exits");
    assert!(status.success(), "{status:?}");
    let r = request(new.addr, "POST", &format!("/socket.io/?EIO=4&transport=polling&sid={sid}"), "", "40").await;
    assert_eq!(r.status, 200, "{r:?}");
    for _ in 0..5 {
        assert!(handshake(new.addr, "").await.starts_with("aaa1"));
    }
}
