//! A Socket.IO client over raw HTTP long-polling.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::http::{Answer, REQUEST_WITHIN, get_within, request_within};

/// How long a [`Polling`] client waits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For the whole response of each HTTP request.
    pub request: Duration,
    /// In [`Polling::expect`], for the packet expected.
    pub packet: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { request: REQUEST_WITHIN, packet: Duration::from_secs(30) }
    }
}

/// A Socket.IO client over raw HTTP long-polling; each request goes to the node given.
pub struct Polling {
    pub sid: String,
    /// Engine.IO packets received and not yet looked at.
    pub inbox: Vec<String>,
    pub limits: Limits,
}

impl Polling {
    /// Engine.IO handshake on `addr` (no Socket.IO connect yet), with the default
    /// [`Limits`].
    pub async fn open(addr: SocketAddr) -> Polling {
        Polling::open_with(addr, Limits::default()).await
    }

    /// Engine.IO handshake on `addr` (no Socket.IO connect yet).
    pub async fn open_with(addr: SocketAddr, limits: Limits) -> Polling {
        let a = get_within(addr, "/socket.io/?EIO=4&transport=polling", limits.request).await;
        assert_eq!(a.status, 200, "{}", a.text());
        let open: serde_json::Value = serde_json::from_slice(&a.body[1..]).expect("open packet");
        Polling { sid: open["sid"].as_str().expect("sid").to_owned(), inbox: Vec::new(), limits }
    }

    /// Engine.IO handshake on `addr`, then the Socket.IO connect to the main namespace
    /// (its answer taken).
    pub async fn connect_with(addr: SocketAddr, limits: Limits) -> Polling {
        let mut client = Polling::open_with(addr, limits).await;
        client.send(addr, "40").await;
        client.expect(addr, |p| p.starts_with("40{")).await;
        client
    }

    pub fn url(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    pub async fn post(&self, addr: SocketAddr, packet: &str) -> Answer {
        request_within(addr, "POST", &self.url(), &[], packet, self.limits.request).await
    }

    /// Posts `packet` to `addr`; asserts a 200.
    pub async fn send(&self, addr: SocketAddr, packet: &str) {
        let a = self.post(addr, packet).await;
        assert_eq!(a.status, 200, "{}", a.text());
    }

    pub async fn poll(&self, addr: SocketAddr) -> Answer {
        get_within(addr, &self.url(), self.limits.request).await
    }

    /// Polls `addr` until a packet matching `pred` arrives; returns it (others stay in the
    /// inbox).
    pub async fn expect(&mut self, addr: SocketAddr, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + self.limits.packet;
        loop {
            if let Some(i) = self.inbox.iter().position(|p| pred(p)) {
                return self.inbox.remove(i);
            }
            assert!(Instant::now() < deadline, "no matching packet; got {:?}", self.inbox);
            let a = self.poll(addr).await;
            assert_eq!(a.status, 200, "{}", a.text());
            let text = String::from_utf8(a.body).expect("text payload");
            self.inbox.extend(text.split('\u{1e}').filter(|p| *p != "2").map(str::to_owned));
        }
    }
}
