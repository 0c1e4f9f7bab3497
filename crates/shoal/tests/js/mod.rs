//! Helpers for the tests that drive the official JavaScript client (`tests/js`):
//! launching a Node scenario and talking to it through its stdout lines, bounding every
//! wait, and a tiny raw WebSocket client for what the official client cannot do
//! (stop reading, never answer pings, send malformed packets).
//!
//! A scenario prints one JSON object per line: `{"event": NAME, ...}` while it runs and
//! `{"result": ...}` last, then exits 0; on failure it explains on stderr and exits 1.
#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// How long one wait for a scenario line may take by default.
pub(crate) const LINE_TIMEOUT: Duration = Duration::from_secs(30);

/// The repository root (`crates/shoal/../..`).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

/// `tests/js` of the repository, checked to have its dependencies installed.
pub(crate) fn js_dir() -> PathBuf {
    let dir = repo_root().join("tests").join("js");
    let client = dir.join("node_modules").join("socket.io-client").join("package.json");
    assert!(
        client.is_file(),
        "{} is missing: the JavaScript client tests need their dependencies, run `npm ci --prefix tests/js` \
         from the repository root first",
        client.display()
    );
    dir
}

/// Runs `fut`, failing the test if it takes longer than `secs` seconds.
pub(crate) async fn bounded<F: Future>(secs: u64, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(Duration::from_secs(secs), fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: did not finish within {secs} s"),
    }
}

/// Receives from `rx` within `timeout`, failing the test otherwise.
pub(crate) async fn recv<T>(rx: &mut mpsc::UnboundedReceiver<T>, timeout: Duration, what: &str) -> T {
    match tokio::time::timeout(timeout, rx.recv()).await {
        Ok(Some(v)) => v,
        Ok(None) => panic!("{what}: channel closed"),
        Err(_) => panic!("{what}: nothing within {timeout:?}"),
    }
}

/// Receives `n` items from `rx`, all within `timeout`.
pub(crate) async fn recv_n<T>(rx: &mut mpsc::UnboundedReceiver<T>, n: usize, timeout: Duration, what: &str) -> Vec<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(v)) => out.push(v),
            Ok(None) => panic!("{what}: channel closed after {} of {n}", out.len()),
            Err(_) => panic!("{what}: only {} of {n} within {timeout:?}", out.len()),
        }
    }
    out
}

/// Asserts that nothing arrives on `rx` for `quiet` (a short bounded wait).
pub(crate) async fn assert_quiet<T: std::fmt::Debug>(rx: &mut mpsc::UnboundedReceiver<T>, quiet: Duration, what: &str) {
    if let Ok(Some(v)) = tokio::time::timeout(quiet, rx.recv()).await {
        panic!("{what}: unexpected {v:?}");
    }
}

enum Line {
    Json(Value),
    Text(String),
}

/// A running Node scenario (killed when dropped).
pub(crate) struct NodeScenario {
    name: String,
    child: Option<Child>,
    pid: u32,
    lines: mpsc::UnboundedReceiver<Line>,
    stderr: Arc<Mutex<String>>,
    seen: Vec<Value>,
}

impl NodeScenario {
    /// Starts `node tests/js/scenario.mjs <name> <url> <params as JSON>`.
    pub(crate) fn spawn(name: &str, url: &str, params: Value) -> NodeScenario {
        let dir = js_dir();
        let mut child = Command::new("node")
            .arg(dir.join("scenario.mjs"))
            .arg(name)
            .arg(url)
            .arg(params.to_string())
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start node (is Node.js installed?): {e}"));
        let pid = child.id();
        let (tx, lines) = mpsc::unbounded_channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let msg = match serde_json::from_str::<Value>(&line) {
                    Ok(v @ Value::Object(_)) => Line::Json(v),
                    _ => Line::Text(line),
                };
                if tx.send(msg).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        // SHOAL_JS_STDERR=1 shows the scenario's stderr as it comes (with DEBUG=socket.io-client:*
        // or DEBUG=engine.io-client:* for the client's own traces)
        let echo = std::env::var_os("SHOAL_JS_STDERR").is_some();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let text = String::from_utf8_lossy(&buf[..n]);
                if echo {
                    eprint!("{text}");
                }
                sink.lock().unwrap().push_str(&text);
            }
        });
        NodeScenario { name: name.to_owned(), child: Some(child), pid, lines, stderr, seen: Vec::new() }
    }

    /// The process id (to stop and continue it).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    fn fail(&self, why: &str) -> ! {
        panic!("scenario `{}`: {why}\n-- lines so far: {:?}\n-- stderr:\n{}", self.name, self.seen, self.stderr());
    }

    async fn next_json(&mut self, timeout: Duration, waiting_for: &str) -> Value {
        match tokio::time::timeout(timeout, self.lines.recv()).await {
            Ok(Some(Line::Json(v))) => {
                self.seen.push(v.clone());
                v
            }
            Ok(Some(Line::Text(t))) => self.fail(&format!("printed a line that is not a JSON object: {t:?}")),
            Ok(None) => {
                // the process is gone: give the stderr reader a moment to collect its reason
                for _ in 0..20 {
                    if !self.stderr().is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                self.fail(&format!("exited while waiting for {waiting_for}"))
            }
            Err(_) => self.fail(&format!("nothing within {timeout:?} while waiting for {waiting_for}")),
        }
    }

    /// Waits for the line `{"event": name, ...}` (skipping other events) and returns it.
    pub(crate) async fn event(&mut self, name: &str) -> Value {
        self.event_within(name, LINE_TIMEOUT).await
    }

    /// As [`NodeScenario::event`] with an explicit timeout.
    pub(crate) async fn event_within(&mut self, name: &str, timeout: Duration) -> Value {
        let what = format!("event {name:?}");
        loop {
            let v = self.next_json(timeout, &what).await;
            if v.get("event").and_then(Value::as_str) == Some(name) {
                return v;
            }
            if v.get("result").is_some() {
                self.fail(&format!("finished while waiting for {what}"));
            }
        }
    }

    /// Waits for the `{"result": ...}` line and a successful exit; returns the result.
    pub(crate) async fn result(self) -> Value {
        self.result_within(LINE_TIMEOUT).await
    }

    /// As [`NodeScenario::result`] with an explicit timeout.
    pub(crate) async fn result_within(mut self, timeout: Duration) -> Value {
        let result = loop {
            let v = self.next_json(timeout, "the result").await;
            if let Some(r) = v.get("result") {
                break r.clone();
            }
        };
        let mut child = self.child.take().expect("child still owned");
        let waited = tokio::time::timeout(Duration::from_secs(10), tokio::task::spawn_blocking(move || child.wait()));
        match waited.await {
            Ok(Ok(Ok(status))) if status.success() => result,
            Ok(Ok(Ok(status))) => self.fail(&format!("printed its result but exited with {status}")),
            Ok(other) => self.fail(&format!("could not wait for the process: {other:?}")),
            Err(_) => {
                let _ = Command::new("kill").arg("-KILL").arg(self.pid.to_string()).status();
                self.fail("printed its result but did not exit within 10 s (a socket or timer left open?)")
            }
        }
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the process.
    pub(crate) fn signal(&self, sig: &str) {
        assert!(self.child.is_some(), "the process was already reaped");
        signal(self.pid, sig);
    }

    /// Kills the process and waits for it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeScenario {
    fn drop(&mut self) {
        // SIGKILL ends a stopped (SIGSTOP) process too
        self.kill();
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status();
    assert!(status.is_ok_and(|s| s.success()), "kill -{sig} {pid} failed");
}

// ---------------------------------------------------------------------------------------
// A raw WebSocket client, for behaviour the official client never shows.

/// A frame read by [`RawWs`].
#[derive(Debug, PartialEq)]
pub(crate) enum Frame {
    Text(String),
    Binary(Vec<u8>),
    Close(Option<u16>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

/// A minimal Engine.IO-over-WebSocket client (RFC 6455 client side, no extensions).
pub(crate) struct RawWs {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RawWs {
    /// Opens `ws://addr/socket.io/?EIO=4&transport=websocket` and reads the Engine.IO open
    /// packet. `recv_buffer` shrinks the socket's receive buffer (set before connecting,
    /// so the advertised window stays small): a client that stops reading then blocks the
    /// server after a few kilobytes.
    pub(crate) async fn connect(addr: SocketAddr, recv_buffer: Option<u32>) -> (RawWs, Value) {
        let socket = tokio::net::TcpSocket::new_v4().expect("tcp socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let mut stream = socket.connect(addr).await.expect("connect to the test server");
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("send upgrade request");
        let mut buf = Vec::new();
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.expect("read upgrade answer");
            assert!(n > 0, "connection closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        buf.drain(..head_end);
        let mut ws = RawWs { stream, buf };
        let open = match ws.recv().await {
            Some(Frame::Text(t)) if t.starts_with('0') => serde_json::from_str(&t[1..]).expect("open packet JSON"),
            other => panic!("expected the Engine.IO open packet, got {other:?}"),
        };
        (ws, open)
    }

    /// Connects and joins namespace `/`: returns the socket id.
    pub(crate) async fn connect_root(addr: SocketAddr, recv_buffer: Option<u32>) -> (RawWs, String) {
        let (mut ws, _open) = RawWs::connect(addr, recv_buffer).await;
        ws.send_text("40").await;
        loop {
            match ws.recv().await {
                Some(Frame::Text(t)) if t.starts_with("40") => {
                    let v: Value = serde_json::from_str(&t[2..]).expect("CONNECT answer JSON");
                    let sid = v["sid"].as_str().expect("sid").to_owned();
                    return (ws, sid);
                }
                Some(Frame::Text(t)) if t == "2" => ws.send_text("3").await,
                other => panic!("expected the CONNECT answer, got {other:?}"),
            }
        }
    }

    /// Sends one masked text frame.
    pub(crate) async fn send_text(&mut self, text: &str) {
        self.send_frame(0x1, text.as_bytes()).await;
    }

    /// Sends one masked binary frame.
    pub(crate) async fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(0x2, data).await;
    }

    async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        let mask = [0x37u8, 0xfa, 0x21, 0x3d];
        let mut frame = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => frame.push(0x80 | n as u8),
            n if n <= 0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        // a write error means the server already closed: the caller observes it when reading
        let _ = self.stream.write_all(&frame).await;
    }

    /// Reads the next frame; `None` at end of stream (or on a read error).
    pub(crate) async fn recv(&mut self) -> Option<Frame> {
        loop {
            if let Some((frame, used)) = parse_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            let mut chunk = [0u8; 8192];
            match self.stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads until the server closes the connection (a close frame or end of stream);
    /// returns the text frames seen and the close code, if any.
    pub(crate) async fn recv_until_closed(&mut self) -> (Vec<String>, Option<u16>) {
        let mut texts = Vec::new();
        loop {
            match self.recv().await {
                Some(Frame::Text(t)) => texts.push(t),
                Some(Frame::Close(code)) => return (texts, code),
                Some(_) => {}
                None => return (texts, None),
            }
        }
    }
}

/// Parses one unmasked server frame from the start of `buf`.
fn parse_frame(buf: &[u8]) -> Option<(Frame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    let opcode = buf[0] & 0x0f;
    assert!(buf[0] & 0x80 != 0, "fragmented frames are not expected from the server");
    assert!(buf[1] & 0x80 == 0, "server frames must not be masked");
    let (len, mut pos) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            (u64::from_be_bytes(buf[2..10].try_into().unwrap()) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if buf.len() < pos + len {
        return None;
    }
    let payload = buf[pos..pos + len].to_vec();
    pos += len;
    let frame = match opcode {
        0x1 => Frame::Text(String::from_utf8(payload).expect("utf-8 text frame")),
        0x2 => Frame::Binary(payload),
        0x8 => Frame::Close((payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]))),
        0x9 => Frame::Ping(payload),
        0xa => Frame::Pong(payload),
        other => panic!("unexpected opcode {other}"),
    };
    Some((frame, pos))
}
