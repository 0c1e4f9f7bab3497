//! Forwarding through `UpstreamPool` between real hyper servers on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use shoal_proxy::{Forwarding, ProxyConfig, ProxyError, UpstreamPool};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// An upstream that answers `GET /headers` with its request headers (one `name: value`
/// per line), `POST /echo` with the body, `GET /slow` after 2 s, and upgrades
/// `GET /tunnel` (echoing every byte afterwards, prefixed by the peer's upgrade count).
async fn upstream() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|mut req: Request<Incoming>| async move {
                    let resp = match req.uri().path() {
                        "/headers" => {
                            let mut out = String::new();
                            for (k, v) in req.headers() {
                                out.push_str(&format!("{}: {}\n", k, v.to_str().unwrap()));
                            }
                            Response::new(Full::new(Bytes::from(out)))
                        }
                        "/echo" => {
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            Response::new(Full::new(body))
                        }
                        "/slow" => {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            Response::new(Full::new(Bytes::from_static(b"late")))
                        }
                        "/tunnel" => {
                            let on = hyper::upgrade::on(&mut req);
                            tokio::spawn(async move {
                                let mut io = TokioIo::new(on.await.unwrap());
                                let mut buf = [0u8; 1024];
                                loop {
                                    let n = io.read(&mut buf).await.unwrap_or(0);
                                    if n == 0 {
                                        break;
                                    }
                                    io.write_all(&buf[..n]).await.unwrap();
                                }
                            });
                            let mut r = Response::new(Full::new(Bytes::new()));
                            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
                            r.headers_mut().insert("connection", "upgrade".parse().unwrap());
                            r.headers_mut().insert("upgrade", "echo".parse().unwrap());
                            r
                        }
                        _ => {
                            let mut r = Response::new(Full::new(Bytes::from_static(b"nope")));
                            *r.status_mut() = StatusCode::BAD_REQUEST;
                            r
                        }
                    };
                    Ok::<_, Infallible>(resp)
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A counter decremented when a guard is dropped.
struct Live(Arc<AtomicUsize>);
impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A proxy in front of `to`, counting live exchanges in `live`.
async fn proxy(pool: Arc<UpstreamPool>, to: SocketAddr, live: Arc<AtomicUsize>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, peer) = l.accept().await.unwrap();
            let pool = pool.clone();
            let live = live.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let pool = pool.clone();
                    let live = live.clone();
                    async move {
                        live.fetch_add(1, Ordering::SeqCst);
                        let guard = Box::new(Live(live));
                        let r = match pool.forward(to, req, &Forwarding::http(Some(peer)), Some(guard)).await {
                            Ok(r) => r,
                            Err(e) => e.to_response(),
                        };
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
    addr
}

/// Sends raw HTTP/1.1 `req` on `s` and reads one response with a `Content-Length` body.
async fn exchange(s: &mut TcpStream, req: &str) -> (u16, String) {
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut chunk)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed early: {}", String::from_utf8_lossy(&buf));
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(end) = text.find("\r\n\r\n") {
            let head = &text[..end];
            let len: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let status = head[9..12].parse().unwrap();
                return (status, text[end + 4..end + 4 + len].to_string());
            }
        }
    }
}

#[tokio::test]
async fn requests_are_forwarded_with_forwarding_headers_and_connections_reused() {
    let up = upstream().await;
    let pool = UpstreamPool::new(ProxyConfig::default());
    let live = Arc::new(AtomicUsize::new(0));
    let p = proxy(pool.clone(), up, live.clone()).await;
    let mut s = TcpStream::connect(p).await.unwrap();

    let (status, body) = exchange(
        &mut s,
        "GET /headers HTTP/1.1\r\nhost: h\r\nx-forwarded-for: 10.1.1.1\r\nconnection: keep-alive, x-secret\r\nx-secret: s\r\nkeep-alive: timeout=5\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    assert!(body.contains("x-forwarded-for: 10.1.1.1, 127.0.0.1\n"), "{body}");
    assert!(body.contains("x-forwarded-proto: http\n"), "{body}");
    assert!(body.contains("host: h\n"), "{body}");
    assert!(!body.contains("x-secret"), "{body}");
    assert!(!body.contains("keep-alive"), "{body}");

    for i in 0..20 {
        let payload = format!("hello {i}");
        let req = format!("POST /echo HTTP/1.1\r\nhost: h\r\ncontent-length: {}\r\n\r\n{payload}", payload.len());
        let (status, body) = exchange(&mut s, &req).await;
        assert_eq!((status, body.as_str()), (200, payload.as_str()));
    }
    // one upstream connection for 21 sequential requests (the pool takes a connection back
    // as soon as its response is read)
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(pool.stats().connects.load(Ordering::SeqCst), 1, "{:?}", pool.stats());
    assert_eq!(pool.stats().reused.load(Ordering::SeqCst), 20);
    assert_eq!(pool.idle_count(up), 1);
    assert_eq!(live.load(Ordering::SeqCst), 0, "every guard dropped after its body");

    let (status, body) = exchange(&mut s, "GET /other HTTP/1.1\r\nhost: h\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (400, "nope"));
}

#[tokio::test]
async fn concurrent_requests_open_more_connections_and_a_long_poll_does_not_block_others() {
    let up = upstream().await;
    let pool = UpstreamPool::new(ProxyConfig::default());
    let live = Arc::new(AtomicUsize::new(0));
    let p = proxy(pool.clone(), up, live.clone()).await;
    let mut slow = TcpStream::connect(p).await.unwrap();
    slow.write_all(b"GET /slow HTTP/1.1\r\nhost: h\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut fast = TcpStream::connect(p).await.unwrap();
    let (status, _) = exchange(&mut fast, "GET /headers HTTP/1.1\r\nhost: h\r\n\r\n").await;
    assert_eq!(status, 200);
    // the other request was answered while the held one is still waiting for its answer
    assert_eq!(live.load(Ordering::SeqCst), 1, "the slow exchange is still live");
    let mut rest = Vec::new();
    let read_all = async {
        while !String::from_utf8_lossy(&rest).ends_with("late") {
            let n = slow.read_buf(&mut rest).await.unwrap();
            assert!(n > 0, "closed before the late answer: {:?}", String::from_utf8_lossy(&rest));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read_all).await.expect("the held request is answered");
    assert_eq!(pool.stats().connects.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn upgrades_are_spliced_and_the_guard_lives_as_long_as_the_tunnel() {
    let up = upstream().await;
    let pool = UpstreamPool::new(ProxyConfig::default());
    let live = Arc::new(AtomicUsize::new(0));
    let p = proxy(pool.clone(), up, live.clone()).await;
    let mut s = TcpStream::connect(p).await.unwrap();
    s.write_all(b"GET /tunnel HTTP/1.1\r\nhost: h\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await.unwrap().unwrap();
    let head = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    for msg in [&b"ping"[..], &[0u8, 255, 1, 2][..], &vec![7u8; 100_000][..]] {
        s.write_all(msg).await.unwrap();
        let mut got = vec![0u8; msg.len()];
        tokio::time::timeout(Duration::from_secs(5), s.read_exact(&mut got)).await.unwrap().unwrap();
        assert_eq!(got, msg);
    }
    assert_eq!(pool.stats().open_tunnels.load(Ordering::SeqCst), 1);
    assert_eq!(live.load(Ordering::SeqCst), 1);
    drop(s);
    for _ in 0..100 {
        if live.load(Ordering::SeqCst) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(live.load(Ordering::SeqCst), 0, "guard dropped when the tunnel closed");
    assert_eq!(pool.stats().open_tunnels.load(Ordering::SeqCst), 0);
    assert_eq!(pool.idle_count(up), 0, "an upgraded connection is never pooled");
}

#[tokio::test]
async fn a_refused_upgrade_is_an_ordinary_answer() {
    let up = upstream().await;
    let pool = UpstreamPool::new(ProxyConfig::default());
    let p = proxy(pool, up, Arc::new(AtomicUsize::new(0))).await;
    let mut s = TcpStream::connect(p).await.unwrap();
    let (status, body) =
        exchange(&mut s, "GET /refuse HTTP/1.1\r\nhost: h\r\nconnection: upgrade\r\nupgrade: websocket\r\n\r\n").await;
    assert_eq!((status, body.as_str()), (400, "nope"));
}

#[tokio::test]
async fn unreachable_and_slow_upstreams_are_clean_errors() {
    // a port with nothing listening
    let dead = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    let pool = UpstreamPool::new(ProxyConfig::default().response_timeout(Duration::from_millis(300)));
    let req = Request::get("/headers").header("host", "h").body(Full::new(Bytes::new())).unwrap();
    let err = pool.forward(dead, req, &Forwarding::http(None), None).await.unwrap_err();
    assert!(matches!(err, ProxyError::Connect { .. }), "{err}");
    assert!(err.retry_safe());
    assert_eq!(err.upstream(), dead);
    assert_eq!(err.to_response().status(), StatusCode::BAD_GATEWAY);

    let up = upstream().await;
    let req = Request::get("/slow").header("host", "h").body(Full::new(Bytes::new())).unwrap();
    let err = pool.forward(up, req, &Forwarding::http(None), None).await.unwrap_err();
    assert!(matches!(err, ProxyError::ResponseTimeout { .. }), "{err}");
    assert!(!err.retry_safe());
    assert_eq!(err.to_response().status(), StatusCode::GATEWAY_TIMEOUT);
}

#[tokio::test]
async fn a_pooled_connection_closed_by_the_upstream_is_replaced() {
    // an upstream that closes every connection after one response
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (s, _) = l.accept().await.unwrap();
            tokio::spawn(async move {
                let svc = service_fn(|_req: Request<Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    let pool = UpstreamPool::new(ProxyConfig::default());
    for _ in 0..5 {
        let req = Request::get("/").header("host", "h").body(Full::new(Bytes::new())).unwrap();
        let resp = pool.forward(up, req, &Forwarding::http(None), None).await.unwrap();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(pool.stats().connects.load(Ordering::SeqCst), 5);
}
