//! Resource exhaustion: abandoned sessions, absurd length headers, pinned partial
//! packets, stalled bodies, ping floods and clients that never read. The server runs
//! in-process, so its memory is this process's RSS (`/proc/self/status`); the tests of
//! this file run one at a time (a process-wide lock) so that they do not see each
//! other's allocations. Bounds are generous (tens of MB) but far below what buffering
//! the input would cost (hundreds of MB to GB).
//!
//! `cargo test -p shoal --test hostile_resources`

mod common;
mod raw;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, wait_until};
use parking_lot::Mutex;
use raw::*;
use shoal::{DisconnectReason, Socket, SocketIo};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, timeout};

const LIMIT: Duration = Duration::from_secs(60);

/// One test at a time: RSS is process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn growth(base: u64) -> u64 {
    rss_bytes().saturating_sub(base)
}

/// Opens `n` connections with `open`, `batch` at a time.
async fn many<T, F, Fut>(n: usize, batch: usize, open: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut out = Vec::with_capacity(n);
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let futs: Vec<_> = (i..end).map(&open).collect();
        out.extend(futures_util::future::join_all(futs).await);
        i = end;
    }
    out
}

// ---------------------------------------------------------------------------------------
// 3. abandoned handshakes
// ---------------------------------------------------------------------------------------

/// 2000 polling handshakes never followed up: with `connect_timeout` 1 s (and pings of
/// 1 s + 1 s: the close that `connect_timeout` starts is graceful and waits up to
/// `ping_timeout` for a poll to deliver the close packet) every session is reaped
/// (`connection_count()` back to 0) and memory returns near its baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_polling_handshakes_are_reaped() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let builder = SocketIo::builder()
            .connect_timeout(Duration::from_secs(1))
            .ping_interval(Duration::from_secs(1))
            .ping_timeout(Duration::from_secs(1));
        let srv = TestServer::start(builder, echo_handlers).await;
        let addr = srv.addr;
        let base = rss_bytes();
        let start = Instant::now();
        let sessions = many(2000, 100, |_| async move { Polling::handshake(addr).await }).await;
        assert_eq!(sessions.len(), 2000);
        let peak = growth(base);
        assert!(
            wait_until(Duration::from_secs(15), || srv.io.connection_count() == 0).await,
            "{} sessions left",
            srv.io.connection_count()
        );
        let after = growth(base);
        eprintln!(
            "2000 abandoned handshakes: +{} kB at peak, +{} kB after reaping, {:?}",
            peak / 1024,
            after / 1024,
            start.elapsed()
        );
        assert!(peak < 64 * MB, "2000 idle sessions cost {} MB", peak / MB);
        assert!(after < 32 * MB, "memory after reaping: +{} MB", after / MB);
        // the reaped sessions are unknown now
        sessions[0].get_raw().await.assert_eio_error(400, 1);
        assert_healthy(addr).await;
    })
    .await;
}

/// 500 WebSocket connections that open and never send CONNECT: each is closed by the
/// server after `connect_timeout` (a close frame), none is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_without_connect_are_reaped() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder().connect_timeout(Duration::from_secs(1)), echo_handlers).await;
        let addr = srv.addr;
        let base = rss_bytes();
        let base_fds = open_fds();
        let mut conns = many(500, 50, |_| async move { Ws::engine(addr).await.0 }).await;
        assert!(srv.io.connection_count() >= 400, "{} open", srv.io.connection_count());
        let peak = growth(base);
        assert!(wait_until(Duration::from_secs(15), || srv.io.connection_count() == 0).await);
        let ends =
            futures_util::future::join_all(conns.iter_mut().map(|c| c.end_within(Duration::from_secs(10)))).await;
        for (i, end) in ends.into_iter().enumerate() {
            assert!(matches!(end, Some(WsEnd::Close(1000) | WsEnd::Eof)), "connection {i}: {end:?}");
        }
        drop(conns);
        assert!(wait_until(Duration::from_secs(10), || open_fds() <= base_fds + 8).await, "fds not released");
        eprintln!("500 idle websockets: +{} kB at peak, +{} kB after", peak / 1024, growth(base) / 1024);
        assert!(peak < 64 * MB);
        assert!(growth(base) < 32 * MB);
        assert_healthy(addr).await;
    })
    .await;
}

/// Upgrade candidates that never probe, 300 of them on 300 polling sessions: dropped
/// after `upgrade_timeout`, their sessions still usable (engineioxide #731).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_upgrades_are_freed() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv =
            TestServer::start(SocketIo::builder().upgrade_timeout(Duration::from_millis(500)), echo_handlers).await;
        let addr = srv.addr;
        let base_fds = open_fds();
        let sessions = many(300, 50, |_| async move { sio_polling_connect(addr).await }).await;
        let mut candidates = many(300, 50, |i| {
            let p = sessions[i].clone();
            async move {
                Ws::connect_with(addr, &format!("/socket.io/?EIO=4&transport=websocket&sid={}", p.sid), &[])
                    .await
                    .unwrap_or_else(|r| panic!("{r:?}"))
            }
        })
        .await;
        let ends =
            futures_util::future::join_all(candidates.iter_mut().map(|c| c.end_within(Duration::from_secs(10)))).await;
        assert!(ends.iter().all(Option::is_some), "every abandoned candidate is closed");
        drop(candidates);
        for p in sessions.iter().step_by(30) {
            polling_echo(p, r#""not upgraded""#).await;
        }
        assert_eq!(srv.io.connection_count(), 300);
        for p in &sessions {
            let _ = p.post(b"1").await;
        }
        assert!(wait_until(Duration::from_secs(10), || srv.io.connection_count() == 0).await);
        assert!(wait_until(Duration::from_secs(10), || open_fds() <= base_fds + 8).await, "fds not released");
        assert_healthy(addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 6. absurd lengths cost nothing
// ---------------------------------------------------------------------------------------

/// 200 connections each send a frame header announcing 10 GB, 2^63-1 bytes or just
/// under `max_payload` (then a few bytes and silence): the first two are closed with
/// 1009 at once; the last are held but only with what actually arrived. No allocation
/// follows the announced length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announced_lengths_are_not_allocated() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = server_default().await;
        let addr = srv.addr;
        let base = rss_bytes();
        let mut conns = many(200, 50, |_| async move { sio_ws_connect(addr).await.0 }).await;
        for (i, c) in conns.iter_mut().enumerate() {
            let len = match i % 3 {
                0 => 10_000_000_000,
                1 => (1u64 << 63) - 1,
                _ => 999_999,
            };
            let mut h = header_only(OP_BINARY, len);
            h.extend_from_slice(&[0u8; 16]);
            c.send_raw(&h).await.unwrap();
        }
        let ends = futures_util::future::join_all(
            conns.iter_mut().enumerate().filter(|(i, _)| i % 3 != 2).map(|(_, c)| c.end_within(Duration::from_secs(5))),
        )
        .await;
        assert!(ends.iter().all(|e| *e == Some(WsEnd::Close(1009))), "{ends:?}");
        let g = growth(base);
        eprintln!("200 connections announcing huge frames: +{} kB", g / 1024);
        // 67 connections holding a 999 999-byte frame would be 67 MB if preallocated
        assert!(g < 24 * MB, "+{} MB", g / MB);
        drop(conns);
        assert_healthy(addr).await;
    })
    .await;
}

async fn server_default() -> TestServer {
    TestServer::start(SocketIo::builder(), echo_handlers).await
}

// ---------------------------------------------------------------------------------------
// 4. partial binary packets
// ---------------------------------------------------------------------------------------

/// 20 connected clients each announce 10 attachments and send 9 of 800 kB, then stall:
/// what the server holds is bounded by `max_attachment_bytes` per connection (here about
/// 7 MB each, 144 MB in all); every one of them is freed when its connection closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_binary_packets_are_bounded_and_freed() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = server_default().await;
        let addr = srv.addr;
        let base = rss_bytes();
        let phs: Vec<String> = (0..10).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#)).collect();
        let header = format!(r#"4510-["echo",{}]"#, phs.join(","));
        let mut conns = many(20, 10, |_| async move { sio_ws_connect(addr).await.0 }).await;
        let blob = vec![0xabu8; 800_000];
        for c in conns.iter_mut() {
            c.send_text(&header).await.unwrap();
            for _ in 0..9 {
                c.send_binary(&blob).await.unwrap();
            }
        }
        // make sure everything was read: an engine-level ping round trip would not prove
        // it, so wait for the server's RSS to stop growing
        let mut last = 0;
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let g = growth(base);
            if g == last {
                break;
            }
            last = g;
        }
        let held = growth(base);
        eprintln!("20 × 9 pending attachments of 800 kB: +{} MB", held / MB);
        assert!(held < 20 * 10 * MB + 32 * MB, "more than max_attachment_bytes per connection: +{} MB", held / MB);
        for c in conns.iter_mut() {
            c.send_text(r#"42["echo","oops"]"#).await.unwrap();
        }
        let ends = futures_util::future::join_all(conns.iter_mut().map(|c| c.end_within(Duration::from_secs(5)))).await;
        assert!(ends.iter().all(Option::is_some));
        drop(conns);
        assert!(wait_until(Duration::from_secs(5), || srv.io.connection_count() == 0).await);
        assert_healthy(addr).await;
    })
    .await;
}

/// Partial binary packets from clients that never CONNECT are dropped with their
/// connection at `connect_timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_binary_packets_before_connect_end_at_connect_timeout() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder().connect_timeout(Duration::from_secs(1)), echo_handlers).await;
        let addr = srv.addr;
        let mut conns = many(20, 10, |_| async move { Ws::engine(addr).await.0 }).await;
        let blob = vec![1u8; 500_000];
        for c in conns.iter_mut() {
            c.send_text(r#"452-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#).await.unwrap();
            c.send_binary(&blob).await.unwrap();
        }
        let start = Instant::now();
        let ends =
            futures_util::future::join_all(conns.iter_mut().map(|c| c.end_within(Duration::from_secs(10)))).await;
        assert!(ends.iter().all(Option::is_some), "{ends:?}");
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(wait_until(Duration::from_secs(5), || srv.io.connection_count() == 0).await);
        assert_healthy(addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 1. stalled bodies
// ---------------------------------------------------------------------------------------

/// 200 POSTs that declare 999 999 bytes, send 10 and stall: memory stays small (the
/// declared length is not allocated up front as resident memory), and every POST is
/// answered once `ping_interval + ping_timeout` passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_post_bodies_are_cheap_and_time_out() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = TestServer::start(
            SocketIo::builder().ping_interval(Duration::from_millis(1000)).ping_timeout(Duration::from_millis(1000)),
            echo_handlers,
        )
        .await;
        let addr = srv.addr;
        let base = rss_bytes();
        let sessions = many(200, 50, |_| async move { sio_polling_connect(addr).await }).await;
        let mut conns = Vec::new();
        for p in &sessions {
            let mut c = Conn::open(addr).await;
            c.write(
                format!("POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n\r\n42[\"echo\",", p.url())
                    .as_bytes(),
            )
            .await
            .unwrap();
            conns.push(c);
        }
        let g = growth(base);
        eprintln!("200 stalled POSTs: +{} kB", g / 1024);
        assert!(g < 48 * MB, "+{} MB for 200 stalled bodies", g / MB);
        let answers = futures_util::future::join_all(
            conns.iter_mut().map(|c| timeout(Duration::from_secs(10), c.read_response())),
        )
        .await;
        for a in answers {
            let a = a.expect("answered within ping_interval + ping_timeout");
            if let Ok(r) = a {
                assert!(matches!(r.status, 408 | 400), "{r:?}");
            }
        }
        assert!(wait_until(Duration::from_secs(10), || srv.io.connection_count() == 0).await);
        assert_healthy(addr).await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 6. ping flood
// ---------------------------------------------------------------------------------------

/// A client floods WebSocket pings and never reads the pongs. The server answers every
/// ping it reads, so unless it stops reading (or drops the client) while its output is
/// stuck, the pongs pile up in memory at the rate the client sends. Here 64 MB of pings:
/// the server must stay bounded (< 32 MB of growth) and keep serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_without_reading_is_bounded() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = server_default().await;
        let addr = srv.addr;
        let base = rss_bytes();
        let (ws, _) = sio_ws_connect(addr).await;
        let (_rd, mut wr) = ws.conn.stream.into_split();
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.extend(masked(OP_PING, &[0x55; 125]));
        }
        // SHOAL_PING_FLOOD_MB=256 shows the growth is linear in what the client sends
        let flood = std::env::var("SHOAL_PING_FLOOD_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(64u64) * MB;
        let mut sent = 0u64;
        while sent < flood {
            match timeout(Duration::from_secs(2), wr.write_all(&burst)).await {
                Ok(Ok(())) => sent += burst.len() as u64,
                _ => break, // the server stopped reading or closed: fine
            }
        }
        // let the server process what it read
        let mut last = 0;
        for _ in 0..40 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let g = growth(base);
            if g == last {
                break;
            }
            last = g;
        }
        let g = growth(base);
        eprintln!("ping flood: {} MB sent, server +{} MB", sent / MB, g / MB);
        assert!(g < 32 * MB, "{} MB of pings unread cost the server {} MB", sent / MB, g / MB);
        assert_healthy(addr).await;
    })
    .await;
}

/// A ping flood from a client that does read: every ping is answered and other clients
/// are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_flood_with_reading_is_answered() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = server_default().await;
        let addr = srv.addr;
        let (ws, _) = sio_ws_connect(addr).await;
        let Ws { conn, .. } = ws;
        let (mut rd, mut wr) = conn.stream.into_split();
        const N: usize = 100_000;
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            // count pong frames of 2 + 8 bytes
            let mut total = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            while total < N * 10 {
                let n = rd.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed after {} pongs", total / 10);
                total += n;
            }
            total / 10
        });
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.extend(masked(OP_PING, b"12345678"));
        }
        let writer = tokio::spawn(async move {
            for _ in 0..N / 1000 {
                wr.write_all(&burst).await.unwrap();
            }
            wr
        });
        assert_healthy(addr).await;
        let pongs = timeout(Duration::from_secs(30), reader).await.expect("all pongs in time").unwrap();
        assert_eq!(pongs, N);
        drop(writer.await.unwrap());
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// 8. clients that never read
// ---------------------------------------------------------------------------------------

/// Records the disconnect reasons of the main namespace.
fn recording_setup(reasons: Arc<Mutex<Vec<DisconnectReason>>>) -> impl FnOnce(&SocketIo) {
    move |io: &SocketIo| {
        echo_handlers(io);
        let reasons = reasons.clone();
        io.of("/").on_connect(move |socket: Socket| {
            let reasons = reasons.clone();
            async move {
                socket.on("echo", |s: Socket, ev: shoal::Event| async move {
                    let _ = s.emit_args("echo", ev.into_args());
                });
                socket.on_disconnect(move |_s: Socket, reason: DisconnectReason| {
                    let reasons = reasons.clone();
                    async move { reasons.lock().push(reason) }
                });
            }
        });
    }
}

/// A WebSocket client that never reads while the server sends to it 64 kB at a time:
/// disconnected as a slow consumer once its queue passes `max_buffered_bytes` (8 MiB),
/// with memory bounded by that queue plus one write buffer; others are served
/// throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_client_that_never_reads_is_a_slow_consumer() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let srv = TestServer::start(SocketIo::builder(), recording_setup(reasons.clone())).await;
        let addr = srv.addr;
        let base = rss_bytes();
        let (slow, sid) = sio_ws_connect(addr).await; // kept open, never read again
        let payload = "z".repeat(64 * 1024);
        let mut sent = 0usize;
        let start = Instant::now();
        while reasons.lock().is_empty() && sent < 4096 {
            let _ = srv.io.to(sid.clone()).emit("big", &payload);
            sent += 1;
            if sent.is_multiple_of(64) {
                tokio::task::yield_now().await;
            }
        }
        let g = growth(base);
        eprintln!("never-reading websocket: {sent} × 64 kB emitted in {:?}, server +{} MB", start.elapsed(), g / MB);
        assert_eq!(reasons.lock().as_slice(), &[DisconnectReason::SlowConsumer]);
        assert!(sent < 4096, "never disconnected");
        assert!(g < 64 * MB, "+{} MB", g / MB);
        assert_healthy(addr).await;
        drop(slow);
    })
    .await;
}

/// The same for a polling client that never polls again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_client_that_never_polls_is_a_slow_consumer() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let srv = TestServer::start(SocketIo::builder(), recording_setup(reasons.clone())).await;
        let addr = srv.addr;
        let base = rss_bytes();
        let p = Polling::handshake(addr).await;
        assert_eq!(p.post(b"40").await.status, 200);
        let connected = p.get_until(|s| s.starts_with("40")).await;
        let v: serde_json::Value = serde_json::from_str(&connected[2..]).unwrap();
        let sid = v["sid"].as_str().unwrap().to_owned();
        let payload = "z".repeat(64 * 1024);
        let mut sent = 0usize;
        while reasons.lock().is_empty() && sent < 4096 {
            let _ = srv.io.to(sid.clone()).emit("big", &payload);
            sent += 1;
        }
        let g = growth(base);
        eprintln!("never-polling client: {sent} × 64 kB emitted, server +{} MB", g / MB);
        assert_eq!(reasons.lock().as_slice(), &[DisconnectReason::SlowConsumer]);
        // 127 packets of 64 kB fit in 8 MiB; a few more emits may run before the
        // disconnect handler has recorded the reason (they fail: the session is closing)
        assert!(sent < 200, "queue bound: {sent} emits before the disconnect");
        assert!(g < 64 * MB);
        assert!(p.gone_within(Duration::from_secs(5)).await);
        assert_healthy(addr).await;
    })
    .await;
}

/// Many connected clients that never read while everyone gets a broadcast: each slow
/// one is dropped, the reading client gets every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_to_non_readers_does_not_hurt_readers() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let srv = TestServer::start(SocketIo::builder(), recording_setup(reasons.clone())).await;
        let addr = srv.addr;
        let base = rss_bytes();
        let slow = many(20, 10, |_| async move { sio_ws_connect(addr).await.0 }).await;
        let (reader_ws, _) = sio_ws_connect(addr).await;
        let Ws { conn, response } = reader_ws;
        let (mut rd, wr) = conn.stream.into_split();
        let payload = "q".repeat(32 * 1024);
        const N: usize = 600; // 19 MB per client: over the 8 MiB queue of a non-reader
        let reader = tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut got = 0usize;
            let mut buf = vec![0u8; 256 * 1024];
            let per = 32 * 1024 + 12 + 4; // frame header + `42["big","…"]`
            while got < N * per {
                let n = rd.read(&mut buf).await.unwrap();
                assert!(n > 0, "the reading client was disconnected");
                got += n;
            }
            got
        });
        for i in 0..N {
            srv.io.emit("big", &payload).unwrap();
            if i.is_multiple_of(16) {
                tokio::task::yield_now().await;
            }
        }
        timeout(Duration::from_secs(30), reader).await.expect("the reader gets everything").unwrap();
        assert!(wait_until(Duration::from_secs(10), || reasons.lock().len() >= 20).await, "{:?}", reasons.lock());
        assert!(reasons.lock().iter().all(|r| *r == DisconnectReason::SlowConsumer));
        let g = growth(base);
        eprintln!("broadcast to 20 non-readers: server +{} MB", g / MB);
        assert!(g < 20 * 24 * MB, "+{} MB", g / MB);
        drop((slow, wr, response));
        assert_healthy(addr).await;
    })
    .await;
}

/// Events whose handler waits (here 3 s, like a slow database call) each become a task
/// (handlers are spawned when they do not finish at once). A client sending 300 000 tiny
/// events (4 MB on the wire) as fast as it can must not make the server hold one task
/// per event: past `max_pending_handlers` the connection stops reading (TCP
/// backpressure). This measures that the server's memory stays bounded (< 64 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_handlers_do_not_pile_up_without_bound() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = TestServer::start(SocketIo::builder(), |io: &SocketIo| {
            echo_handlers(io);
            io.of("/").on_connect(|socket: Socket| async move {
                socket.on("echo", |s: Socket, ev: shoal::Event| async move {
                    let _ = s.emit_args("echo", ev.into_args());
                });
                socket.on("slow", |_s: Socket, _ev: shoal::Event| async move {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                });
            });
        })
        .await;
        let addr = srv.addr;
        let base = rss_bytes();
        let (ws, _) = sio_ws_connect(addr).await;
        let (_rd, mut wr) = ws.conn.stream.into_split();
        let mut burst = Vec::new();
        for _ in 0..1000 {
            burst.extend(masked(OP_TEXT, br#"42["slow"]"#));
        }
        for _ in 0..300 {
            if timeout(Duration::from_secs(2), wr.write_all(&burst)).await.is_err() {
                break; // backpressure: fine
            }
        }
        let mut peak = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            peak = peak.max(growth(base));
        }
        eprintln!("300 000 waiting handlers: server +{} MB", peak / MB);
        assert!(peak < 64 * MB, "+{} MB for 4 MB of events", peak / MB);
    })
    .await;
}

/// 1000 TCP connections that never send a byte (and 200 that send half a request line):
/// all closed by the header timeout (1 s here), normal clients served meanwhile, every
/// descriptor released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_by_the_header_timeout() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let config = shoal::ServerConfig { header_read_timeout: Duration::from_secs(1), ..Default::default() };
        let srv = TestServer::start_with_config(SocketIo::builder(), config, echo_handlers).await;
        let addr = srv.addr;
        let base_fds = open_fds();
        let mut conns = many(1200, 200, |i| async move {
            let mut c = Conn::open(addr).await;
            if i % 6 == 0 {
                c.write(b"GET /socket.io/?EIO=4&transpo").await.unwrap();
            }
            c
        })
        .await;
        let start = Instant::now();
        assert_healthy(addr).await;
        let ends =
            futures_util::future::join_all(conns.iter_mut().map(|c| c.closed_within(Duration::from_secs(10)))).await;
        assert!(
            ends.iter().all(|closed| *closed),
            "{} silent connections left open",
            ends.iter().filter(|c| !**c).count()
        );
        assert!(start.elapsed() < Duration::from_secs(5), "closed after {:?}", start.elapsed());
        drop(conns);
        assert!(wait_until(Duration::from_secs(10), || open_fds() <= base_fds + 8).await, "fds not released");
        assert_eq!(srv.io.connection_count(), 0);
    })
    .await;
}

/// 300 polling sessions each sent an invalid binary POST (`Content-Type:
/// application/octet-stream`, CVE-2026-59725): every request is answered (400), every
/// session closed, and the process's descriptors return to their baseline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_binary_posts_release_their_connections() {
    let _serial = SERIAL.lock().await;
    bounded(LIMIT, async {
        let srv = server_default().await;
        let addr = srv.addr;
        let base_fds = open_fds();
        for _ in 0..300 {
            let s = Polling::handshake(addr).await;
            let r = request(addr, "POST", &s.url(), &["Content-Type: application/octet-stream"], b"\x04\xff\x00").await;
            r.assert_eio_error(400, 3);
        }
        assert!(
            wait_until(Duration::from_secs(10), || open_fds() <= base_fds + 8).await,
            "fds: {} before, {} after 300 refused binary posts",
            base_fds,
            open_fds()
        );
        assert!(wait_until(Duration::from_secs(10), || srv.io.connection_count() == 0).await);
        assert_healthy(addr).await;
    })
    .await;
}
