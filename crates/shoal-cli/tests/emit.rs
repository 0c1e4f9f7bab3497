//! The built `shoal` binary with Redis: `shoal emit` publishes byte for byte what Node's
//! `@socket.io/redis-emitter` does and reaches Node servers (classic and sharded), refuses
//! bad input with a clear message; `shoal serve --redis` nodes form one cluster with each
//! other and with Node servers.
//!
//! Needs `redis-server` and the Node packages of `tests/js-redis`.

mod support;

use std::net::SocketAddr;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_bench::conn::WsClient;
use shoal_testkit::{NodeProcess, RedisServer, RespConnection};
use support::{SHOAL, Shoal, next_packet};

const WAIT: Duration = Duration::from_secs(5);

/// Runs `shoal emit --redis URL <args>` to the end.
async fn shoal_emit(url: &str, args: &[&str]) -> Output {
    let mut cmd = tokio::process::Command::new(SHOAL);
    cmd.arg("emit").arg("--redis").arg(url).args(args).stdin(Stdio::null()).env_remove("SHOAL_REDIS_URL");
    tokio::time::timeout(Duration::from_secs(30), cmd.output()).await.expect("shoal emit hangs").expect("run shoal")
}

/// Runs `shoal emit` and checks that it succeeded silently.
async fn emit_ok(url: &str, args: &[&str]) {
    let out = shoal_emit(url, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "shoal emit {args:?}: {:?}\n{stderr}", out.status);
    assert!(out.stdout.is_empty() && stderr.is_empty(), "shoal emit {args:?} printed: {stderr}");
}

/// `PSUBSCRIBE *`: everything published with PUBLISH.
async fn capture(redis: &RedisServer) -> RespConnection {
    let mut conn = redis.connect().await.unwrap();
    assert!(!conn.cmd(&["PSUBSCRIBE", "*"]).await.unwrap().is_error());
    conn
}

async fn next_message(conn: &mut RespConnection) -> (String, Vec<u8>) {
    let v = conn.read_timeout(WAIT).await.unwrap().expect("nothing published");
    let a = v.as_array().expect("a push");
    (a[2].as_str().unwrap().to_owned(), a[3].as_bytes().unwrap().to_vec())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_publishes_what_node_emitter_publishes() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut conn = capture(&redis).await;
    let mut node = NodeProcess::spawn("emitter.mjs", &["--redis", &url, "--key", "app"]);
    node.wait_for_event("ready").await;
    let cases: [(Value, &[&str]); 7] = [
        (
            json!({"cmd": "emit", "event": "ev", "args": ["s", 1.5, -7, {"a": [1, null, true]}]}),
            &["ev", "\"s\"", "1.5", "-7", r#"{"a":[1,null,true]}"#],
        ),
        (
            json!({"cmd": "emit", "event": "ev", "nsp": "/chat", "rooms": ["r"], "except": ["x", "y"], "volatile": true, "compress": true, "args": [2.0]}),
            &["--nsp", "chat", "--to", "r", "--except", "x", "--except", "y", "--volatile", "--compress", "ev", "2.0"],
        ),
        (json!({"cmd": "emit", "event": "ev", "rooms": ["a", "b"]}), &["--to", "a", "--to", "b", "ev"]),
        (
            json!({"cmd": "socketsJoin", "rooms": ["r"], "join": ["j1", "j2"]}),
            &["--to", "r", "--join", "j1", "--join", "j2"],
        ),
        (json!({"cmd": "socketsLeave", "except": ["e"], "leave": ["l"]}), &["--except", "e", "--leave", "l"]),
        (json!({"cmd": "disconnectSockets", "rooms": ["r"], "close": true}), &["--to", "r", "--disconnect", "--close"]),
        (
            json!({"cmd": "serverSideEmit", "event": "hello", "args": [[1, "x"]]}),
            &["--server-side", "hello", "[1,\"x\"]"],
        ),
    ];
    for (cmd, argv) in cases {
        node.call(cmd.clone()).await;
        let (node_channel, node_bytes) = next_message(&mut conn).await;
        let mut full = vec!["--key", "app"];
        full.extend_from_slice(argv);
        emit_ok(&url, &full).await;
        let (channel, bytes) = next_message(&mut conn).await;
        assert_eq!(channel, node_channel, "{cmd}");
        assert!(bytes == node_bytes, "{cmd}\n node: {node_bytes:02x?}\n cli:  {bytes:02x?}");
    }
    assert_eq!(conn.read_timeout(Duration::from_millis(200)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_reaches_node_servers_classic_and_sharded() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let mut classic = NodeProcess::spawn("server.mjs", &["--redis", &url, "--mode", "classic", "--key", "c"]);
    let mut sharded = NodeProcess::spawn("server.mjs", &["--redis", &url, "--mode", "sharded", "--key", "s"]);
    let pc = classic.wait_for_event("listening").await["port"].as_u64().unwrap();
    let ps = sharded.wait_for_event("listening").await["port"].as_u64().unwrap();
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    clients.wait_for_event("ready").await;
    // 0: classic, room red; 1: sharded, room red; 2: sharded, no room
    clients.call(json!({"cmd": "connect", "url": format!("http://127.0.0.1:{pc}"), "auth": {"rooms": ["red"]}})).await;
    clients
        .call(json!({"cmd": "connect", "url": format!("http://127.0.0.1:{ps}"), "count": 2,
            "auth": [{"rooms": ["red"]}, {}]}))
        .await;
    classic.wait_for_event("connection").await;
    sharded.wait_for_n(|v| v["event"] == "connection", 2, WAIT).await;
    let received = |name: &'static str| move |v: &Value| v["event"] == "received" && v["name"] == name;

    emit_ok(&url, &["--key", "c", "--to", "red", "hi", "\"classic\"", "{\"n\":1}"]).await;
    let v = clients.wait_for_event("received").await;
    assert_eq!((&v["index"], &v["name"], &v["args"]), (&json!(0), &json!("hi"), &json!(["classic", {"n": 1}])));

    emit_ok(&url, &["--key", "s", "--redis-mode", "sharded", "--to", "red", "hi", "\"sharded\""]).await;
    let v = clients.wait_for_event("received").await;
    assert_eq!((&v["index"], &v["name"], &v["args"]), (&json!(1), &json!("hi"), &json!(["sharded"])));
    emit_ok(&url, &["--key", "s", "--redis-mode", "sharded", "all"]).await;
    let got = clients.wait_for_n(received("all"), 2, WAIT).await;
    let mut who: Vec<u64> = got.iter().map(|v| v["index"].as_u64().unwrap()).collect();
    who.sort_unstable();
    assert_eq!(who, [1, 2]);

    emit_ok(&url, &["--key", "s", "--redis-mode", "sharded", "--server-side", "tick", "42"]).await;
    let v = sharded.wait_for_event("serverSideEmit").await;
    assert_eq!((&v["name"], &v["args"]), (&json!("tick"), &json!([42])));

    emit_ok(&url, &["--key", "s", "--redis-mode", "sharded", "--to", "red", "--disconnect"]).await;
    let v = clients.wait_for_event("disconnected").await;
    assert_eq!((&v["index"], &v["reason"]), (&json!(1), &json!("io server disconnect")));
    assert!(clients.take_matching(received("hi")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_refuses_bad_input_with_a_clear_message() {
    let redis = RedisServer::start().await;
    let url = redis.url();
    let cases: [(&[&str], i32, &str); 6] = [
        (&["connect"], 1, "\"connect\" is a reserved event name"),
        (&["ev", "not-json"], 1, "argument 1 (not-json) is not JSON"),
        (&["--close", "ev"], 1, "--close only goes with --disconnect"),
        (&["--redis-subscription-mode", "static", "ev"], 1, "only applies to --redis-mode sharded"),
        (&["--join", "a", "ev"], 2, "cannot be used with"),
        (&[], 2, "required"),
    ];
    for (argv, code, message) in cases {
        let out = shoal_emit(&url, argv).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{argv:?}: {stderr}");
        assert!(stderr.contains(message), "{argv:?}: {stderr}");
    }
    // Redis not there: an error, soon, that names the server without its password
    let port = shoal_testkit::free_port();
    let started = Instant::now();
    let out = shoal_emit(&format!("redis://user:secret@127.0.0.1:{port}"), &["--timeout", "3000", "ev"]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(stderr.starts_with("shoal emit: "), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");
}

// ----- shoal serve --redis ----------------------------------------------------------------

/// Starts `shoal serve --port 0 --host 127.0.0.1 --demo-dir /nonexistent --log info <args>`,
/// waits (at most 30 s) for its "listening on" line and checks that its Redis adapter
/// connected before.
fn serve(args: &[&str]) -> Shoal {
    let all = [&["--demo-dir", "/nonexistent", "--log", "info"][..], args].concat();
    let shoal = Shoal::serve_within(&all, Duration::from_secs(30));
    let startup = shoal.startup();
    assert!(startup.iter().any(|l| l.contains("Redis adapter connected")), "{startup:?}");
    shoal
}

/// A demo-chat client in room `lobby`.
async fn lobby_client(addr: SocketAddr) -> WsClient {
    let mut ws = WsClient::connect_socketio(addr, None, 3).await.unwrap();
    ws.queue_text(br#"421["join","lobby"]"#);
    ws.flush().await.unwrap();
    loop {
        let f = next_packet(&mut ws, WAIT).await;
        if f == r#"431[{"ok":true,"room":"lobby"}]"# {
            return ws;
        }
    }
}

/// Waits for a frame starting with `prefix`, skipping others.
async fn expect_prefix(ws: &mut WsClient, prefix: &str) -> String {
    loop {
        let f = next_packet(ws, WAIT).await;
        if f.starts_with(prefix) {
            return f;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_redis_forms_a_cluster() {
    let redis = RedisServer::start().await;
    let url = redis.url();

    // classic: two Shoal nodes, the demo chat crosses them, and `shoal emit` reaches both
    let a = serve(&["--redis", &url, "--redis-key", "demo"]);
    let b = serve(&["--redis", &url, "--redis-key", "demo"]);
    let deadline = Instant::now() + WAIT;
    while redis.numsub("demo-request#/#").await != 2 {
        assert!(Instant::now() < deadline, "the nodes do not both listen");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut ada = lobby_client(a.addr).await;
    let mut bob = lobby_client(b.addr).await;
    ada.queue_text(br#"422["chat",{"room":"lobby","text":"across"}]"#);
    ada.flush().await.unwrap();
    let chat = expect_prefix(&mut bob, r#"42["chat","#).await;
    assert!(chat.contains(r#""text":"across""#), "{chat}");
    emit_ok(&url, &["--key", "demo", "--to", "lobby", "news", "\"hello\""]).await;
    for ws in [&mut ada, &mut bob] {
        assert_eq!(expect_prefix(ws, r#"42["news""#).await, r#"42["news","hello"]"#);
    }

    // sharded: a Shoal node and a Node server count each other
    let c = serve(&[
        "--redis",
        &url,
        "--redis-mode",
        "sharded",
        "--redis-key",
        "sh",
        "--redis-subscription-mode",
        "static",
    ]);
    let mut node = NodeProcess::spawn(
        "server.mjs",
        &["--redis", &url, "--mode", "sharded", "--key", "sh", "--subscription-mode", "static"],
    );
    node.wait_for_event("listening").await;
    assert_eq!(node.call(json!({"cmd": "serverCount", "nsp": "/"})).await, json!(2));
    let mut cid = lobby_client(c.addr).await;
    node.call(json!({"cmd": "broadcast", "event": "from-node", "rooms": ["lobby"], "args": [1]})).await;
    assert_eq!(expect_prefix(&mut cid, r#"42["from-node""#).await, r#"42["from-node",1]"#);
    emit_ok(
        &url,
        &["--key", "sh", "--redis-mode", "sharded", "--redis-subscription-mode", "static", "--to", "lobby", "x"],
    )
    .await;
    assert_eq!(expect_prefix(&mut cid, r#"42["x""#).await, r#"42["x"]"#);

    // a Redis that is not there stops `serve` with a clear error
    let port = shoal_testkit::free_port();
    let out = Command::new(SHOAL)
        .args(["serve", "--port", "0", "--no-demo", "--redis", &format!("redis://127.0.0.1:{port}")])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("cannot start the Redis adapter"), "{stderr}");
}
