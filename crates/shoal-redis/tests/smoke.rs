//! Two Shoal nodes over Redis (scratch test against the local Redis on 6379).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use shoal::{Socket, SocketIo};
use shoal_bench::conn::WsClient;
use shoal_bench::proto::{self, Incoming};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};

async fn node(key: &str) -> (SocketIo, std::net::SocketAddr) {
    let factory =
        RedisAdapterFactory::connect(RedisAdapterConfig::new("redis://127.0.0.1:6379").key(key)).await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_reaches_the_other_node() {
    let key = format!("smoke{}", std::process::id());
    let (io_a, _addr_a) = node(&key).await;
    let (_io_b, addr_b) = node(&key).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(io_a.of("/").server_count().await.unwrap(), 2);
    let mut client = WsClient::connect_socketio(addr_b, None, 1).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    io_a.to("room1").emit("hello", &"world").unwrap();
    let got = Arc::new(std::sync::Mutex::new(None));
    let g2 = got.clone();
    tokio::time::timeout(
        Duration::from_secs(5),
        client.run(move |f, _| {
            if let Incoming::Event { name, raw } = proto::classify(f) {
                *g2.lock().unwrap() = Some((name.to_vec(), raw.to_vec()));
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }),
    )
    .await
    .unwrap()
    .unwrap();
    let (name, raw) = got.lock().unwrap().clone().unwrap();
    assert_eq!(name, b"hello");
    assert_eq!(raw, b"42[\"hello\",\"world\"]");
    let sockets = io_a.of("/").fetch_sockets().await.unwrap();
    assert_eq!(sockets.len(), 1);
}
