//! Every command of `tests/js-redis/server.mjs`, `clients.mjs` and `emitter.mjs`, run once
//! against two Node servers sharing a Redis (classic and sharded), so that the Shoal
//! adapter tests can rely on each of them.
//!
//! Needs `redis-server` (`scripts/deps`) and `npm ci --prefix tests/js-redis`.

use std::time::Duration;

use serde_json::{Value, json};
use shoal_testkit::{NodeProcess, RedisServer};

const T: Duration = Duration::from_secs(10);
const QUIET: Duration = Duration::from_millis(250);

fn received(name: &'static str, index: u64) -> impl FnMut(&Value) -> bool {
    move |v| v["event"] == "received" && v["name"] == name && v["index"] == index
}

fn disconnected(index: u64) -> impl FnMut(&Value) -> bool {
    move |v| v["event"] == "disconnected" && v["index"] == index
}

/// Sends `cmd` until its result satisfies `pred` (remote operations take a Redis round trip).
async fn eventually(node: &mut NodeProcess, cmd: Value, mut pred: impl FnMut(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let v = node.call(cmd.clone()).await;
        if pred(&v) {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            node.fail(&format!("{cmd} never satisfied the condition; last result {v}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn room_has(rooms: &Value, room: &str, id: &str) -> bool {
    rooms[room].as_array().is_some_and(|ids| ids.iter().any(|x| x == id))
}

fn sorted(v: &Value) -> Vec<Value> {
    let mut items = v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).clone();
    items.sort_by_key(|x| x.to_string());
    items
}

async fn server(redis: &RedisServer, name: &str, mode: &[&str]) -> (NodeProcess, String) {
    let url = redis.url();
    let mut args = vec!["--redis", &url, "--name", name, "--requests-timeout", "1000", "--nsp", "/admin"];
    args.extend_from_slice(mode);
    let mut node = NodeProcess::spawn("server.mjs", &args);
    let listening = node.wait_for_event("listening").await;
    assert_eq!(listening["name"], name);
    (node, format!("http://127.0.0.1:{}", listening["port"]))
}

/// Connects `count` clients of `clients` to `url`; returns their (index, id).
async fn connect(
    clients: &mut NodeProcess,
    server: &mut NodeProcess,
    url: &str,
    nsp: &str,
    auth: Value,
) -> Vec<(u64, String)> {
    let count = auth.as_array().map_or(1, Vec::len);
    // WebSocket only: a volatile packet that meets a client in the middle of its upgrade
    // from polling is dropped by Node, as it should be, and the test would then miss it
    let res = clients
        .call(json!({"cmd": "connect", "url": url, "nsp": nsp, "count": count, "auth": auth, "transports": ["websocket"]}))
        .await;
    let mut out = Vec::new();
    for c in res.as_array().unwrap() {
        let id = c["id"].as_str().unwrap().to_owned();
        server.wait_for(|v| v["event"] == "connection" && v["id"] == id.as_str(), T).await;
        out.push((c["index"].as_u64().unwrap(), id));
    }
    out
}

async fn commands(sharded: bool) {
    let redis = RedisServer::start().await;
    let mode: &[&str] =
        if sharded { &["--mode", "sharded", "--subscription-mode", "dynamic"] } else { &["--mode", "classic"] };
    let (mut a, url_a) = server(&redis, "A", mode).await;
    let (mut b, url_b) = server(&redis, "B", mode).await;
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    clients.wait_for_event("ready").await;
    // clients 0, 1 on A; 2, 3 on B; 0 and 2 in room1
    let on_a = connect(&mut clients, &mut a, &url_a, "/", json!([{"rooms": ["room1"]}, {}])).await;
    let on_b = connect(&mut clients, &mut b, &url_b, "/", json!([{"rooms": "room1", "data": {"k": 1}}, {}])).await;
    let ids: Vec<String> = on_a.iter().chain(&on_b).map(|(_, id)| id.clone()).collect();
    assert_eq!(on_b.iter().map(|c| c.0).collect::<Vec<_>>(), vec![2, 3]);
    let list = clients.call(json!({"cmd": "list"})).await;
    assert_eq!(list.as_array().unwrap().len(), 4);
    assert_eq!(a.call(json!({"cmd": "localSockets"})).await, json!(sorted(&json!(ids[..2]))));

    // broadcast: except, local, volatile, compress
    a.call(json!({"cmd": "broadcast", "event": "e1", "except": ["room1"], "volatile": true, "compress": false})).await;
    clients.wait_for(received("e1", 1), T).await;
    clients.wait_for(received("e1", 3), T).await;
    a.call(json!({"cmd": "broadcast", "event": "e2", "local": true})).await;
    clients.wait_for(received("e2", 0), T).await;
    clients.wait_for(received("e2", 1), T).await;
    clients.assert_none(|v| v["event"] == "received" && (v["name"] == "e1" || v["name"] == "e2"), QUIET).await;

    // broadcastWithAck: every client answers with its index; a silent one means a timeout
    let acks = a.call(json!({"cmd": "broadcastWithAck", "event": "q", "args": [1], "timeout": 2000})).await;
    assert_eq!(sorted(&acks), vec![json!(0), json!(1), json!(2), json!(3)]);
    clients.call(json!({"cmd": "setAck", "index": 3, "silent": true})).await;
    clients.call(json!({"cmd": "setAck", "index": 2, "value": {"$bin": "AQI="}})).await;
    let partial = a.call(json!({"cmd": "broadcastWithAck", "event": "q", "timeout": 500})).await;
    assert_eq!(partial["error"], "timeout");
    assert_eq!(sorted(&partial["responses"]), vec![json!(0), json!(1), json!({"$bin": "AQI="})]);
    clients.call(json!({"cmd": "setAck"})).await; // back to the index for everyone

    // setData / fetchSockets (data, rooms, handshake)
    b.call(json!({"cmd": "setData", "socketId": ids[3], "data": {"user": "u3", "bin": {"$bin": "AQI="}}})).await;
    let fetched = a.call(json!({"cmd": "fetchSockets", "except": ["room1"]})).await;
    let s3 = fetched.as_array().unwrap().iter().find(|s| s["id"] == ids[3].as_str()).expect("client 3 fetched");
    assert_eq!(fetched.as_array().unwrap().len(), 2);
    assert_eq!(s3["data"]["user"], "u3");
    assert_eq!(s3["local"], false);
    assert_eq!(s3["rooms"], json!([ids[3]]));
    assert!(s3["handshake"]["headers"].is_object() && s3["handshake"]["auth"].is_object(), "{s3}");
    let s2 = a.call(json!({"cmd": "fetchSockets", "rooms": [ids[2]]})).await;
    assert_eq!(s2[0]["data"], json!({"k": 1}));

    // socketsJoin / socketsLeave across servers
    a.call(json!({"cmd": "socketsJoin", "rooms": ["room1"], "join": ["room2"]})).await;
    eventually(&mut b, json!({"cmd": "localRooms"}), |r| room_has(r, "room2", &ids[2])).await;
    let rooms_a = eventually(&mut a, json!({"cmd": "localRooms"}), |r| room_has(r, "room2", &ids[0])).await;
    assert!(!room_has(&rooms_a, "room2", &ids[1]));
    a.call(json!({"cmd": "socketsLeave", "rooms": ["room2"], "leave": "room2"})).await;
    eventually(&mut b, json!({"cmd": "localRooms"}), |r| r.get("room2").is_none()).await;

    // local join / leave / emit
    b.call(json!({"cmd": "join", "socketId": ids[3], "join": ["solo"]})).await;
    a.call(json!({"cmd": "broadcast", "event": "to-solo", "rooms": "solo"})).await;
    clients.wait_for(received("to-solo", 3), T).await;
    b.call(json!({"cmd": "leave", "socketId": ids[3], "leave": ["solo"]})).await;
    b.call(json!({"cmd": "emit", "socketId": ids[3], "event": "direct", "args": ["d"]})).await;
    assert_eq!(clients.wait_for(received("direct", 3), T).await["args"], json!(["d"]));

    // remote socket operations, from A on B's client 3
    a.call(json!({"cmd": "remoteSocketEmit", "socketId": ids[3], "event": "rs", "args": [{"$bin": "AQI="}]})).await;
    assert_eq!(clients.wait_for(received("rs", 3), T).await["args"], json!([{"$bin": "AQI="}]));
    let ack = a.call(json!({"cmd": "remoteSocketEmitWithAck", "socketId": ids[3], "event": "rsa"})).await;
    assert_eq!(ack, json!(3));
    a.call(json!({"cmd": "remoteSocketJoin", "socketId": ids[3], "join": ["room3"]})).await;
    eventually(&mut b, json!({"cmd": "localRooms"}), |r| room_has(r, "room3", &ids[3])).await;
    a.call(json!({"cmd": "remoteSocketLeave", "socketId": ids[3], "leave": ["room3"]})).await;
    eventually(&mut b, json!({"cmd": "localRooms"}), |r| r.get("room3").is_none()).await;
    let missing = a.request(json!({"cmd": "remoteSocketEmit", "socketId": "nope", "event": "x"}), T).await;
    assert!(missing.unwrap_err().contains("no socket"));

    // serverSideEmit, with and without ack; serverCount; allRooms (classic only)
    a.call(json!({"cmd": "serverSideEmit", "event": "note", "args": [1, "two"]})).await;
    let got = b.wait_for_event("serverSideEmit").await;
    assert_eq!((&got["name"], &got["args"], &got["ack"]), (&json!("note"), &json!([1, "two"]), &json!(false)));
    b.call(json!({"cmd": "setServerAck", "value": {"from": "b"}})).await;
    assert_eq!(a.call(json!({"cmd": "serverSideEmitWithAck", "event": "ask"})).await, json!([{"from": "b"}]));
    assert_eq!(a.call(json!({"cmd": "serverCount"})).await, json!(2));
    if sharded {
        assert!(a.request(json!({"cmd": "allRooms"}), T).await.unwrap_err().contains("not supported"));
    } else {
        let rooms = a.call(json!({"cmd": "allRooms"})).await;
        let mut want: Vec<Value> = ids.iter().map(|id| json!(id)).collect();
        want.push(json!("room1"));
        assert_eq!(sorted(&rooms), sorted(&json!(want)));
        // a server that does not answer: the request times out (--requests-timeout 1000)
        b.call(json!({"cmd": "setServerAck", "silent": true})).await;
        let timed_out = a.call(json!({"cmd": "serverSideEmitWithAck", "event": "ask"})).await;
        assert_eq!((&timed_out["error"], &timed_out["responses"]), (&json!("timeout"), &json!([])));
    }

    // namespaces
    let admin = a.call(json!({"cmd": "ns", "nsp": "/admin"})).await;
    assert_eq!(admin["nsp"], "/admin");
    assert!(admin["uid"].is_string());
    b.call(json!({"cmd": "ns", "nsp": "admin"})).await;
    let admin_b = connect(&mut clients, &mut b, &url_b, "/admin", json!([{}])).await;
    a.call(json!({"cmd": "broadcast", "nsp": "/admin", "event": "adm"})).await;
    clients.wait_for(received("adm", admin_b[0].0), T).await;
    clients.assert_none(|v| v["event"] == "received" && v["name"] == "adm" && v["index"] != 4, QUIET).await;

    // client-side commands: emit (no ack), disconnect, reconnect
    clients.call(json!({"cmd": "emit", "index": 0, "event": "up", "args": [{"$bin": "AQI="}]})).await;
    let up = a.wait_for(|v| v["event"] == "message" && v["name"] == "up", T).await;
    assert_eq!((&up["args"], &up["ack"]), (&json!([{"$bin": "AQI="}]), &json!(false)));
    clients.call(json!({"cmd": "disconnect", "index": 1})).await;
    clients.wait_for(disconnected(1), T).await;
    let gone = a.wait_for(|v| v["event"] == "disconnect" && v["id"] == ids[1].as_str(), T).await;
    assert_eq!(gone["reason"], "client namespace disconnect");
    let back = clients.call(json!({"cmd": "reconnect", "index": 1})).await;
    let new_id = back["id"].as_str().unwrap().to_owned();
    a.wait_for(|v| v["event"] == "connection" && v["id"] == new_id.as_str(), T).await;

    // disconnectSockets (room1: clients 0 and 2) and remoteSocketDisconnect (client 3)
    a.call(json!({"cmd": "disconnectSockets", "rooms": ["room1"], "close": true})).await;
    clients.wait_for(disconnected(0), T).await;
    clients.wait_for(disconnected(2), T).await;
    a.call(json!({"cmd": "remoteSocketDisconnect", "socketId": ids[3]})).await;
    clients.wait_for(disconnected(3), T).await;
    b.wait_for(|v| v["event"] == "disconnect" && v["id"] == ids[3].as_str(), T).await;

    // close
    a.call(json!({"cmd": "close"})).await;
    assert_eq!(a.wait_exit(Duration::from_secs(5)).await, Some(0));
    clients.call(json!({"cmd": "close"})).await;
    assert_eq!(clients.wait_exit(Duration::from_secs(5)).await, Some(0));
}

#[tokio::test]
async fn server_and_client_commands_classic() {
    commands(false).await;
}

#[tokio::test]
async fn server_and_client_commands_sharded() {
    commands(true).await;
}

#[tokio::test]
async fn emitter_commands() {
    let redis = RedisServer::start().await;
    let (mut a, url_a) = server(&redis, "A", &["--mode", "classic"]).await;
    let mut emitter = NodeProcess::spawn("emitter.mjs", &["--redis", &redis.url()]);
    emitter.wait_for_event("ready").await;
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    let on_a = connect(&mut clients, &mut a, &url_a, "/", json!([{"rooms": ["r"]}, {}, {}])).await;
    let ids: Vec<&str> = on_a.iter().map(|(_, id)| id.as_str()).collect();

    // emit to one room (its own channel), with except, and volatile
    let res = emitter.call(json!({"cmd": "emit", "event": "r", "rooms": ["r"], "args": [{"$bin": "AQI="}]})).await;
    assert_eq!(res, json!({"published": [{"channel": "socket.io#/#r#", "receivers": 1}]}));
    assert_eq!(clients.wait_for(received("r", 0), T).await["args"], json!([{"$bin": "AQI="}]));
    emitter.call(json!({"cmd": "emit", "event": "ex", "except": [ids[1]], "volatile": true})).await;
    clients.wait_for(received("ex", 0), T).await;
    clients.wait_for(received("ex", 2), T).await;
    clients.assert_none(|v| v["event"] == "received" && (v["name"] == "r" || v["name"] == "ex"), QUIET).await;

    // socketsJoin / socketsLeave
    let res = emitter.call(json!({"cmd": "socketsJoin", "rooms": ["r"], "join": ["s"]})).await;
    assert_eq!(res["published"][0]["channel"], "socket.io-request#/#");
    eventually(&mut a, json!({"cmd": "localRooms"}), |r| room_has(r, "s", ids[0])).await;
    emitter.call(json!({"cmd": "socketsLeave", "rooms": ["s"], "leave": ["s"]})).await;
    eventually(&mut a, json!({"cmd": "localRooms"}), |r| r.get("s").is_none()).await;

    // serverSideEmit (no ack from an emitter)
    emitter.call(json!({"cmd": "serverSideEmit", "event": "from-emitter", "args": ["x"]})).await;
    let got = a.wait_for_event("serverSideEmit").await;
    assert_eq!((&got["name"], &got["args"], &got["ack"]), (&json!("from-emitter"), &json!(["x"]), &json!(false)));

    // another namespace (a missing leading slash is added)
    a.call(json!({"cmd": "ns", "nsp": "/other"})).await;
    let other = connect(&mut clients, &mut a, &url_a, "/other", json!([{}])).await;
    let res = emitter.call(json!({"cmd": "emit", "nsp": "other", "event": "o"})).await;
    assert_eq!(res["published"][0]["channel"], "socket.io#/other#");
    clients.wait_for(received("o", other[0].0), T).await;

    // disconnectSockets
    emitter.call(json!({"cmd": "disconnectSockets", "rooms": ["r"], "close": false})).await;
    clients.wait_for(disconnected(0), T).await;
    clients.assert_none(|v| v["event"] == "disconnected", QUIET).await;
    emitter.call(json!({"cmd": "close"})).await;
    assert_eq!(emitter.wait_exit(Duration::from_secs(5)).await, Some(0));
}
