//! Shared helpers of the multi-node tests (`nodes.rs` and `deploy.rs` include this file
//! with `#[path = "support/nodes.rs"] mod support;`; a subdirectory, so cargo does not
//! build it as a test of its own):
//! `shoal serve` processes ([`Node`]), raw HTTP ([`request`]) and a raw polling client
//! ([`Polling`]) that can send each request to any node.

#![allow(dead_code, missing_docs, missing_debug_implementations, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");

/// A running `shoal serve`, killed on drop.
pub struct Node {
    pub child: Child,
    pub addr: SocketAddr,
    pub id: String,
    pub lines: mpsc::Receiver<String>,
}

impl Node {
    /// Starts `shoal serve --port 0 --host 127.0.0.1 <args>` and waits for its "listening
    /// on" line.
    pub fn start(args: &[&str]) -> Node {
        let mut child = Command::new(SHOAL)
            .args(["serve", "--port", "0", "--host", "127.0.0.1"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn shoal");
        let stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var_os("SHOAL_NODE_LOG").is_some() {
                    eprintln!("[shoal] {line}");
                }
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        let (addr, id) = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("shoal listening on http://").nth(1) {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        let id = line.split("node=").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
                        let id = id.trim_end_matches(':').to_owned();
                        break (addr.parse().unwrap_or_else(|e| panic!("bad address in {line:?}: {e}")), id);
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("no \"listening on\" line; log so far:\n{}", seen.join("\n"));
                }
            }
        };
        Node { child, addr, id, lines }
    }

    /// Sends `signal` (`TERM`, `USR1`, `KILL`) with the `kill` command.
    pub fn signal(&self, signal: &str) {
        let ok =
            Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status().expect("kill");
        assert!(ok.success(), "kill -{signal} failed");
    }

    /// SIGKILL, and waits for the exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The log lines received so far.
    pub fn log(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), with extra header
/// lines (`"name: value"`).
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if method == "POST" {
        req.push_str(&format!("Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    stream.write_all(req.as_bytes()).await.expect("write request");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(40), stream.read_to_end(&mut raw))
        .await
        .expect("response within 40 s")
        .expect("read response");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("end of head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("status code");
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Answer { status, head, body }
}

/// Decodes a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
}

pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], "").await
}

/// A Socket.IO client over raw HTTP long-polling; each request goes to the node given.
pub struct Polling {
    pub sid: String,
    /// Engine.IO packets received and not yet looked at.
    pub inbox: Vec<String>,
}

impl Polling {
    /// Engine.IO handshake on `addr` (no Socket.IO connect yet).
    pub async fn open(addr: SocketAddr) -> Polling {
        let a = get(addr, "/socket.io/?EIO=4&transport=polling").await;
        assert_eq!(a.status, 200, "{}", a.text());
        let open: serde_json::Value = serde_json::from_slice(&a.body[1..]).expect("open packet");
        Polling { sid: open["sid"].as_str().expect("sid").to_owned(), inbox: Vec::new() }
    }

    pub fn url(&self) -> String {
        format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid)
    }

    pub async fn post(&self, addr: SocketAddr, packet: &str) -> Answer {
        request(addr, "POST", &self.url(), &[], packet).await
    }

    pub async fn poll(&self, addr: SocketAddr) -> Answer {
        get(addr, &self.url()).await
    }

    /// Polls `addr` until a packet matching `pred` arrives; returns it.
    pub async fn expect(&mut self, addr: SocketAddr, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(i) = self.inbox.iter().position(|p| pred(p)) {
                return self.inbox.remove(i);
            }
            assert!(Instant::now() < deadline, "no matching packet; got {:?}", self.inbox);
            let a = self.poll(addr).await;
            assert_eq!(a.status, 200, "{}", a.text());
            self.inbox.extend(a.text().split('\u{1e}').filter(|p| *p != "2").map(str::to_owned));
        }
    }
}
