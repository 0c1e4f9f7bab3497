//! The scenarios run end to end against a real Shoal server implementing the benchmark
//! contract, at a small scale: the figures must account for every message.

use std::ops::ControlFlow;
use std::time::Duration;

use serde_json::Value;
use shoal::{Event, Socket, SocketIo};
use shoal_bench::conn::WsClient;
use shoal_bench::proto::{self, Incoming};
use shoal_bench::scenarios::{self, Target};

async fn contract_server() -> std::net::SocketAddr {
    let io = SocketIo::builder().build().expect("settings");
    io.of("/").on_connect(|socket: Socket| async move {
        socket.join("bench");
        socket.on("echo", |_s: Socket, mut ev: Event| async move {
            let args = ev.args().clone();
            let _ = ev.ack_args(args);
        });
        socket.on("count", |s: Socket, mut ev: Event| async move {
            let n = s.namespace().socket_count();
            let _ = ev.ack(&n);
        });
        socket.on("burst", |s: Socket, ev: Event| async move {
            let v: Value = ev.data().unwrap_or_default();
            let n = v["n"].as_u64().unwrap_or(0);
            for i in 0..n {
                let _ = s.namespace().to("bench").emit("msg", &v["payload"]);
                if i % 64 == 63 {
                    tokio::task::yield_now().await;
                }
            }
        });
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = shoal::serve(listener, io, std::future::pending()).await;
    });
    addr
}

fn target(addr: std::net::SocketAddr) -> Target {
    // the server runs in this process: its CPU and memory are ours
    let mut t = Target::new(addr, Some(std::process::id()), "test", 2);
    t.progress = false;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_accounts_for_every_message() {
    let addr = contract_server().await;
    let cfg = scenarios::fanout::Fanout { clients: 20, messages: 50, payload: 40, timeout: Duration::from_secs(20) };
    let r = tokio::time::timeout(Duration::from_secs(60), scenarios::fanout::run(&target(addr), cfg))
        .await
        .expect("bounded")
        .expect("runs");
    assert_eq!(r["scenario"], "fanout");
    assert_eq!(r["clients"], 20);
    assert_eq!(r["expected"], 1000);
    assert_eq!(r["delivered"], 1000, "{r}");
    assert_eq!(r["lost"], 0);
    assert!(r["delivered_per_s"].as_f64().unwrap() > 0.0);
    assert!(r["first_msg_ms_max"].as_f64().unwrap() >= r["first_msg_ms_min"].as_f64().unwrap());
    assert!(r["server_cpu_us_per_msg"].as_f64().is_some(), "server figures with a pid: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_counts_acks_and_latencies() {
    let addr = contract_server().await;
    let cfg = scenarios::echo::Echo {
        clients: 5,
        duration: Duration::from_millis(500),
        warmup: Duration::from_millis(100),
        payload: 20,
    };
    let r = tokio::time::timeout(Duration::from_secs(60), scenarios::echo::run(&target(addr), cfg))
        .await
        .expect("bounded")
        .expect("runs");
    let acks = r["acks"].as_u64().unwrap();
    assert!(acks > 10, "{r}");
    assert!(r["p50_us"].as_u64().unwrap() <= r["p99_us"].as_u64().unwrap());
    assert!(r["p99_us"].as_u64().unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_handshake_scenarios_run() {
    let addr = contract_server().await;
    let r =
        scenarios::idle::run(&target(addr), scenarios::idle::Idle { clients: 30, settle: Duration::from_millis(200) })
            .await
            .expect("idle runs");
    assert_eq!(r["clients"], 30);
    assert_eq!(r["connect_failures"], 0);
    assert!(r["rss_per_client_bytes"].is_number(), "{r}");

    let r = scenarios::handshake::run(
        &target(addr),
        scenarios::handshake::Handshake { concurrency: 4, duration: Duration::from_millis(500) },
    )
    .await
    .expect("handshake runs");
    assert!(r["sessions"].as_u64().unwrap() > 0, "{r}");
    assert_eq!(r["failures"], 0, "{r}");
}

/// The client's codec against the real server: connect, ask `count`, get the ack.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_speaks_the_protocol() {
    let addr = contract_server().await;
    let mut c = WsClient::connect_socketio(addr, None, 7).await.expect("connects");
    let mut buf = Vec::new();
    proto::event(&mut buf, "count", "", Some(3));
    c.queue_text(&buf);
    let mut got = None;
    tokio::time::timeout(
        Duration::from_secs(5),
        c.run(|frame, _| {
            if let Incoming::Ack { id, raw } = proto::classify(frame) {
                got = Some((id, raw.to_vec()));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }),
    )
    .await
    .expect("answered")
    .expect("no error");
    assert_eq!(got, Some((3, b"[1]".to_vec())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_echo_counts_acks_over_long_polling() {
    let addr = contract_server().await;
    let cfg = scenarios::poll::Poll {
        clients: 4,
        duration: Duration::from_millis(500),
        warmup: Duration::from_millis(100),
        payload: 20,
        via: None,
        via_pid: None,
    };
    let r = tokio::time::timeout(Duration::from_secs(60), scenarios::poll::run(&target(addr), cfg))
        .await
        .expect("bounded")
        .expect("runs");
    assert_eq!(r["scenario"], "poll");
    assert_eq!(r["session_failures"], 0, "{r}");
    assert_eq!(r["client_errors"], 0, "{r}");
    assert_eq!(r["forwarded"], false);
    assert!(r["acks"].as_u64().unwrap() > 4, "{r}");
    assert!(r["p50_us"].as_u64().unwrap() <= r["p99_us"].as_u64().unwrap());
}

#[tokio::test]
async fn http_conn_reads_length_and_chunked_answers_on_one_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        let mut buf = [0u8; 1024];
        // two requests on the same connection; answer each once its head is complete
        for answer in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"[..],
            &b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n"[..],
        ] {
            while seen.windows(4).filter(|w| *w == b"\r\n\r\n").count() < 1 {
                let n = s.read(&mut buf).await.unwrap();
                seen.extend_from_slice(&buf[..n]);
            }
            let end = seen.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            seen.drain(..end);
            s.write_all(answer).await.unwrap();
        }
    });
    let mut c = shoal_bench::scenarios::poll::HttpConn::connect(addr, None).await.unwrap();
    assert_eq!(c.request("GET", "/a", b"").await.unwrap(), (200, b"hello".to_vec()));
    assert_eq!(c.request("GET", "/b", b"").await.unwrap(), (201, b"abcde".to_vec()));
}
