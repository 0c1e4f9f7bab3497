//! `shoal serve --workers N`: the built binary as a primary with worker processes, and
//! official socket.io clients (`tests/js-redis/clients.mjs`) through the primary's port.
//!
//! - clients spread over the workers (the node ids in their socket ids), WebSocket and
//!   polling-only clients alike, and a chat broadcast reaches every client, whatever its
//!   worker (the embedded broker);
//! - `kill -9` of a worker: it is restarted, its clients reconnect and chat again;
//! - SIGTERM on the primary: every process exits, status 0; `kill -9` of the primary:
//!   the workers exit too (their stdin closes);
//! - a worker that fails at start is restarted with a growing delay.
//!
//! Needs `npm ci --prefix tests/js-redis`.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::{Deref, DerefMut};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::NodeProcess;
use support::{Shoal, request_text, signal_pid, try_exchange};

/// How long anything expected may take (the machine is shared and loaded).
const T: Duration = Duration::from_secs(30);

/// A worker as its `worker ready` log line describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Worker {
    index: u32,
    pid: u32,
    node: String,
}

/// A running `shoal serve --workers N`, killed (with its workers) if the test fails.
struct Primary(Shoal);

/// `key=value` of a tracing line.
fn field(line: &str, key: &str) -> Option<String> {
    let pat = format!(" {key}=");
    let rest = &line[line.find(&pat)? + pat.len()..];
    Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
}

impl Primary {
    /// Starts `shoal serve --port 0 --host 127.0.0.1 <args>` and waits until it listens and
    /// every worker served.
    fn start(args: &[&str]) -> Primary {
        let shoal = Shoal::serve_within(args, T);
        shoal.wait_line(|l| l.contains("cluster ready"), T);
        Primary(shoal)
    }

    /// The workers as last announced (`worker ready` lines), by index.
    fn workers(&self) -> BTreeMap<u32, Worker> {
        let mut out = BTreeMap::new();
        for l in self.lines() {
            if !l.contains("worker ready") {
                continue;
            }
            let w = Worker {
                index: field(&l, "index").unwrap().parse().unwrap(),
                pid: field(&l, "pid").unwrap().parse().unwrap(),
                node: field(&l, "node").unwrap(),
            };
            out.insert(w.index, w);
        }
        out
    }
}

impl Deref for Primary {
    type Target = Shoal;

    fn deref(&self) -> &Shoal {
        &self.0
    }
}

impl DerefMut for Primary {
    fn deref_mut(&mut self) -> &mut Shoal {
        &mut self.0
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        let pids: Vec<u32> = self.workers().values().map(|w| w.pid).collect();
        if matches!(self.child.try_wait(), Ok(None)) {
            self.kill();
        }
        for pid in pids {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).stderr(Stdio::null()).status();
        }
    }
}

fn alive(pid: u32) -> bool {
    // a zombie is not alive: it has exited and only waits to be reaped
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'),
        Err(_) => false,
    }
}

fn wait_dead(pid: u32) {
    let deadline = Instant::now() + T;
    while alive(pid) {
        assert!(Instant::now() < deadline, "process {pid} still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Official clients in one `clients.mjs` process.
struct Clients {
    p: NodeProcess,
    ids: Vec<String>,
}

impl Clients {
    async fn start() -> Clients {
        let mut p = NodeProcess::spawn("clients.mjs", &[]);
        p.wait_for_event("ready").await;
        Clients { p, ids: Vec::new() }
    }

    /// Connects `count` clients over `transports`; returns their indexes.
    async fn connect(&mut self, url: &str, count: usize, transports: &[&str], reconnection: bool) -> Vec<usize> {
        let got = self
            .p
            .call_within(
                json!({"cmd": "connect", "url": url, "count": count, "transports": transports,
                       "reconnection": reconnection, "timeout": 20000}),
                T,
            )
            .await;
        let out = shoal_testkit::record_connected(&got, &mut self.ids);
        // later waits for `connected` are about reconnections
        self.p.take_matching(|v| v["event"] == "connected");
        out
    }

    fn node_of(&self, index: usize) -> String {
        self.ids[index][..4].to_owned()
    }

    /// Every client of `indexes` joins room `lobby` (acknowledged by its worker).
    async fn join(&mut self, indexes: &[usize]) {
        for &i in indexes {
            let got = self
                .p
                .call_within(
                    json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": ["lobby"], "timeout": 20000}),
                    T,
                )
                .await;
            assert_eq!(got[0]["ok"], json!(true), "client {i} joins: {got}");
        }
    }

    /// Client `from` chats `text` in `lobby`; every client of `indexes` receives it (once).
    async fn chat_reaches(&mut self, from: usize, text: &str, indexes: &[usize]) {
        self.p
            .call(json!({"cmd": "emit", "index": from, "event": "chat", "args": [{"room": "lobby", "text": text}]}))
            .await;
        for &i in indexes {
            self.p
                .wait_for(
                    |v| {
                        v["event"] == "received"
                            && v["name"] == "chat"
                            && v["index"] == json!(i)
                            && v["args"][0]["text"] == text
                    },
                    T,
                )
                .await;
        }
        // each wait took its line: anything left is a duplicate
        let more =
            self.p.take_matching(|v| v["event"] == "received" && v["name"] == "chat" && v["args"][0]["text"] == text);
        assert!(more.is_empty(), "{text:?} delivered twice: {more:?}");
    }

    fn connect_errors(&mut self) -> Vec<Value> {
        self.p.take_matching(|v| v["event"] == "connectError")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_port_broadcasts_and_polling_sessions() {
    let primary =
        Primary::start(&["--workers", "3", "--cluster-strategy", "round-robin", "--node-id", "Clu0", "--log", "info"]);
    let workers = primary.workers();
    assert_eq!(workers.len(), 3, "{workers:?}");
    let nodes: BTreeSet<String> = workers.values().map(|w| w.node.clone()).collect();
    assert_eq!(nodes.len(), 3, "distinct node ids: {nodes:?}");
    assert!(!nodes.contains("Clu0"), "derived from the primary's id, not the same: {nodes:?}");

    let mut c = Clients::start().await;
    let ws = c.connect(&primary.url(), 9, &["websocket"], false).await;
    let polling = c.connect(&primary.url(), 6, &["polling"], false).await;
    let all: Vec<usize> = ws.iter().chain(&polling).copied().collect();
    // round-robin: every worker got WebSocket clients and polling clients
    let ws_nodes: BTreeSet<String> = ws.iter().map(|&i| c.node_of(i)).collect();
    let polling_nodes: BTreeSet<String> = polling.iter().map(|&i| c.node_of(i)).collect();
    assert_eq!(ws_nodes, nodes, "WebSocket clients on every worker");
    assert_eq!(polling_nodes, nodes, "polling clients on every worker");

    c.join(&all).await;
    // a WebSocket client's and a polling client's chat reach everyone, on every worker
    c.chat_reaches(ws[0], "from websocket", &all).await;
    c.chat_reaches(polling[1], "from polling", &all).await;
    assert!(c.connect_errors().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_is_restarted_and_its_clients_come_back() {
    let primary = Primary::start(&["--workers", "3", "--cluster-strategy", "round-robin", "--log", "info"]);
    let before = primary.workers();
    let mut c = Clients::start().await;
    let all = c.connect(&primary.url(), 9, &["websocket"], true).await;
    c.join(&all).await;
    c.chat_reaches(all[0], "before", &all).await;

    let victim = before[&1].clone();
    let on_victim: Vec<usize> = all.iter().copied().filter(|&i| c.node_of(i) == victim.node).collect();
    assert!(!on_victim.is_empty(), "round-robin put clients on worker 1");
    signal_pid(victim.pid, "9");

    // restarted: a new pid for index 1
    let deadline = Instant::now() + T;
    let restarted = loop {
        if let Some(w) = primary.workers().get(&1).filter(|w| w.pid != victim.pid) {
            break w.clone();
        }
        assert!(Instant::now() < deadline, "worker 1 not restarted; log:\n{}", primary.lines().join("\n"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(restarted.node, victim.node, "a restarted worker keeps its node id");
    assert!(primary.lines().iter().any(|l| l.contains("worker exited; restarting it") && l.contains("index=1")));

    // its clients were disconnected and reconnect on their own
    for &i in &on_victim {
        c.p.wait_for(|v| v["event"] == "disconnected" && v["index"] == json!(i), T).await;
        let back = c.p.wait_for(|v| v["event"] == "connected" && v["index"] == json!(i), T).await;
        c.ids[i] = back["id"].as_str().unwrap().to_owned();
    }
    // the others never noticed
    let others: Vec<usize> = all.iter().copied().filter(|i| !on_victim.contains(i)).collect();
    let dropped = c
        .p
        .take_matching(|v| v["event"] == "disconnected" && others.contains(&(v["index"].as_u64().unwrap() as usize)));
    assert!(dropped.is_empty(), "clients of other workers stayed connected: {dropped:?}");
    // the reconnected clients are in a fresh session: join again, and chat works for all
    c.join(&on_victim).await;
    c.chat_reaches(on_victim[0], "after", &all).await;
    c.chat_reaches(others[0], "after, from another worker", &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_every_process_with_status_0() {
    let mut primary = Primary::start(&["--workers", "2", "--no-demo", "--log", "info"]);
    let pids: Vec<u32> = primary.workers().values().map(|w| w.pid).collect();
    assert_eq!(pids.len(), 2);
    let mut c = Clients::start().await;
    let all = c.connect(&primary.url(), 4, &["websocket"], false).await;
    // least-connections (the default) spreads them
    let on: BTreeSet<String> = all.iter().map(|&i| c.node_of(i)).collect();
    assert_eq!(on.len(), 2, "clients on both workers: {:?}", c.ids);

    primary.signal("TERM");
    let status = primary.wait_exit(T).expect("the primary exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    for pid in pids {
        wait_dead(pid);
    }
    // the clients were told: the server closed their sessions
    for i in all {
        c.p.wait_for(|v| v["event"] == "disconnected" && v["index"] == json!(i), T).await;
    }
    let log = primary.lines().join("\n");
    assert!(log.contains("SIGTERM") && log.contains("shoal stopped"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_exit_when_the_primary_is_killed() {
    let mut primary = Primary::start(&["--workers", "2", "--no-demo", "--log", "info"]);
    let pids: Vec<u32> = primary.workers().values().map(|w| w.pid).collect();
    primary.signal("KILL");
    primary.wait_exit(T).expect("killed");
    // their stdin reached its end: they stop on their own, no orphan remains
    for pid in pids {
        wait_dead(pid);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_failing_at_start_is_restarted_with_backoff() {
    // nothing listens on this port: every worker fails to reach Redis at start
    let dead = shoal_testkit::free_port();
    let redis = format!("redis://127.0.0.1:{dead}");
    let mut primary = Shoal::spawn(&[
        "serve",
        "--port",
        "0",
        "--host",
        "127.0.0.1",
        "--no-demo",
        "--redis",
        &redis,
        "--workers",
        "2",
        "--log",
        "info",
    ]);
    // the backoff (100 ms doubling) makes about 5 restarts per worker in 4 s; a busy
    // loop would make hundreds
    std::thread::sleep(Duration::from_secs(4));
    let _ = Command::new("kill").arg("-TERM").arg(primary.pid().to_string()).status();
    let status = primary.wait_exit(T).expect("the primary did not stop");
    assert!(status.success(), "{status}");
    let lines = primary.lines();
    let restarts: Vec<&String> =
        lines.iter().filter(|l| l.contains("worker exited; restarting it") && l.contains("index=0")).collect();
    assert!(restarts.len() >= 2, "worker 0 was restarted; log:\n{}", lines.join("\n"));
    assert!(restarts.len() <= 10, "not a busy loop: {} restarts in 4 s", restarts.len());
    let delays: Vec<String> = restarts.iter().filter_map(|l| field(l, "restart_in")).collect();
    assert_eq!(delays[..2], ["100ms", "200ms"], "the delay doubles: {delays:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_workers_share_broadcasts_through_redis() {
    let redis = shoal_testkit::RedisServer::start().await;
    let url = redis.url();
    let primary =
        Primary::start(&["--workers", "2", "--cluster-strategy", "round-robin", "--redis", &url, "--log", "info"]);
    let nodes: BTreeSet<String> = primary.workers().values().map(|w| w.node.clone()).collect();
    assert_eq!(nodes.len(), 2);
    // each worker subscribed its own request channel in Redis: the classic adapter runs
    // over Redis, not over the embedded broker
    let deadline = Instant::now() + T;
    while redis.numsub("socket.io-request#/#").await != 2 {
        assert!(Instant::now() < deadline, "the workers did not subscribe in Redis");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = Clients::start().await;
    let all = c.connect(&primary.url(), 4, &["websocket"], false).await;
    let on: BTreeSet<String> = all.iter().map(|&i| c.node_of(i)).collect();
    assert_eq!(on, nodes, "clients on both workers");
    c.join(&all).await;
    c.chat_reaches(all[0], "through redis", &all).await;
}

/// `GET path` over a new connection: the status code and the body.
async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    http(addr, "GET", path, "").await
}

/// `method path` (with a text `body` for a POST) over a new connection, answered within
/// `T`: the status code (0 if the answer has none) and the body.
async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let answer = try_exchange(addr, &request_text(addr, method, path, &[], body), T).await;
    answer.map_or((0, String::new()), |a| (a.status, a.text()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_on_the_primary_drains_every_worker() {
    let mut primary = Primary::start(&["--workers", "2", "--no-demo", "--drain-grace", "1500", "--log", "info"]);
    let mut c = Clients::start().await;
    let all = c.connect(&primary.url(), 4, &["websocket"], false).await;
    let (status, _) = http_get(primary.addr, "/health").await;
    assert_eq!(status, 200);

    primary.signal("USR1");
    let deadline = Instant::now() + T;
    while primary.lines().iter().filter(|l| l.contains("the primary asks to drain")).count() < 2 {
        assert!(Instant::now() < deadline, "the workers were not asked to drain; log:\n{}", primary.lines().join("\n"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // whichever worker answers: draining, and new sessions are refused
    for _ in 0..4 {
        let (status, body) = http_get(primary.addr, "/health").await;
        assert_eq!(status, 503, "{body}");
        assert!(body.contains("draining"), "{body}");
    }
    let (status, body) = http_get(primary.addr, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 503, "a new session is refused: {body}");
    // after the grace the clients are closed the way that makes them reconnect
    for i in all {
        let v = c.p.wait_for(|v| v["event"] == "disconnected" && v["index"] == json!(i), T).await;
        assert_eq!(v["reason"], "transport close", "{v}");
    }
    // the primary did not die of the signal; SIGTERM stops everything
    assert!(primary.wait_exit(Duration::from_millis(200)).is_none(), "the primary is still running");
    primary.signal("TERM");
    let status = primary.wait_exit(T).expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
}

/// Two cluster "hosts" on one Redis behind no sticky balancer: a polling session opened
/// through one host's primary works through the other's (its worker forwards the
/// requests to the owning worker, announced in the membership).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_sessions_work_through_another_cluster_host() {
    let redis = shoal_testkit::RedisServer::start().await;
    let url = redis.url();
    let host = |id: &str| Primary::start(&["--workers", "2", "--node-id", id, "--redis", &url, "--log", "info"]);
    let a = host("hstA");
    let b = host("hstB");
    let a_nodes: BTreeSet<String> = a.workers().values().map(|w| w.node.clone()).collect();
    let b_nodes: BTreeSet<String> = b.workers().values().map(|w| w.node.clone()).collect();
    assert!(a_nodes.is_disjoint(&b_nodes), "{a_nodes:?} {b_nodes:?}");
    // every worker is announced in Redis
    let deadline = Instant::now() + T;
    for node in a_nodes.iter().chain(&b_nodes) {
        let key = format!("socket.io:node:{node}");
        while redis.cmd(&["EXISTS", key.as_str()]).await.ok().and_then(|v| v.as_int()) != Some(1) {
            assert!(Instant::now() < deadline, "{node} not announced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    for round in 0..4 {
        // open on host A, go on through host B
        let (status, body) = http_get(a.addr, "/socket.io/?EIO=4&transport=polling").await;
        assert_eq!(status, 200, "{body}");
        let open: Value = serde_json::from_str(body.trim_start_matches('0')).expect("open packet");
        let sid = open["sid"].as_str().expect("sid").to_owned();
        assert!(a_nodes.contains(&sid[..4]), "session {sid} on one of host A's workers");
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={sid}");
        // (the other host's workers learn of A's workers from Redis within moments)
        let deadline = Instant::now() + T;
        loop {
            let (status, body) = http(b.addr, "POST", &path, "40").await;
            if status == 200 {
                assert_eq!(body, "ok");
                break;
            }
            assert!(round == 0 && Instant::now() < deadline, "POST through host B: {status} {body}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, body) = http_get(b.addr, &path).await;
        assert_eq!(status, 200, "GET through host B: {body}");
        assert!(body.starts_with("40{\"sid\":"), "the namespace CONNECT answer, from the owner: {body}");
    }

    // host B's primary sent them straight to their owner on host A (found in the
    // membership): none of B's workers had to forward one
    for node in &b_nodes {
        let key = format!("socket.io:node:{node}");
        let entry = redis.cmd(&["GET", key.as_str()]).await.expect("GET the node's key");
        let entry: Value = serde_json::from_str(entry.as_str().expect("the node's entry")).expect("JSON entry");
        let addr: SocketAddr = entry["addr"].as_str().expect("addr").parse().expect("address");
        let (status, body) = http_get(addr, "/health").await;
        assert_eq!(status, 200, "{body}");
        let health: Value = serde_json::from_str(&body).expect("health JSON");
        assert_eq!(health["forwarded"], 0, "worker {node} of host B forwarded: {health}");
    }

    // a sid no host owns is still refused cleanly
    let (status, body) = http_get(b.addr, "/socket.io/?EIO=4&transport=polling&sid=zzzzAAAAAAAAAAAAAAAA").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("\"code\":1"), "{body}");
}
