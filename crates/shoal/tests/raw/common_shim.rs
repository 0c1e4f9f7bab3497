//! Shared helpers for the integration tests: a real Shoal server on a free loopback port.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use shoal::{SocketIo, SocketIoBuilder};
use tokio::sync::oneshot;

/// A server running on 127.0.0.1 on a free port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    pub io: SocketIo,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Builds the server from `builder`, lets `setup` register namespaces and handlers,
    /// then serves it. Returns once the listener is bound.
    pub async fn start(builder: SocketIoBuilder, setup: impl FnOnce(&SocketIo)) -> TestServer {
        Self::start_with_config(builder, shoal::ServerConfig::default(), setup).await
    }

    /// As [`TestServer::start`] with explicit HTTP limits.
    pub async fn start_with_config(
        builder: SocketIoBuilder,
        config: shoal::ServerConfig,
        setup: impl FnOnce(&SocketIo),
    ) -> TestServer {
        let io = builder.build().expect("valid test settings");
        setup(&io);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a free port");
        let addr = listener.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let io2 = io.clone();
        let task = tokio::spawn(async move {
            let _ = shoal::serve_with(listener, io2, shoal_engineio::NotFound, config, async {
                let _ = stopped.await;
            })
            .await;
        });
        TestServer { addr, io, stop: Some(stop), task: Some(task) }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server and waits for the shutdown to finish.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(15), t).await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Polls `f` every 10 ms until it returns true or `timeout` passes; returns the last value.
pub async fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
