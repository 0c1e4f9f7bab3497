//! Hostile input at the HTTP layer: long-polling bodies (sizes, lying lengths, chunked
//! floods, content types, encodings), oversized or endless request heads, and every way
//! to misuse the Engine.IO request parameters. Each test checks the exact answer (status
//! and Engine.IO error JSON) or that the connection is closed, within a bounded time,
//! and then that a normal client is still served.
//!
//! `cargo test -p shoal --test hostile_http`

mod common;
mod raw;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::TestServer;
use raw::*;
use shoal::SocketIo;
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

const LIMIT: Duration = Duration::from_secs(40);

async fn server() -> TestServer {
    TestServer::start(SocketIo::builder(), echo_handlers).await
}

/// A server whose sessions time out quickly (ping 500 ms + 500 ms).
async fn fast_server() -> TestServer {
    TestServer::start(
        SocketIo::builder().ping_interval(Duration::from_millis(500)).ping_timeout(Duration::from_millis(500)),
        echo_handlers,
    )
    .await
}

// ---------------------------------------------------------------------------------------
// 1. polling POST bodies
// ---------------------------------------------------------------------------------------

/// An honest `Content-Length` over `max_payload` is refused with 413 before any body
/// byte is sent (so the server cannot have waited for it), and the session is closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn post_over_max_payload_is_413_without_reading_the_body() {
    bounded(LIMIT, async {
        let srv = server().await;
        for declared in ["1000001", "10000000000", "18446744073709551615"] {
            let p = sio_polling_connect(srv.addr).await;
            let mut c = Conn::open(srv.addr).await;
            let head = format!(
                "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: {declared}\r\n\r\n",
                p.url()
            );
            c.write(head.as_bytes()).await.unwrap();
            let r = timeout(Duration::from_secs(5), c.read_response()).await.expect("413 without the body").unwrap();
            if declared == "18446744073709551615" {
                // hyper itself refuses a length of u64::MAX (431) before the engine sees it
                assert!(matches!(r.status, 413 | 431 | 400), "Content-Length {declared}: {}", r.status);
                continue;
            }
            assert_eq!(r.status, 413, "Content-Length {declared}");
            assert!(p.gone_within(Duration::from_secs(5)).await, "the session is closed after a 413");
        }
        // exactly max_payload is fine
        let p = sio_polling_connect(srv.addr).await;
        let filler = "y".repeat(1_000_000 - r#"42["echo",""]"#.len());
        polling_echo(&p, &format!("\"{filler}\"")).await;
        let r = p.post(format!(r#"42["echo","{filler}!"]"#).as_bytes()).await;
        assert_eq!(r.status, 413, "one byte over");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A `Content-Length` that does not even fit in 64 bits is a malformed request (hyper
/// answers 400), not a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unparsable_content_length_is_a_bad_request() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = Polling::handshake(srv.addr).await;
        for cl in ["99999999999999999999999", "-1", "abc", "1, 2"] {
            let mut c = Conn::open(srv.addr).await;
            let head = format!("POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: {cl}\r\n\r\n40", p.url());
            c.write(head.as_bytes()).await.unwrap();
            // an answer (400), or closed without one
            if let Ok(r) = timeout(Duration::from_secs(5), c.read_response()).await.expect("an answer or a close") {
                assert_eq!(r.status, 400, "Content-Length {cl:?}");
            }
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A `Content-Length` smaller than what is sent: the server reads exactly the declared
/// bytes as the body (here a truncated Socket.IO packet → parse error, session closed)
/// and the rest as the next request, which is garbage → 400 and the connection closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_small_content_length() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let mut c = Conn::open(srv.addr).await;
        let req = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\n42[\"echo\",\"{}\"]",
            p.url(),
            "x".repeat(10_000)
        );
        c.write(req.as_bytes()).await.unwrap();
        let first = timeout(Duration::from_secs(5), c.read_response()).await.expect("first answer").unwrap();
        assert_eq!((first.status, first.text().as_str()), (200, "ok"), "the 5 declared bytes are the body");
        // the rest is not HTTP: a 400 from hyper and/or a close, promptly
        let rest = timeout(Duration::from_secs(5), c.read_to_end()).await.expect("connection closed");
        let rest = String::from_utf8_lossy(&rest);
        assert!(rest.is_empty() || rest.starts_with("HTTP/1.1 400"), "after the lie: {rest:?}");
        // `42["e` does not parse: the session is closed with a parse error
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A `Content-Length` larger than what is sent, then silence: the POST is answered
/// within `ping_interval + ping_timeout` (408, or the session already timed out) instead
/// of holding the request forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lying_large_content_length_then_stall() {
    bounded(LIMIT, async {
        let srv = fast_server().await;
        let p = sio_polling_connect(srv.addr).await;
        let mut c = Conn::open(srv.addr).await;
        let head = format!("POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 900000\r\n\r\n42[\"echo\"", p.url());
        c.write(head.as_bytes()).await.unwrap();
        let start = Instant::now();
        let r = timeout(Duration::from_secs(6), c.read_response()).await.expect("the stalled POST is answered");
        if let Ok(r) = r {
            assert!(matches!(r.status, 408 | 400), "stalled body: {r:?}");
        }
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(p.gone_within(Duration::from_secs(5)).await, "the session is closed");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A chunked body that never ends: 413 as soon as `max_payload` is exceeded, and the
/// server stops reading: of a 256 MB flood only about the limit plus what the kernel
/// buffers can be written (the socket's buffers on loopback may grow to tens of MB, so
/// the bound is generous but far below the flood).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunked_flood_is_cut_at_the_limit() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let c = Conn::open(srv.addr).await;
        let (mut rd, mut wr) = c.stream.into_split();
        let head = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n",
            p.url()
        );
        wr.write_all(head.as_bytes()).await.unwrap();
        let written = Arc::new(AtomicU64::new(0));
        let w2 = written.clone();
        let writer = tokio::spawn(async move {
            let data = vec![b'4'; 64 * 1024];
            let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
            chunk.extend_from_slice(&data);
            chunk.extend_from_slice(b"\r\n");
            for _ in 0..(256 * 16) {
                // a write that cannot progress for 1 s means the server stopped reading
                match timeout(Duration::from_secs(1), wr.write_all(&chunk)).await {
                    Ok(Ok(())) => {
                        w2.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    _ => return,
                }
            }
        });
        let mut buf = Vec::new();
        let resp = timeout(Duration::from_secs(15), read_response_half(&mut rd, &mut buf))
            .await
            .expect("413 while the flood goes on")
            .expect("an answer");
        let at_answer = written.load(Ordering::Relaxed);
        assert_eq!(resp.status, 413);
        let _ = timeout(Duration::from_secs(20), writer).await;
        let total = written.load(Ordering::Relaxed);
        eprintln!("chunked flood: {at_answer} bytes written when 413 arrived, {total} in all");
        assert!(at_answer < 1_000_000 + 48 * MB, "the answer came {at_answer} bytes into the flood");
        assert!(total < 64 * MB, "the server kept reading the flood: {total} bytes accepted of 256 MB");
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Reads one response head (and a small body) from a read half.
async fn read_response_half(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    buf: &mut Vec<u8>,
) -> std::io::Result<HttpResponse> {
    use tokio::io::AsyncReadExt;
    loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..pos]).into_owned();
            let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            return Ok(HttpResponse { status, headers: Vec::new(), body: Vec::new() });
        }
        let mut chunk = [0u8; 4096];
        let n = rd.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// `Content-Type: application/octet-stream` (a v3 binary payload) is refused with 400
/// and the session closed (CVE-2026-59725: the request is answered).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn octet_stream_post_is_400_and_closes_the_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let r =
            request(srv.addr, "POST", &p.url(), &["Content-Type: application/octet-stream"], b"\x00\x01garbage").await;
        r.assert_eio_error(400, 3);
        assert!(p.gone_within(Duration::from_secs(5)).await);

        // the fd count after 300 such requests: hostile_resources (it needs a quiet process)
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A body that is not UTF-8 is a parse error: 400 and the session closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_body_is_400_and_closes_the_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        for body in [&b"4\xff\xfe"[..], b"42[\"echo\",\"\xc0\xaf\"]", b"\xed\xa0\x80"] {
            let p = sio_polling_connect(srv.addr).await;
            p.post(body).await.assert_eio_error(400, 3);
            assert!(p.gone_within(Duration::from_secs(5)).await);
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// An empty body carries no packet: 400 and the session closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_body_is_400() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        p.post(b"").await.assert_eio_error(400, 3);
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// 100 000 record separators: empty packets, a parse error answered at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn separator_flood_is_400() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let start = Instant::now();
        p.post(&vec![0x1e; 100_000]).await.assert_eio_error(400, 3);
        assert!(start.elapsed() < Duration::from_secs(2));
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// 100 000 tiny valid packets in one body (noops, then 50 000 events without a handler)
/// are all processed promptly and the session stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tiny_packets_in_one_body() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let noops = vec!["6"; 100_000].join("\u{1e}");
        let start = Instant::now();
        let r = p.post(noops.as_bytes()).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        let events = vec![r#"42["nobody-listens",1]"#; 40_000].join("\u{1e}");
        assert!(events.len() < 1_000_000);
        let r = p.post(events.as_bytes()).await;
        assert_eq!((r.status, r.text().as_str()), (200, "ok"));
        assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
        polling_echo(&p, "[1,2,3]").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 2. request heads
// ---------------------------------------------------------------------------------------

/// Asserts that `head` (which may be huge) is refused with one of `statuses` or a close,
/// quickly, even if the server stops reading in the middle of it.
async fn assert_head_refused(srv: &TestServer, head: Vec<u8>, statuses: &[u16], what: &str) {
    let c = Conn::open(srv.addr).await;
    let (mut rd, mut wr) = c.stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = timeout(Duration::from_secs(5), wr.write_all(&head)).await;
        wr
    });
    let start = Instant::now();
    let mut buf = Vec::new();
    match timeout(Duration::from_secs(5), read_response_half(&mut rd, &mut buf)).await {
        Ok(Ok(r)) => assert!(statuses.contains(&r.status), "{what}: status {}", r.status),
        Ok(Err(_)) => {} // closed (EOF or reset) without an answer
        Err(_) => panic!("{what}: neither answered nor closed within 5 s"),
    }
    assert!(start.elapsed() < Duration::from_secs(5), "{what}");
    drop(writer);
}

/// Thousands of headers: 431 (over `max_headers`), including the CVE-2024-37890 shape
/// (2000 junk headers, then the WebSocket upgrade headers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_headers_are_431() {
    bounded(LIMIT, async {
        let srv = server().await;
        let mut head = String::from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n");
        for i in 0..5000 {
            head.push_str(&format!("X-Junk-{i}: {i}\r\n"));
        }
        head.push_str("\r\n");
        assert_head_refused(&srv, head.into_bytes(), &[431], "5000 headers").await;

        let mut head = String::from("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n");
        let names = ["!!", "!#", "!$", "!%", "!&", "!'", "!*", "!+", "!-", "!."];
        for i in 0..2000 {
            head.push_str(&format!("{}{}: x\r\n", names[i % names.len()], i));
        }
        for h in WS_HEADERS {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        assert_head_refused(&srv, head.into_bytes(), &[431], "2000 junk headers before an upgrade").await;

        // just over the limit (max_headers = 100)
        let mut head = String::from("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n");
        for i in 0..100 {
            head.push_str(&format!("X-{i}: y\r\n"));
        }
        head.push_str("\r\n");
        assert_head_refused(&srv, head.into_bytes(), &[431], "101 headers").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A 1 MB URL (query) and a 1 MB header line: refused (414/431/400) or closed, quickly,
/// without the server reading the whole megabyte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_url_and_header_line_are_refused() {
    bounded(LIMIT, async {
        let srv = server().await;
        let mb = "a".repeat(1_000_000);
        let head = format!("GET /socket.io/?EIO=4&transport=polling&x={mb} HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_head_refused(&srv, head.into_bytes(), &[414, 431, 400], "1 MB query").await;
        let head = format!("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Big: {mb}\r\n\r\n");
        assert_head_refused(&srv, head.into_bytes(), &[431, 400], "1 MB header line").await;
        let head = format!("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Protocol: b{}x\r\n{}\r\n\r\n", " ".repeat(32_000), WS_HEADERS.join("\r\n"));
        assert_head_refused(&srv, head.into_bytes(), &[431, 400], "Sec-WebSocket-Protocol ReDoS shape").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Slowloris: 30 connections trickle a request head one byte every 300 ms. With
/// `header_read_timeout` = 1 s each is closed after about a second, none is answered
/// as if complete, and normal clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_is_cut_by_the_header_timeout() {
    bounded(LIMIT, async {
        let config = shoal::ServerConfig { header_read_timeout: Duration::from_secs(1), ..Default::default() };
        let srv = TestServer::start_with_config(SocketIo::builder(), config, echo_handlers).await;
        let addr = srv.addr;
        let mut tasks = Vec::new();
        for _ in 0..30 {
            tasks.push(tokio::spawn(async move {
                let c = Conn::open(addr).await;
                let (mut rd, mut wr) = c.stream.into_split();
                let start = Instant::now();
                let head = b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\nX-A: b\r\n\r\n";
                let trickle = async {
                    for b in head.iter() {
                        if wr.write_all(std::slice::from_ref(b)).await.is_err() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                    std::future::pending::<()>().await
                };
                let mut buf = Vec::new();
                let ended = tokio::select! {
                    r = read_response_half(&mut rd, &mut buf) => r,
                    () = trickle => unreachable!(),
                };
                let elapsed = start.elapsed();
                if let Ok(r) = ended {
                    assert_eq!(r.status, 408, "a trickled request must not be served");
                }
                elapsed
            }));
        }
        // meanwhile, normal clients are served
        assert_healthy(addr).await;
        for t in tasks {
            let elapsed = timeout(Duration::from_secs(10), t).await.expect("slowloris connection closed").unwrap();
            // cut by the 1 s header timeout: not before, not much after
            assert!(elapsed >= Duration::from_millis(800), "closed after only {elapsed:?}");
            assert!(elapsed < Duration::from_secs(4), "closed after {elapsed:?}");
        }
        assert_healthy(addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 7. Engine.IO request misuse
// ---------------------------------------------------------------------------------------

/// Transports outside the allowlist (CVE-2023-31125 shapes) → 400 code 0, for polling
/// requests and for upgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_transports_are_code_0() {
    bounded(LIMIT, async {
        let srv = server().await;
        for t in ["webtransport", "__proto__", "constructor", "hasOwnProperty", "toString", "", "POLLING", "polling%00"]
        {
            get(srv.addr, &format!("/socket.io/?EIO=4&transport={t}")).await.assert_eio_error(400, 0);
            request(srv.addr, "GET", &format!("/socket.io/?EIO=4&transport={t}"), &WS_HEADERS, b"")
                .await
                .assert_eio_error(400, 0);
        }
        get(srv.addr, "/socket.io/?EIO=4").await.assert_eio_error(400, 0);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// `EIO` other than 4 (or missing) on a handshake → 400 code 5.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_protocol_versions_are_code_5() {
    bounded(LIMIT, async {
        let srv = server().await;
        for q in ["EIO=3&", "EIO=5&", "EIO=abc&", "", "EIO=&", "EIO=4.0&", "EIO=04&"] {
            get(srv.addr, &format!("/socket.io/?{q}transport=polling")).await.assert_eio_error(400, 5);
            request(srv.addr, "GET", &format!("/socket.io/?{q}transport=websocket"), &WS_HEADERS, b"")
                .await
                .assert_eio_error(400, 5);
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A handshake with another method than GET → 400 code 2; a WebSocket handshake
/// without the upgrade headers → 400 code 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_handshake_methods_and_missing_upgrade() {
    bounded(LIMIT, async {
        let srv = server().await;
        for m in ["POST", "PUT", "DELETE", "PATCH"] {
            request(srv.addr, m, &polling_url(None), &[], b"40").await.assert_eio_error(400, 2);
        }
        get(srv.addr, "/socket.io/?EIO=4&transport=websocket").await.assert_eio_error(400, 3);
        // upgrade headers on a polling handshake
        request(srv.addr, "GET", &polling_url(None), &WS_HEADERS, b"").await.assert_eio_error(400, 3);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Sids that name no session (well-formed, wrong length, wrong characters, encoded
/// tricks, a closed session) → 400 code 1, for GET, POST and upgrades.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_sids_are_code_1() {
    bounded(LIMIT, async {
        let srv = server().await;
        let closed = sio_polling_connect(srv.addr).await;
        assert_eq!(closed.post(b"1").await.status, 200);
        assert!(closed.gone_within(Duration::from_secs(5)).await);
        let long = "A".repeat(5000);
        let sids = [
            "AAAAAAAAAAAAAAAAAAAA",
            "x",
            "",
            long.as_str(),
            "../../../../etc/passwd",
            "%00%00%00",
            "%E2%82%AC%E2%82%AC%E2%82%AC%E2%82%AC%E2%82%AC%E2%82%AC%E2%82%AC",
            "AAAAAAAAAAAAAAAAAAA%",
            "__proto__",
            closed.sid.as_str(),
        ];
        for sid in sids {
            let url = polling_url(Some(sid));
            get(srv.addr, &url).await.assert_eio_error(400, 1);
            post(srv.addr, &url, b"40").await.assert_eio_error(400, 1);
            request(srv.addr, "GET", &format!("/socket.io/?EIO=4&transport=websocket&sid={sid}"), &WS_HEADERS, b"")
                .await
                .assert_eio_error(400, 1);
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// `j=` (JSONP, removed in v4) is ignored: a plain text handshake, no script wrapper.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonp_parameter_is_ignored() {
    bounded(LIMIT, async {
        let srv = server().await;
        let r = get(srv.addr, "/socket.io/?EIO=4&transport=polling&j=0").await;
        assert_eq!(r.status, 200);
        assert!(r.header("content-type").is_some_and(|v| v.starts_with("text/plain")), "{r:?}");
        let open = parse_open(&r.text());
        assert!(open["sid"].is_string());
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// A polling request for a WebSocket session → 400 code 3, and the WebSocket session is
/// not disturbed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_requests_on_a_websocket_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        let (mut ws, open) = Ws::engine(srv.addr).await;
        let sid = open["sid"].as_str().unwrap();
        get(srv.addr, &polling_url(Some(sid))).await.assert_eio_error(400, 3);
        post(srv.addr, &polling_url(Some(sid)), b"40").await.assert_eio_error(400, 3);
        ws.send_text("40").await.unwrap();
        assert!(ws.recv_text().await.starts_with("40{"));
        ws_echo(&mut ws, "1").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Upgrades a polling session to WebSocket by hand (probe, noop, `5`).
async fn upgrade(p: &Polling) -> Ws {
    let mut ws = Ws::connect_with(p.addr, &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid), &[])
        .await
        .unwrap_or_else(|r| panic!("upgrade refused: {r:?}"));
    ws.send_text("2probe").await.unwrap();
    assert_eq!(ws.recv_text().await, "3probe");
    // the held poll (or the next one) is released with a noop
    let released = p.get().await;
    assert!(released.iter().any(|s| s == "6"), "poll during upgrade: {released:?}");
    ws.send_text("5").await.unwrap();
    ws
}

/// After an upgrade, polling requests for the session → 400 code 3; the WebSocket keeps
/// working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_after_upgrade_is_refused() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let mut ws = upgrade(&p).await;
        ws_echo(&mut ws, r#""upgraded""#).await;
        assert!(common::wait_until(Duration::from_secs(5), || srv.io.connection_count() == 1).await, "one session");
        p.get_raw().await.assert_eio_error(400, 3);
        p.post(br#"42["echo","via polling"]"#).await.assert_eio_error(400, 3);
        ws_echo(&mut ws, r#""still upgraded""#).await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Two GETs at once on one session: the second is refused (400 code 3), the session is
/// closed, and the first is released with a close packet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_gets_close_the_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        // Two polls at once: whichever the server sees second is refused, the other one
        // (held) is released with the close packet.
        let (a, b) = tokio::join!(p.get_raw(), p.get_raw());
        let (refused, released) = if a.status == 400 { (a, b) } else { (b, a) };
        refused.assert_eio_error(400, 3);
        assert_eq!((released.status, released.text().as_str()), (200, "1"), "the held poll gets a close packet");
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Two POSTs at once (the first one's body stalled): the second is refused and the
/// session closed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_posts_close_the_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let mut c = Conn::open(srv.addr).await;
        c.write(format!("POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n42", p.url()).as_bytes())
            .await
            .unwrap();
        // retry until the server has the first POST in progress
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = p.post(b"3").await;
            if r.status == 400 {
                if r.json()["code"] == 1 {
                    // the stalled POST reached the server while one of these was in
                    // progress: it was the second one, refused, and the session closed
                    let stalled = tokio::time::timeout(Duration::from_secs(5), c.read_response())
                        .await
                        .expect("the stalled POST is answered")
                        .expect("an HTTP answer");
                    stalled.assert_eio_error(400, 3);
                } else {
                    r.assert_eio_error(400, 3);
                }
                break;
            }
            assert!(Instant::now() < deadline, "the overlap was never detected");
        }
        assert!(p.gone_within(Duration::from_secs(5)).await);
        drop(c);
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Packets a client has no business sending by polling: `0` (open), `5` (upgrade), `6`
/// (noop) are ignored (200, session alive); `2` (a client ping, v4) closes the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_upgrade_noop_and_ping_by_polling() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        for body in ["5", "6", "0", "0{\"sid\":\"x\"}", "5\u{1e}6\u{1e}0"] {
            let r = p.post(body.as_bytes()).await;
            assert_eq!((r.status, r.text().as_str()), (200, "ok"), "POST {body:?}");
        }
        polling_echo(&p, r#""after 5/6/0""#).await;
        let r = p.post(b"2").await;
        assert_eq!(r.status, 200);
        assert!(p.gone_within(Duration::from_secs(5)).await, "a client ping closes the session");
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Methods other than GET/POST on a session: an empty 500 as Node answers; the session is
/// not affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_methods_on_a_session() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        for m in ["PUT", "DELETE", "PATCH"] {
            let r = request(srv.addr, m, &p.url(), &[], b"40").await;
            assert_eq!(r.status, 500, "{m}");
        }
        polling_echo(&p, "true").await;
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// CORS (CVE-2020-28481): off by default (no header for any origin); with an allowlist
/// and credentials, a foreign origin is never reflected, even on preflight; an origin
/// with control characters is refused by the HTTP parser or ignored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_origins_are_not_reflected() {
    bounded(LIMIT, async {
        let srv = server().await;
        let r = request(srv.addr, "GET", &polling_url(None), &["Origin: https://evil.example"], b"").await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("access-control-allow-origin"), None, "CORS is off by default");

        let mut cors = shoal::Cors::new(shoal::AllowedOrigins::List(vec!["https://good.example".into()]));
        cors.credentials = true;
        let srv = TestServer::start(SocketIo::builder().cors(cors), echo_handlers).await;
        for (method, extra) in [
            ("GET", &["Origin: https://evil.example"][..]),
            ("OPTIONS", &["Origin: https://evil.example", "Access-Control-Request-Method: POST"][..]),
            ("GET", &["Origin: https://good.example.evil.example"][..]),
            ("GET", &["Origin: null"][..]),
        ] {
            let r = request(srv.addr, method, &polling_url(None), extra, b"").await;
            assert_eq!(r.header("access-control-allow-origin"), None, "{method} {extra:?}: {r:?}");
            assert_eq!(r.header("access-control-allow-credentials"), None, "{method} {extra:?}");
        }
        let r = request(srv.addr, "GET", &polling_url(None), &["Origin: https://good.example"], b"").await;
        assert_eq!(r.header("access-control-allow-origin"), Some("https://good.example"));
        assert_eq!(r.header("access-control-allow-credentials"), Some("true"));

        let mut c = Conn::open(srv.addr).await;
        c.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nOrigin: https://good.example\x01\x7f\r\n\r\n")
            .await
            .unwrap();
        if let Ok(r) = timeout(Duration::from_secs(5), c.read_response()).await.expect("answer or close") {
            assert!(r.status == 400 || r.header("access-control-allow-origin").is_none(), "{r:?}");
        }
        assert_healthy(srv.addr).await;
    })
    .await;
}

/// Framing ambiguities and odd protocol versions: `Transfer-Encoding` together with
/// `Content-Length` (request smuggling shape), an unknown transfer coding, HTTP/1.0 and
/// HTTP/0.9-style request lines, an upgrade over HTTP/1.0. Each gets an answer or a
/// close, no session is left behind, and the server keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn framing_ambiguities_and_old_http_versions() {
    bounded(LIMIT, async {
        let srv = server().await;
        let p = sio_polling_connect(srv.addr).await;
        let smuggle = format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
            p.url()
        );
        let unknown_te = format!("POST {} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nxxxx", p.url());
        for (what, raw) in [
            ("TE + CL", smuggle.into_bytes()),
            ("unknown transfer coding", unknown_te.into_bytes()),
            ("HTTP/0.9", b"GET /socket.io/?EIO=4&transport=polling\r\n\r\n".to_vec()),
            ("HTTP/2 preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec()),
            ("binary garbage", vec![0u8, 0xff, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n']),
        ] {
            let mut c = Conn::open(srv.addr).await;
            c.write(&raw).await.unwrap();
            let got = timeout(Duration::from_secs(5), c.read_to_end()).await;
            let got = got.unwrap_or_else(|_| panic!("{what}: the connection was not closed"));
            let text = String::from_utf8_lossy(&got);
            assert!(text.is_empty() || text.starts_with("HTTP/1.1 "), "{what}: {text:?}");
            eprintln!("{what}: {:?}", text.lines().next());
        }
        // an HTTP/1.0 long-polling session works (no keep-alive)
        let mut c = Conn::open(srv.addr).await;
        c.write(b"GET /socket.io/?EIO=4&transport=polling HTTP/1.0\r\n\r\n").await.unwrap();
        let r = timeout(Duration::from_secs(5), c.read_response()).await.unwrap().unwrap();
        assert_eq!(r.status, 200);
        // an upgrade over HTTP/1.0 is not possible: no session survives it
        let before = srv.io.connection_count();
        let mut c = Conn::open(srv.addr).await;
        c.write(&build_request("GET", "/socket.io/?EIO=4&transport=websocket", &WS_HEADERS, b"").replacen(
            b"HTTP/1.1",
            b"HTTP/1.0",
        ))
        .await
        .unwrap();
        let _ = timeout(Duration::from_secs(5), c.read_to_end()).await;
        assert!(
            common::wait_until(Duration::from_secs(5), || srv.io.connection_count() <= before).await,
            "a session of a failed HTTP/1.0 upgrade is left: {} > {before}",
            srv.io.connection_count()
        );
        // (the POSTs above may have closed `p`: an empty chunked body is a parse error)
        assert_healthy(srv.addr).await;
    })
    .await;
}

trait ReplaceN {
    fn replacen(self, from: &[u8], to: &[u8]) -> Vec<u8>;
}

impl ReplaceN for Vec<u8> {
    fn replacen(self, from: &[u8], to: &[u8]) -> Vec<u8> {
        match self.windows(from.len()).position(|w| w == from) {
            Some(i) => [&self[..i], to, &self[i + from.len()..]].concat(),
            None => self,
        }
    }
}

/// Past `max_sessions`, a handshake gets `503` with an Engine.IO error body (code 4,
/// "Too many sessions") instead of a session; once a session ends, handshakes are taken
/// again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_past_the_session_limit_get_a_clear_503() {
    let server = TestServer::start(SocketIo::builder().max_sessions(2), echo_handlers).await;
    let a = Polling::handshake(server.addr).await;
    let _b = Polling::handshake(server.addr).await;
    let refused = get(server.addr, &polling_url(None)).await;
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(refused.header("content-type"), Some("application/json"), "{refused:?}");
    assert_eq!(refused.json(), serde_json::json!({"code": 4, "message": "Too many sessions"}));
    // a closes its session (Engine.IO close packet): room for a new one
    let closed = a.post(b"1").await;
    assert_eq!(closed.status, 200, "{closed:?}");
    let deadline = Instant::now() + LIMIT;
    loop {
        let r = get(server.addr, &polling_url(None)).await;
        if r.status == 200 {
            break;
        }
        assert_eq!(r.status, 503, "{r:?}");
        assert!(Instant::now() < deadline, "no handshake taken after a session ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
