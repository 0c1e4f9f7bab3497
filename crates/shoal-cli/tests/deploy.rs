//! The load-balancer configurations of `docs/deploy/`, run for real: nginx or HAProxy
//! (started from the documented file, its addresses replaced by this test's ports) in
//! front of 3 `shoal serve --redis` nodes; 300 official polling-only clients connect
//! through it, each exchanges events with the server, and one broadcast (published with
//! `shoal emit`) reaches every one of them. Not one connect error, disconnection or HTTP
//! 400 is allowed. The nginx round-robin case has no stickiness at all: it works through
//! forwarding between nodes alone.
//!
//! Needs nginx and haproxy (`scripts/deps`; each case is skipped, loudly, when its binary
//! is missing), `redis-server` and `npm ci --prefix tests/js-redis`.

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_testkit::{NodeProcess, RedisServer, free_port, repo_root};
use support::{SHOAL, Shoal, get};

/// The number of clients of every case.
const CLIENTS: usize = 300;

/// One case at a time: each runs 3 nodes, a proxy and 300 clients.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The binary `name` in `PATH` or the usual sbin directories.
fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = std::env::temp_dir().join(format!("shoal-deploy-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(p.join("logs")).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running proxy, killed on drop.
struct Proxy {
    child: Child,
    dir: TempDir,
    addr: SocketAddr,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The documented file `name`, its listener and its three nodes replaced by ours.
fn template(name: &str, listen: SocketAddr, nodes: &[SocketAddr]) -> String {
    let path = repo_root().join("docs").join("deploy").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = text.replace("127.0.0.1:8080", &listen.to_string());
    for (i, node) in nodes.iter().enumerate() {
        let documented = format!("127.0.0.1:{}", 3001 + i);
        assert!(out.contains(&documented), "{name} names {documented}");
        out = out.replace(&documented, &node.to_string());
    }
    out
}

fn start_nginx(binary: &Path, file: &str, nodes: &[SocketAddr]) -> Proxy {
    let dir = TempDir::new("nginx");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let conf = dir.0.join("nginx.conf");
    // the access log in the test's directory (it is counted for 400s below)
    let text = template(file, addr, nodes).replacen(
        "\nhttp {",
        &format!("\nhttp {{\n    access_log {}/logs/access.log;", dir.0.display()),
        1,
    );
    std::fs::write(&conf, text).unwrap();
    // one process (no master/worker split), so that killing it on drop leaves no worker
    // behind holding the port
    let global = format!(
        "daemon off; master_process off; pid {0}/nginx.pid; error_log {0}/logs/error.log warn;",
        dir.0.display()
    );
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&conf)
        .args(["-g", &global])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start nginx");
    Proxy { child, dir, addr }
}

fn start_haproxy(binary: &Path, file: &str, nodes: &[SocketAddr]) -> Proxy {
    let dir = TempDir::new("haproxy");
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let conf = dir.0.join("haproxy.cfg");
    std::fs::write(&conf, template(file, addr, nodes)).unwrap();
    let child = Command::new(binary)
        .arg("-f")
        .arg(&conf)
        .arg("-db")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start haproxy");
    Proxy { child, dir, addr }
}

/// Waits until every node answers `/health` through the proxy (each node has been seen).
async fn wait_ready(proxy: &Proxy, nodes: &[Shoal]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if tokio::net::TcpStream::connect(proxy.addr).await.is_ok() {
            let h = get(proxy.addr, "/health").await;
            if h.status == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "the proxy did not answer /health in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for n in nodes {
        assert_eq!(get(n.addr, "/health").await.status, 200);
    }
}

/// Which load balancer.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Nginx,
    Haproxy,
}

/// How the configuration spreads the requests of one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Routing {
    /// Every request reaches the session's node: the nodes forward nothing.
    Sticky,
    /// Requests land anywhere: the nodes must forward.
    Spread,
}

/// Requests forwarded by each node so far (from its `/health`).
async fn forwarded(nodes: &[Shoal]) -> Vec<u64> {
    let mut out = Vec::new();
    for n in nodes {
        let answer = get(n.addr, "/health").await;
        let v: Value = serde_json::from_slice(&answer.body).expect("health JSON");
        out.push(v["forwarded"].as_u64().expect("forwarded count"));
    }
    out
}

/// Runs one configuration end to end.
async fn run_case(kind: Kind, file: &str, with_credentials: bool, routing: Routing) {
    let binary_name = match kind {
        Kind::Nginx => "nginx",
        Kind::Haproxy => "haproxy",
    };
    let Some(binary) = find_binary(binary_name) else {
        eprintln!(
            "\n!!!!! SKIPPED {file}: `{binary_name}` is not installed (run scripts/deps); the deploy configuration \
             was NOT tested !!!!!\n"
        );
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let nodes: Vec<Shoal> = ["dep1", "dep2", "dep3"]
        .iter()
        .map(|id| Shoal::serve(&["--redis", &url, "--node-id", id, "--log", "warn,shoal::node=info"]))
        .collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let proxy = match kind {
        Kind::Nginx => start_nginx(&binary, file, &addrs),
        Kind::Haproxy => start_haproxy(&binary, file, &addrs),
    };
    wait_ready(&proxy, &nodes).await;
    // the nodes know each other (each one's announcement is in Redis)
    let deadline = Instant::now() + Duration::from_secs(20);
    for id in ["dep1", "dep2", "dep3"] {
        let key = format!("socket.io:node:{id}");
        while redis.cmd(&["EXISTS", key.as_str()]).await.ok().and_then(|v| v.as_int()) != Some(1) {
            assert!(Instant::now() < deadline, "{id} not announced");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // (watchers subscribe before they scan: what is in Redis now is known to every node
    // within one announcement interval)
    tokio::time::sleep(Duration::from_secs(3)).await;

    let base = format!("http://{}", proxy.addr);
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    let mut connect = json!({"cmd": "connect", "url": base, "count": CLIENTS, "transports": ["polling"],
        "timeout": 120_000});
    if with_credentials {
        connect["withCredentials"] = json!(true);
    }
    let connected = clients.call_within(connect, Duration::from_secs(180)).await;
    assert_eq!(connected.as_array().map(Vec::len), Some(CLIENTS));
    let ids: Vec<&str> = connected.as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    let on_nodes = |prefix: &str| ids.iter().filter(|id| id.starts_with(prefix)).count();
    eprintln!(
        "{file}: {CLIENTS} clients connected (dep1 {}, dep2 {}, dep3 {})",
        on_nodes("dep1"),
        on_nodes("dep2"),
        on_nodes("dep3")
    );

    // every client exchanges events with its session's node: a join and a chat, each
    // acknowledged, the chat coming back to its sender
    for i in 0..CLIENTS {
        let room = format!("c{i}");
        let joined = clients
            .call_within(
                json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": [room], "timeout": 60_000}),
                Duration::from_secs(90),
            )
            .await;
        assert_eq!(joined, json!([{"ok": true, "room": room}]), "client {i}");
        let chat = clients
            .call_within(
                json!({"cmd": "emitWithAck", "index": i, "event": "chat", "args": [{"room": room, "text": format!("m{i}")}],
                    "timeout": 60_000}),
                Duration::from_secs(90),
            )
            .await;
        assert_eq!(chat[0]["ok"], json!(true), "client {i}: {chat}");
    }
    let chats = clients
        .wait_for_n(|v| v["event"] == "received" && v["name"] == "chat", CLIENTS, Duration::from_secs(120))
        .await;
    for v in &chats {
        let i = v["index"].as_u64().unwrap();
        assert_eq!(v["args"][0]["text"], json!(format!("m{i}")), "each client gets its own chat back");
    }

    // a broadcast to everyone, from outside (Redis), reaches all
    let status = Command::new(SHOAL)
        .args(["emit", "--redis", &url, "news", "\"to all\""])
        .stdout(Stdio::null())
        .status()
        .expect("run shoal emit");
    assert!(status.success(), "shoal emit failed");
    let news = clients
        .wait_for_n(|v| v["event"] == "received" && v["name"] == "news", CLIENTS, Duration::from_secs(120))
        .await;
    let mut who: Vec<u64> = news.iter().map(|v| v["index"].as_u64().unwrap()).collect();
    who.sort_unstable();
    who.dedup();
    assert_eq!(who.len(), CLIENTS, "every client got the broadcast once");

    // not one connect error, disconnection or 400
    let bad: Vec<Value> = clients.take_matching(|v| v["event"] == "connectError" || v["event"] == "disconnected");
    assert!(bad.is_empty(), "{file}: {} errors/disconnections: {:?}", bad.len(), &bad[..bad.len().min(10)]);
    if let Kind::Nginx = kind {
        let log = std::fs::read_to_string(proxy.dir.0.join("logs").join("access.log")).unwrap_or_default();
        let lines = log.lines().count();
        let four_hundreds: Vec<&str> = log.lines().filter(|l| l.contains("\" 400 ")).collect();
        assert!(lines > CLIENTS, "nginx logged the traffic ({lines} lines)");
        assert!(four_hundreds.is_empty(), "{file}: HTTP 400s: {:?}", &four_hundreds[..four_hundreds.len().min(10)]);
    }
    // stickiness is the balancer's, not hidden by forwarding; without it, forwarding works
    let counts = forwarded(&nodes).await;
    eprintln!("{file}: requests forwarded by the nodes: {counts:?}");
    match routing {
        Routing::Sticky => assert!(counts.iter().all(|&c| c == 0), "{file} is sticky, yet nodes forwarded {counts:?}"),
        Routing::Spread => {
            assert!(counts.iter().sum::<u64>() > 0, "{file} spreads requests, yet nothing was forwarded")
        }
    }
    clients.close_stdin();
    let _ = clients.wait_exit(Duration::from_secs(10)).await;
    drop(proxy);
    drop(nodes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_round_robin_works_through_forwarding() {
    run_case(Kind::Nginx, "nginx-round-robin.conf", false, Routing::Spread).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ip_hash() {
    run_case(Kind::Nginx, "nginx-ip-hash.conf", false, Routing::Sticky).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_cookie() {
    run_case(Kind::Haproxy, "haproxy-cookie.cfg", true, Routing::Sticky).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_round_robin() {
    run_case(Kind::Haproxy, "haproxy-round-robin.cfg", false, Routing::Spread).await;
}

/// Behind nginx round-robin, a drained node (SIGUSR1) ends with no connection while its
/// clients carry on on the other nodes: they see "transport close", reconnect through
/// nginx (the drained node's 503 sends their handshakes to the next node) and work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_round_robin_drained_node_hands_its_clients_over() {
    const N: usize = 30;
    let Some(binary) = find_binary("nginx") else {
        eprintln!("\n!!!!! SKIPPED the drain behind nginx: `nginx` is not installed (run scripts/deps) !!!!!\n");
        return;
    };
    let _one = ONE_AT_A_TIME.lock().await;
    let redis = RedisServer::start().await;
    let url = redis.url();
    let nodes: Vec<Shoal> = ["drA1", "drB2", "drC3"]
        .iter()
        .map(|id| {
            Shoal::serve(&["--redis", &url, "--node-id", id, "--drain-grace", "2000", "--log", "warn,shoal::node=info"])
        })
        .collect();
    let addrs: Vec<SocketAddr> = nodes.iter().map(|n| n.addr).collect();
    let proxy = start_nginx(&binary, "nginx-round-robin.conf", &addrs);
    wait_ready(&proxy, &nodes).await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // default transports: polling, then an upgrade to WebSocket (maybe through another node)
    let mut clients = NodeProcess::spawn("clients.mjs", &[]);
    let base = format!("http://{}", proxy.addr);
    let connected = clients
        .call_within(
            json!({"cmd": "connect", "url": base, "count": N, "reconnection": true, "timeout": 60_000}),
            Duration::from_secs(90),
        )
        .await;
    let on_drained: Vec<u64> = connected
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"].as_str().is_some_and(|id| id.starts_with("drA1")))
        .map(|c| c["index"].as_u64().unwrap())
        .collect();
    assert!(!on_drained.is_empty(), "round-robin put some clients on the first node");
    // (connected events of the first connections, consumed)
    clients.wait_for_n(|v| v["event"] == "connected", N, Duration::from_secs(30)).await;

    nodes[0].signal("USR1");
    // the drained node's clients are closed after the grace period and reconnect elsewhere
    let closed = clients.wait_for_n(|v| v["event"] == "disconnected", on_drained.len(), Duration::from_secs(60)).await;
    for v in &closed {
        assert_eq!(v["reason"], json!("transport close"), "{v}");
        assert!(on_drained.contains(&v["index"].as_u64().unwrap()), "only the drained node's clients: {v}");
    }
    let back = clients.wait_for_n(|v| v["event"] == "connected", on_drained.len(), Duration::from_secs(60)).await;
    for v in &back {
        let id = v["id"].as_str().unwrap();
        assert!(!id.starts_with("drA1"), "reconnected on another node: {v}");
    }
    let h = get(nodes[0].addr, "/health").await;
    assert_eq!(h.status, 503);
    assert_eq!(h.json()["connections"], json!(0), "the drained node ends with no connection");
    // everyone works: a join acknowledged by whichever node runs its session
    for i in 0..N {
        let joined = clients
            .call_within(
                json!({"cmd": "emitWithAck", "index": i, "event": "join", "args": ["after"], "timeout": 30_000}),
                Duration::from_secs(60),
            )
            .await;
        assert_eq!(joined[0]["ok"], json!(true), "client {i}: {joined}");
    }
    // no other disconnection, and no handshake ever failed (nginx retried the 503s)
    let bad = clients.take_matching(|v| v["event"] == "disconnected" || v["event"] == "connectError");
    assert!(bad.is_empty(), "{bad:?}");
    clients.close_stdin();
    let _ = clients.wait_exit(Duration::from_secs(10)).await;
}
