//! Smoke test: two Shoal nodes over a throw-away Redis; a broadcast to a room on one node
//! reaches a raw client of the other, byte for byte, and fetch sockets sees it.
//!
//! Needs `redis-server` (`scripts/deps`).

use std::ops::ControlFlow;
use std::time::Duration;

use shoal::{Socket, SocketIo};
use shoal_bench::conn::WsClient;
use shoal_bench::proto::{self, Incoming};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
use shoal_testkit::RedisServer;

const T: Duration = Duration::from_secs(10);

async fn node(url: &str) -> (SocketIo, std::net::SocketAddr) {
    let factory = RedisAdapterFactory::connect(RedisAdapterConfig::new(url)).await.unwrap();
    let io = SocketIo::builder().adapter(factory).build().unwrap();
    io.of("/").on_connect(|s: Socket| async move {
        s.join("room1");
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let io2 = io.clone();
    tokio::spawn(async move { shoal::serve(listener, io2, std::future::pending()).await });
    (io, addr)
}

/// Waits until `io` counts `n` servers (its adapter subscribed, and the others').
async fn wait_server_count(io: &SocketIo, n: usize) {
    tokio::time::timeout(T, async {
        while io.of("/").server_count().await.ok() != Some(n) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("server count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_the_other_node() {
    let redis = RedisServer::start().await;
    let (io_a, _addr_a) = node(&redis.url()).await;
    let (io_b, addr_b) = node(&redis.url()).await;
    wait_server_count(&io_a, 2).await;
    wait_server_count(&io_b, 2).await;
    assert_eq!(redis.numsub("socket.io-request#/#").await, 2);

    let mut client = WsClient::connect_socketio(addr_b, None, 1).await.unwrap();
    // the connect handler (joining room1) runs right after the CONNECT is queued
    tokio::time::timeout(T, async {
        while !io_b.of("/").sockets().iter().any(|s| s.in_room("room1")) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    io_a.to("room1").emit("hello", &"world").unwrap();
    let mut got = None;
    tokio::time::timeout(
        T,
        client.run(|f, _| {
            if let Incoming::Event { name, raw } = proto::classify(f) {
                got = Some((name.to_vec(), raw.to_vec()));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let (name, raw) = got.unwrap();
    assert_eq!(name, b"hello");
    assert_eq!(raw, b"42[\"hello\",\"world\"]");
    let sockets = io_a.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
    assert_eq!(sockets[0].id, io_b.of("/").sockets()[0].id().as_str());
}
