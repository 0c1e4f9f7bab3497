//! The balancer library against small in-process upstreams that behave like Shoal nodes
//! on the points the balancer relies on (`/health`, sids that start with the node id,
//! WebSocket upgrades): keep-alive routing, tunnels, passive health and retries,
//! draining, id learning. (The same behaviours against real `shoal serve` processes and
//! official clients: crates/shoal-cli/tests/balance.rs.)

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shoal_balance::{Balancer, BalancerBuilder, Directory, ForeignSids, HealthConfig, NodeId, Strategy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A fake node.
struct Mock {
    addr: SocketAddr,
    draining: Arc<AtomicBool>,
    /// Handshakes get 503 while /health still answers 200 (a drain the balancer has
    /// not seen yet).
    refusing: Arc<AtomicBool>,
    handshakes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Mock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `id`'s node: `/health` (with `"node"` when `report_id`), handshakes answering a sid of
/// `id`, requests with one of its sids answering `id`, others 400, and WebSocket upgrades
/// echoing bytes.
async fn mock(id: &'static str, report_id: bool) -> Mock {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let draining = Arc::new(AtomicBool::new(false));
    let refusing = Arc::new(AtomicBool::new(false));
    let handshakes = Arc::new(AtomicU64::new(0));
    let (d, h, f) = (draining.clone(), handshakes.clone(), refusing.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else { return };
            let (d, h, f) = (d.clone(), h.clone(), f.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |mut req: Request<Incoming>| {
                    let (d, h, f) = (d.clone(), h.clone(), f.clone());
                    async move {
                        let query = req.uri().query().unwrap_or("").to_owned();
                        let forwarded = format!(
                            "{} {}",
                            req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok()).unwrap_or("-"),
                            req.headers().get("x-forwarded-proto").and_then(|v| v.to_str().ok()).unwrap_or("-")
                        );
                        let marked = req.headers().get("x-shoal-forwarded").map(|v| v.as_bytes().to_vec());
                        let mut r = if req.uri().path() == "/health" {
                            let body = if report_id {
                                format!(r#"{{"status":"ok","node":"{id}"}}"#)
                            } else {
                                r#"{"status":"ok"}"#.to_owned()
                            };
                            let mut r = Response::new(Full::new(Bytes::from(body)));
                            if d.load(Ordering::SeqCst) {
                                *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            }
                            r
                        } else if let Some(sid) = query.split('&').find_map(|p| p.strip_prefix("sid=")) {
                            if sid.starts_with(id) {
                                Response::new(Full::new(Bytes::from(id)))
                            } else {
                                let mut r = Response::new(Full::new(Bytes::from("unknown")));
                                *r.status_mut() = StatusCode::BAD_REQUEST;
                                r
                            }
                        } else if f.load(Ordering::SeqCst) {
                            let mut r =
                                Response::new(Full::new(Bytes::from(r#"{"code":4,"message":"Server draining"}"#)));
                            *r.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
                            r
                        } else if query.contains("transport=websocket") {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let Ok(up) = on.await else { return };
                                let mut io = TokioIo::new(up);
                                let mut buf = [0u8; 1024];
                                loop {
                                    let n = io.read(&mut buf).await.unwrap_or(0);
                                    if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            });
                            let mut r = Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                            r.headers_mut().insert("connection", "upgrade".parse().unwrap());
                            r.headers_mut().insert("upgrade", "websocket".parse().unwrap());
                            r
                        } else {
                            h.fetch_add(1, Ordering::SeqCst);
                            let n = h.load(Ordering::SeqCst);
                            let sid = format!("{id}{n:016}");
                            Response::new(Full::new(Bytes::from(format!(r#"0{{"sid":"{sid}","upgrades":[]}}"#))))
                        };
                        r.headers_mut().insert("x-node", id.parse().unwrap());
                        r.headers_mut().insert("x-seen-forwarded", forwarded.parse().unwrap());
                        if let Some(m) = marked {
                            r.headers_mut()
                                .insert("x-seen-shoal-forwarded", hyper::header::HeaderValue::from_bytes(&m).unwrap());
                        }
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Mock { addr, draining, refusing, handshakes, task }
}

/// A balancer being served by [`serve`]: where, and how to stop it.
struct Served {
    addr: SocketAddr,
    /// Stops serving when used or dropped.
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Stops serving and waits until `serve` has returned (successfully).
    async fn finish(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
    }
}

/// Serves `b` on a free port until the returned [`Served::stop`] is used or dropped.
async fn serve(b: &Balancer) -> Served {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let b = b.clone();
    let task = tokio::spawn(async move {
        b.serve(l, async move {
            let _ = rx.await;
        })
        .await
        .unwrap();
    });
    Served { addr, stop, task }
}

/// Serves `b` as [`serve`] does, then waits until `n` of its upstreams are eligible
/// (`what` names that wait when it fails).
async fn serve_eligible(b: &Balancer, n: usize, what: &str) -> Served {
    let served = serve(b).await;
    wait_until(what, || b.upstreams().eligible_count() == n).await;
    served
}

/// The request that opens a WebSocket tunnel to an upstream.
const WS_UPGRADE: &[u8] =
    b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

/// Connects to `addr`, writes `request` as it is and reads once (within 10 s): the
/// stream, still open, and what that one read got.
async fn raw(addr: SocketAddr, request: &[u8]) -> (TcpStream, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await.unwrap().unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    (s, answer)
}

/// Sends one request on `s` (kept alive) and reads a Content-Length response.
async fn exchange(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = text[9..12].parse().unwrap();
                return (status, text[end + 4..end + 4 + len].to_owned());
            }
        }
    }
}

async fn handshake(s: &mut TcpStream) -> String {
    let (status, body) = exchange(s, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 200, "{body}");
    body[9..29].to_owned()
}

async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 20 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn fast_health() -> HealthConfig {
    HealthConfig::default().interval(Duration::from_millis(200)).timeout(Duration::from_millis(500))
}

/// A builder with an upstream at each of `addrs` (in order, ids to be learned) and
/// [`fast_health`] checks.
fn fast_builder(addrs: &[SocketAddr]) -> BalancerBuilder {
    let mut b = Balancer::builder().health(fast_health());
    for &addr in addrs {
        b = b.upstream(addr);
    }
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_requests_are_routed_each_on_its_own() {
    let (a, b) = (mock("aaaa", true).await, mock("bbbb", false).await);
    let bal = fast_builder(&[a.addr, b.addr]).strategy(Strategy::RoundRobin).build().unwrap();
    // ids learned: from /health for a, from a probe handshake for b
    let served = serve_eligible(&bal, 2, "both ids known").await;
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    let first = handshake(&mut s).await;
    let second = handshake(&mut s).await;
    let mut nodes = [first[..4].to_owned(), second[..4].to_owned()];
    nodes.sort();
    assert_eq!(nodes, ["aaaa", "bbbb"]);
    // one client connection, requests of both sessions interleaved
    for _ in 0..5 {
        for sid in [&first, &second] {
            let (status, body) = exchange(&mut s, &format!("/socket.io/?EIO=4&transport=polling&sid={sid}")).await;
            assert_eq!((status, body.as_str()), (200, &sid[..4]));
        }
    }
    let (status, body) = exchange(&mut s, "/socket.io/?EIO=4&transport=polling&sid=zzzz0000000000000000").await;
    assert_eq!((status, body.as_str()), (400, r#"{"code":1,"message":"Session ID unknown"}"#));
    assert_eq!(bal.stats().unknown_sid.load(Ordering::Relaxed), 1);
    drop(s);
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_are_tunnelled_and_counted() {
    let a = mock("aaaa", true).await;
    let bal = fast_builder(&[a.addr]).build().unwrap();
    let served = serve_eligible(&bal, 1, "id known").await;
    let (mut s, head) = raw(served.addr, WS_UPGRADE).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"hello through the tunnel").await.unwrap();
    let mut got = vec![0u8; 24];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"hello through the tunnel");
    let up = &bal.upstreams().list()[0];
    assert_eq!(up.active, 1, "the tunnel counts for least-connections: {up:?}");
    assert!(bal.open_connections() >= 1);
    drop(s);
    wait_until("tunnel closed", || bal.upstreams().list()[0].active == 0).await;
    wait_until("connection released", || bal.open_connections() == 0).await;
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_upstream_is_skipped_and_handshakes_retried() {
    let a = mock("aaaa", true).await;
    // a port with nothing listening
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let bal = Balancer::builder()
        .strategy(Strategy::RoundRobin)
        .upstream(a.addr)
        .upstream_with_id("dead".parse().unwrap(), dead)
        // no active checks: only the passive ones act
        .health(HealthConfig::default().interval(Duration::ZERO))
        .build()
        .unwrap();
    assert_eq!(bal.upstreams().eligible_count(), 1, "a's id is not known without checks");
    bal.upstreams().add("aaaa".parse().unwrap(), a.addr);
    assert_eq!(bal.upstreams().eligible_count(), 2);
    let served = serve(&bal).await;
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    for _ in 0..4 {
        assert!(handshake(&mut s).await.starts_with("aaaa"));
    }
    assert!(bal.stats().retried.load(Ordering::Relaxed) >= 1);
    assert_eq!(bal.upstreams().eligible_count(), 1, "the dead one is out");
    // a sid of the dead node: Session ID unknown
    let (status, _) = exchange(&mut s, "/socket.io/?EIO=4&transport=polling&sid=dead0000000000000000").await;
    assert_eq!(status, 400);
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn draining_upstream_takes_no_new_sessions_but_keeps_its_own() {
    let (a, b) = (mock("aaaa", true).await, mock("bbbb", true).await);
    let bal = fast_builder(&[a.addr, b.addr]).build().unwrap();
    let served = serve_eligible(&bal, 2, "both in").await;
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    let mut sid_b = handshake(&mut s).await;
    while !sid_b.starts_with("bbbb") {
        sid_b = handshake(&mut s).await;
    }
    b.draining.store(true, Ordering::SeqCst);
    wait_until("b draining", || bal.upstreams().eligible_count() == 1).await;
    let before = b.handshakes.load(Ordering::SeqCst);
    for _ in 0..6 {
        assert!(handshake(&mut s).await.starts_with("aaaa"));
    }
    assert_eq!(b.handshakes.load(Ordering::SeqCst), before);
    let (status, body) = exchange(&mut s, &format!("/socket.io/?EIO=4&transport=polling&sid={sid_b}")).await;
    assert_eq!((status, body.as_str()), (200, "bbbb"));
    let info = bal.upstreams().list().into_iter().find(|u| u.id == Some("bbbb".parse::<NodeId>().unwrap())).unwrap();
    assert!(info.draining && info.healthy && !info.eligible);
    b.draining.store(false, Ordering::SeqCst);
    wait_until("b back", || bal.upstreams().eligible_count() == 2).await;
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_and_added_upstreams_take_effect_at_once() {
    let (a, b) = (mock("aaaa", true).await, mock("bbbb", true).await);
    let bal = fast_builder(&[a.addr]).build().unwrap();
    let served = serve_eligible(&bal, 1, "a in").await;
    let ups = bal.upstreams().clone();
    ups.add_addr(b.addr);
    wait_until("b in", || ups.eligible_count() == 2).await;
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..6 {
        seen.insert(handshake(&mut s).await[..4].to_owned());
    }
    assert_eq!(seen.len(), 2, "least-connections spreads: {seen:?}");
    assert!(ups.remove("aaaa".parse().unwrap()));
    for _ in 0..4 {
        assert!(handshake(&mut s).await.starts_with("bbbb"));
    }
    let (status, _) = exchange(&mut s, "/socket.io/?EIO=4&transport=polling&sid=aaaa0000000000000001").await;
    assert_eq!(status, 400);
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_and_idle_timeout() {
    let a = mock("aaaa", true).await;
    let bal =
        fast_builder(&[a.addr]).max_connections(1).client_idle_timeout(Duration::from_millis(1500)).build().unwrap();
    let served = serve_eligible(&bal, 1, "a in").await;
    // the only slot
    let mut first = TcpStream::connect(served.addr).await.unwrap();
    handshake(&mut first).await;
    // a second client waits in the backlog: no answer while the first holds the slot
    let mut second = TcpStream::connect(served.addr).await.unwrap();
    second.write_all(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut b = [0u8; 16];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), second.read(&mut b)).await.is_err(),
        "served beyond --max-connections"
    );
    // the first connection idles out, which frees the slot
    let n = tokio::time::timeout(Duration::from_secs(20), first.read(&mut b)).await.unwrap().unwrap();
    assert_eq!(n, 0, "the idle connection is closed");
    assert!(bal.stats().timed_out.load(Ordering::Relaxed) >= 1);
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&buf).contains("\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(20), second.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
    }
    assert!(String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 200"));
    drop(second);
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_tunnels_up_to_the_drain_timeout() {
    let a = mock("aaaa", true).await;
    let bal = fast_builder(&[a.addr]).drain_timeout(Duration::from_millis(800)).build().unwrap();
    let Served { addr, stop, task } = serve_eligible(&bal, 1, "a in").await;
    let (mut s, head) = raw(addr, WS_UPGRADE).await;
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let _ = stop.send(());
    // new clients are refused once the listener is gone; the tunnel works meanwhile
    wait_until("listener closed", || std::net::TcpStream::connect(addr).is_err()).await;
    s.write_all(b"still here").await.unwrap();
    let mut got = [0u8; 10];
    s.read_exact(&mut got).await.unwrap();
    assert_eq!(&got, b"still here");
    // serve returns at the drain timeout although the tunnel is open
    tokio::time::timeout(Duration::from_secs(20), task).await.expect("serve returned").unwrap();
    assert!(bal.open_connections() >= 1, "the tunnel was still open");
}

/// Sends a handshake with extra header lines on a fresh connection; the sid's node.
async fn handshake_with(addr: SocketAddr, extra: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n{extra}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0);
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let body = &text[end + 4..];
            if body.len() >= 29 || (!text.starts_with("HTTP/1.1 200") && text.ends_with('}')) {
                let status = text[9..12].parse().unwrap();
                return (status, if status == 200 { body[9..13].to_owned() } else { body.to_owned() });
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_and_ip_hash_strategies() {
    let (a, b, c) = (mock("aaaa", true).await, mock("bbbb", true).await, mock("cccc", true).await);
    let cookie = fast_builder(&[a.addr, b.addr, c.addr])
        .strategy(Strategy::Cookie { name: "io".to_owned() })
        .on_missing(shoal_balance::OnMissing::Refuse)
        .build()
        .unwrap();
    let served = serve_eligible(&cookie, 3, "3 in").await;
    let addr = served.addr;
    // an io cookie holding a sid: back to that sid's node
    for node in ["aaaa", "bbbb", "cccc", "bbbb"] {
        let (status, got) = handshake_with(addr, &format!("Cookie: x=1; io={node}0000000000000042\r\n")).await;
        assert_eq!((status, got.as_str()), (200, node));
    }
    // any other value: consistent
    let (_, first) = handshake_with(addr, "Cookie: io=opaque-value\r\n").await;
    for _ in 0..5 {
        assert_eq!(handshake_with(addr, "Cookie: io=opaque-value\r\n").await.1, first);
    }
    // missing: refused with a message
    let (status, body) = handshake_with(addr, "").await;
    assert_eq!(status, 400);
    assert!(body.contains("io cookie"), "{body}");
    assert_eq!(cookie.stats().refused.load(Ordering::Relaxed), 1);
    served.finish().await;

    let ip = fast_builder(&[a.addr, b.addr, c.addr]).strategy(Strategy::IpHash).build().unwrap();
    let served = serve_eligible(&ip, 3, "3 in").await;
    let addr = served.addr;
    let (_, owner) = handshake_with(addr, "").await;
    for _ in 0..6 {
        assert_eq!(handshake_with(addr, "").await.1, owner, "one client IP, one node");
    }
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_refused_by_a_draining_node_goes_to_another() {
    let (a, b) = (mock("aaaa", true).await, mock("bbbb", true).await);
    let bal = Balancer::builder()
        .strategy(Strategy::RoundRobin)
        .upstream(a.addr)
        .upstream(b.addr)
        // checks far apart: the balancer does not know yet that b drains
        .health(HealthConfig::default().interval(Duration::from_secs(3600)))
        .build()
        .unwrap();
    let served = serve_eligible(&bal, 2, "both in").await;
    b.refusing.store(true, Ordering::SeqCst);
    let mut s = TcpStream::connect(served.addr).await.unwrap();
    for _ in 0..6 {
        assert!(handshake(&mut s).await.starts_with("aaaa"));
    }
    let info = bal.upstreams().list().into_iter().find(|u| u.addr == b.addr).unwrap();
    assert!(info.draining && !info.eligible, "{info:?}");
    assert!(bal.stats().retried.load(Ordering::Relaxed) >= 1);
    // with nowhere else to go: 503
    a.refusing.store(true, Ordering::SeqCst);
    let (status, _) = exchange(&mut s, "/socket.io/?EIO=4&transport=polling").await;
    assert_eq!(status, 503);
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_set() {
    let a = mock("aaaa", true).await;
    let bal = fast_builder(&[a.addr]).build().unwrap();
    let served = serve_eligible(&bal, 1, "a in").await;
    let (_s, head) = raw(
        served.addr,
        b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.9\r\n\r\n",
    )
    .await;
    let head = head.to_ascii_lowercase();
    assert!(head.contains("x-seen-forwarded: 203.0.113.9, 127.0.0.1 http"), "{head}");
    served.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sids_of_other_nodes_are_refused_or_delegated_as_configured() {
    let a = mock("aaaa", true).await;
    let foreign = "/socket.io/?EIO=4&transport=polling&sid=zzzzAAAAAAAAAAAAAAAA";
    for delegate in [false, true] {
        let mut b = fast_builder(&[a.addr]);
        if delegate {
            b = b.foreign_sids(ForeignSids::Delegate);
        }
        let bal = b.build().unwrap();
        let served = serve_eligible(&bal, 1, "a in").await;
        let mut s = TcpStream::connect(served.addr).await.unwrap();
        let sid = handshake(&mut s).await;
        let (status, body) = exchange(&mut s, foreign).await;
        if delegate {
            // an upstream got it (a Shoal node would forward it to its owner; this stand-in
            // answers "unknown")
            assert_eq!((status, body.as_str()), (400, "unknown"));
        } else {
            assert_eq!((status, body.as_str()), (400, r#"{"code":1,"message":"Session ID unknown"}"#));
        }
        // the upstream's own sessions are routed as before
        let (status, body) = exchange(&mut s, &format!("/socket.io/?EIO=4&transport=polling&sid={sid}")).await;
        assert_eq!((status, body.as_str()), (200, "aaaa"));
        served.finish().await;
    }
}

/// With a directory, a sid of a node that is not an upstream goes straight to the address
/// the directory gives, marked `x-shoal-forwarded` (so that the node does not forward it
/// again); a node the directory does not know falls back to `foreign_sids`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sids_of_nodes_in_the_directory_go_straight_to_them() {
    let a = mock("aaaa", true).await;
    let z = mock("zzzz", true).await;
    let z_addr = z.addr;
    let bal = fast_builder(&[a.addr])
        .directory(Directory::new(move |id| (id.to_string() == "zzzz").then_some(z_addr)))
        .build()
        .unwrap();
    let served = serve_eligible(&bal, 1, "a in").await;
    let (mut s, answer) = raw(
        served.addr,
        b"GET /socket.io/?EIO=4&transport=polling&sid=zzzzAAAAAAAAAAAAAAAA HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .await;
    let answer = answer.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("x-node: zzzz"), "{answer}");
    assert!(answer.contains("x-seen-shoal-forwarded: 1"), "{answer}");
    assert_eq!(bal.stats().direct.load(Ordering::Relaxed), 1);
    // a node the directory does not know: refused (the default foreign_sids)
    let (status, body) = exchange(&mut s, "/socket.io/?EIO=4&transport=polling&sid=yyyyAAAAAAAAAAAAAAAA").await;
    assert_eq!((status, body.as_str()), (400, r#"{"code":1,"message":"Session ID unknown"}"#));
    // the upstream's own sessions are routed as before
    let sid = handshake(&mut s).await;
    let (status, body) = exchange(&mut s, &format!("/socket.io/?EIO=4&transport=polling&sid={sid}")).await;
    assert_eq!((status, body.as_str()), (200, "aaaa"));
    served.finish().await;
}
