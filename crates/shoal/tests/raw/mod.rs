//! Hand-made clients for the hostile-input tests: raw HTTP/1.1 requests over TCP, a
//! minimal WebSocket client that frames (and masks) everything itself, Engine.IO and
//! Socket.IO on top of both, and the process's own RSS and open-file count.
//!
//! Nothing here validates what the server sends beyond what the tests need: the point
//! is to be able to send anything, including what a real client never would.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Generous bound for one step of a test (a request, a frame).
pub(crate) const STEP: Duration = Duration::from_secs(10);

/// Largest response body or frame these helpers accept (a guard against a runaway
/// server; nothing legitimate in these tests comes close).
const MAX_READ: usize = 64 * 1024 * 1024;

pub(crate) fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

// ---------------------------------------------------------------------------------------
// process measurements
// ---------------------------------------------------------------------------------------

/// Resident set size of this process (the server runs in-process), in bytes.
pub(crate) fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS line");
    let kb: u64 = line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value");
    kb * 1024
}

/// Number of open file descriptors of this process.
pub(crate) fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

pub(crate) const MB: u64 = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------

/// A parsed HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl HttpResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("body {:?} is not JSON: {e}", self.text()))
    }

    /// Asserts an Engine.IO error answer: `status` and `{"code":code,…}`.
    #[track_caller]
    pub(crate) fn assert_eio_error(&self, status: u16, code: u64) {
        assert_eq!(self.status, status, "status of {self:?}");
        assert_eq!(self.header("content-type"), Some("application/json"), "{self:?}");
        let v = self.json();
        assert_eq!(v["code"], code, "error code in {v}");
        assert!(v["message"].is_string(), "message in {v}");
    }
}

/// One TCP connection with a read buffer, speaking HTTP/1.1 and, after an upgrade,
/// WebSocket (client side).
pub(crate) struct Conn {
    pub(crate) stream: TcpStream,
    pub(crate) buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn open(addr: SocketAddr) -> Conn {
        let stream = timeout(STEP, TcpStream::connect(addr)).await.expect("connect in time").expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Conn { stream, buf: Vec::new() }
    }

    pub(crate) async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Reads more bytes into the buffer; `Ok(0)` at EOF.
    async fn fill(&mut self) -> std::io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    async fn read_until_crlfcrlf(&mut self) -> std::io::Result<usize> {
        loop {
            if let Some(pos) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                return Ok(pos + 4);
            }
            if self.buf.len() > MAX_READ {
                return Err(io_err("response head too large"));
            }
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_exact_buf(&mut self, n: usize) -> std::io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Reads one HTTP response (`Content-Length`, chunked, or no body for 101/204/304).
    pub(crate) async fn read_response(&mut self) -> std::io::Result<HttpResponse> {
        let head_len = self.read_until_crlfcrlf().await?;
        let head: Vec<u8> = self.buf.drain(..head_len).collect();
        let head = String::from_utf8_lossy(&head).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io_err(format!("bad status line {status_line:?}")))?;
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
            .collect();
        let mut resp = HttpResponse { status, headers, body: Vec::new() };
        if status == 101 || status == 204 || status == 304 {
            return Ok(resp);
        }
        if resp.header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line_len = loop {
                    if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                        break p;
                    }
                    if self.fill().await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                };
                let line: Vec<u8> = self.buf.drain(..line_len + 2).collect();
                let size_str = String::from_utf8_lossy(&line[..line_len]).into_owned();
                let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
                    .map_err(|_| io_err(format!("bad chunk size {size_str:?}")))?;
                let data = self.read_exact_buf(size + 2).await?;
                if size == 0 {
                    break;
                }
                resp.body.extend_from_slice(&data[..size]);
                if resp.body.len() > MAX_READ {
                    return Err(io_err("body too large"));
                }
            }
        } else if let Some(len) = resp.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
            if len > MAX_READ {
                return Err(io_err("body too large"));
            }
            resp.body = self.read_exact_buf(len).await?;
        }
        Ok(resp)
    }

    /// Waits until the server closes the connection (EOF or reset), discarding what it
    /// sends. Returns the bytes received before the end.
    pub(crate) async fn read_to_end(&mut self) -> Vec<u8> {
        loop {
            match self.fill().await {
                Ok(0) | Err(_) => return std::mem::take(&mut self.buf),
                Ok(_) => {
                    if self.buf.len() > MAX_READ {
                        self.buf.clear();
                    }
                }
            }
        }
    }

    /// True if the server closed the connection (EOF or reset) within `within`, answering
    /// or not.
    pub(crate) async fn closed_within(&mut self, within: Duration) -> bool {
        timeout(within, self.read_to_end()).await.is_ok()
    }
}

/// Builds a request: `extra` are full header lines without CRLF.
pub(crate) fn build_request(method: &str, target: &str, extra: &[&str], body: &[u8]) -> Vec<u8> {
    let mut r = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n");
    for h in extra {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if !body.is_empty() || method == "POST" {
        r.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    r.push_str("\r\n");
    let mut out = r.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends one request on a new connection and reads the response.
pub(crate) async fn request(addr: SocketAddr, method: &str, target: &str, extra: &[&str], body: &[u8]) -> HttpResponse {
    let mut c = Conn::open(addr).await;
    c.write(&build_request(method, target, extra, body)).await.expect("write request");
    timeout(STEP, c.read_response())
        .await
        .unwrap_or_else(|_| panic!("no answer in time to {method} {target}"))
        .unwrap_or_else(|e| panic!("reading the answer to {method} {target}: {e}"))
}

pub(crate) async fn get(addr: SocketAddr, target: &str) -> HttpResponse {
    request(addr, "GET", target, &[], b"").await
}

pub(crate) async fn post(addr: SocketAddr, target: &str, body: &[u8]) -> HttpResponse {
    request(addr, "POST", target, &["Content-Type: text/plain;charset=UTF-8"], body).await
}

// ---------------------------------------------------------------------------------------
// Engine.IO / Socket.IO over long-polling
// ---------------------------------------------------------------------------------------

pub(crate) const SEP: char = '\u{1e}';

/// `/socket.io/?EIO=4&transport=polling[&sid=…]`.
pub(crate) fn polling_url(sid: Option<&str>) -> String {
    match sid {
        Some(s) => format!("/socket.io/?EIO=4&transport=polling&sid={s}"),
        None => "/socket.io/?EIO=4&transport=polling".to_owned(),
    }
}

/// Parses an open packet `0{…}`.
pub(crate) fn parse_open(packet: &str) -> Value {
    let json = packet.strip_prefix('0').unwrap_or_else(|| panic!("not an open packet: {packet:?}"));
    serde_json::from_str(json).expect("open packet JSON")
}

/// A long-polling Engine.IO session driven by hand.
#[derive(Debug, Clone)]
pub(crate) struct Polling {
    pub(crate) addr: SocketAddr,
    pub(crate) sid: String,
    pub(crate) open: Value,
}

impl Polling {
    /// The handshake GET.
    pub(crate) async fn handshake(addr: SocketAddr) -> Polling {
        let r = get(addr, &polling_url(None)).await;
        assert_eq!(r.status, 200, "handshake: {r:?} {}", r.text());
        let open = parse_open(&r.text());
        let sid = open["sid"].as_str().expect("sid").to_owned();
        Polling { addr, sid, open }
    }

    pub(crate) fn url(&self) -> String {
        polling_url(Some(&self.sid))
    }

    pub(crate) async fn post(&self, body: &[u8]) -> HttpResponse {
        post(self.addr, &self.url(), body).await
    }

    pub(crate) async fn get_raw(&self) -> HttpResponse {
        get(self.addr, &self.url()).await
    }

    /// A GET that must succeed; returns its packets.
    pub(crate) async fn get(&self) -> Vec<String> {
        let r = self.get_raw().await;
        assert_eq!(r.status, 200, "poll: {r:?} {}", r.text());
        r.text().split(SEP).map(str::to_owned).collect()
    }

    /// Polls until a packet satisfies `pred` (answering pings), within [`STEP`].
    pub(crate) async fn get_until(&self, mut pred: impl FnMut(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            assert!(Instant::now() < deadline, "expected packet did not come");
            for p in self.get().await {
                if p == "2" {
                    let _ = self.post(b"3").await;
                } else if pred(&p) {
                    return p;
                }
            }
        }
    }

    /// True once the server no longer knows this session (`{"code":1}`), polled for up
    /// to `within`.
    pub(crate) async fn gone_within(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            // a live session would hold this poll: bound it by the time left
            let mut c = Conn::open(self.addr).await;
            c.write(&build_request("GET", &self.url(), &[], b"")).await.expect("write poll");
            match timeout(deadline.saturating_duration_since(Instant::now()), c.read_response()).await {
                Ok(Ok(r))
                    if r.status == 400 && serde_json::from_slice::<Value>(&r.body).is_ok_and(|v| v["code"] == 1) =>
                {
                    return true;
                }
                Ok(_) => {} // the close packet `1`, a noop, or a closed connection: ask again
                Err(_) => return false,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        false
    }
}

/// A Socket.IO client on long-polling, connected to the main namespace.
pub(crate) async fn sio_polling_connect(addr: SocketAddr) -> Polling {
    let p = Polling::handshake(addr).await;
    let r = p.post(b"40").await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "CONNECT post");
    let connected = p.get_until(|s| s.starts_with("40")).await;
    let v: Value = serde_json::from_str(&connected[2..]).expect("CONNECT answer JSON");
    assert!(v["sid"].is_string(), "CONNECT answer {connected}");
    p
}

/// Sends `42["echo",<payload>]` and waits for the echo the test server sends back.
pub(crate) async fn polling_echo(p: &Polling, payload: &str) {
    let msg = format!(r#"42["echo",{payload}]"#);
    let r = p.post(msg.as_bytes()).await;
    assert_eq!((r.status, r.text().as_str()), (200, "ok"), "echo post");
    let got = p.get_until(|s| s.starts_with("42")).await;
    assert_eq!(got, msg, "echo over polling");
}

// ---------------------------------------------------------------------------------------
// WebSocket (client side, masked frames)
// ---------------------------------------------------------------------------------------

pub(crate) const OP_CONT: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// A valid `Sec-WebSocket-Key` (RFC 6455 §1.3).
pub(crate) const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// Its accept value.
pub(crate) const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The header lines of a valid upgrade request.
pub(crate) const WS_HEADERS: [&str; 4] = [
    "Upgrade: websocket",
    "Connection: Upgrade",
    "Sec-WebSocket-Version: 13",
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
];

/// Encodes one client frame. `rsv` is the three RSV bits (`0b100` = RSV1); `mask`
/// `None` sends an unmasked frame (a protocol violation from a client).
pub(crate) fn frame(opcode: u8, fin: bool, rsv: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push((u8::from(fin) << 7) | ((rsv & 7) << 4) | (opcode & 0x0f));
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n <= 0xffff => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked, final client frame.
pub(crate) fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    frame(opcode, true, 0, payload, Some([0x12, 0x34, 0x56, 0x78]))
}

/// A frame header alone announcing `len` bytes (masked), with no payload.
pub(crate) fn header_only(opcode: u8, len: u64) -> Vec<u8> {
    let mut out = vec![0x80 | opcode, 0x80 | 127];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

/// A frame received from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) fin: bool,
    pub(crate) opcode: u8,
    pub(crate) payload: Vec<u8>,
}

impl Frame {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    /// The close code of a close frame (1005 when it has none).
    pub(crate) fn close_code(&self) -> u16 {
        if self.payload.len() >= 2 { u16::from_be_bytes([self.payload[0], self.payload[1]]) } else { 1005 }
    }
}

/// How a WebSocket connection ended, as seen by the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WsEnd {
    /// A close frame with this code (then, usually, EOF).
    Close(u16),
    /// The TCP connection ended without a close frame.
    Eof,
}

/// A WebSocket connection after a successful upgrade.
pub(crate) struct Ws {
    pub(crate) conn: Conn,
    pub(crate) response: HttpResponse,
}

impl Ws {
    /// Upgrades `target` with `extra` header lines in addition to the valid ones.
    pub(crate) async fn connect_with(addr: SocketAddr, target: &str, extra: &[&str]) -> Result<Ws, HttpResponse> {
        let mut c = Conn::open(addr).await;
        let mut headers: Vec<&str> = WS_HEADERS.to_vec();
        headers.extend_from_slice(extra);
        c.write(&build_request("GET", target, &headers, b"")).await.expect("write upgrade");
        let r = timeout(STEP, c.read_response()).await.expect("upgrade answer in time").expect("upgrade answer");
        if r.status != 101 {
            return Err(r);
        }
        assert_eq!(r.header("sec-websocket-accept"), Some(WS_ACCEPT), "accept key");
        Ok(Ws { conn: c, response: r })
    }

    /// A fresh Engine.IO WebSocket session; returns it with its open packet.
    pub(crate) async fn engine(addr: SocketAddr) -> (Ws, Value) {
        let mut ws = Ws::connect_with(addr, "/socket.io/?EIO=4&transport=websocket", &[])
            .await
            .unwrap_or_else(|r| panic!("upgrade refused: {r:?} {}", r.text()));
        let open = ws.recv_text().await;
        (ws, parse_open(&open))
    }

    pub(crate) async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.conn.write(bytes).await
    }

    pub(crate) async fn send_text(&mut self, text: &str) -> std::io::Result<()> {
        self.conn.write(&masked(OP_TEXT, text.as_bytes())).await
    }

    pub(crate) async fn send_binary(&mut self, data: &[u8]) -> std::io::Result<()> {
        self.conn.write(&masked(OP_BINARY, data)).await
    }

    /// Reads one frame (no time limit: wrap in a timeout).
    pub(crate) async fn recv_frame(&mut self) -> std::io::Result<Frame> {
        let c = &mut self.conn;
        while c.buf.len() < 2 {
            if c.fill().await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        let b0 = c.buf[0];
        let b1 = c.buf[1];
        let (len, hl) = match b1 & 0x7f {
            126 => {
                while c.buf.len() < 4 {
                    if c.fill().await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                (usize::from(u16::from_be_bytes([c.buf[2], c.buf[3]])), 4)
            }
            127 => {
                while c.buf.len() < 10 {
                    if c.fill().await? == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                }
                let mut l = [0u8; 8];
                l.copy_from_slice(&c.buf[2..10]);
                (u64::from_be_bytes(l) as usize, 10)
            }
            n => (usize::from(n), 2),
        };
        if b1 & 0x80 != 0 {
            return Err(io_err("masked frame from the server"));
        }
        if len > MAX_READ {
            return Err(io_err("frame too large"));
        }
        let bytes = c.read_exact_buf(hl + len).await?;
        Ok(Frame { fin: b0 & 0x80 != 0, opcode: b0 & 0x0f, payload: bytes[hl..].to_vec() })
    }

    /// The next Engine.IO text packet, answering Engine.IO pings (`2` → `3`) on the way.
    pub(crate) async fn recv_text(&mut self) -> String {
        loop {
            let f = timeout(STEP, self.recv_frame()).await.expect("frame in time").expect("frame");
            match f.opcode {
                OP_TEXT if f.payload == b"2" => self.send_text("3").await.expect("pong"),
                OP_TEXT => return f.text(),
                OP_CLOSE => panic!("unexpected close frame {}", f.close_code()),
                _ => {}
            }
        }
    }

    /// Reads until a close frame or EOF, answering Engine.IO pings; `None` if neither
    /// came within `within`.
    pub(crate) async fn end_within(&mut self, within: Duration) -> Option<WsEnd> {
        let fut = async {
            loop {
                match self.recv_frame().await {
                    Ok(f) if f.opcode == OP_CLOSE => return WsEnd::Close(f.close_code()),
                    Ok(f) if f.opcode == OP_TEXT && f.payload == b"2" => {
                        let _ = self.send_text("3").await;
                    }
                    Ok(_) => {}
                    Err(_) => return WsEnd::Eof,
                }
            }
        };
        timeout(within, fut).await.ok()
    }

    /// As [`Ws::end_within`], asserting the connection ended.
    #[track_caller]
    pub(crate) fn assert_ended(end: Option<WsEnd>, what: &str) -> WsEnd {
        end.unwrap_or_else(|| panic!("{what}: the server kept the connection open"))
    }
}

/// A Socket.IO client over WebSocket, connected to the main namespace; returns it with
/// its socket id.
pub(crate) async fn sio_ws_connect(addr: SocketAddr) -> (Ws, String) {
    let (mut ws, _open) = Ws::engine(addr).await;
    ws.send_text("40").await.expect("CONNECT");
    let connected = ws.recv_text().await;
    assert!(connected.starts_with("40{"), "CONNECT answer {connected:?}");
    let v: Value = serde_json::from_str(&connected[2..]).expect("CONNECT answer JSON");
    let sid = v["sid"].as_str().expect("sid").to_owned();
    (ws, sid)
}

/// Sends `42["echo",<payload>]` and waits for the same packet back.
pub(crate) async fn ws_echo(ws: &mut Ws, payload: &str) {
    let msg = format!(r#"42["echo",{payload}]"#);
    ws.send_text(&msg).await.expect("send echo");
    let got = ws.recv_text().await;
    assert_eq!(got, msg, "echo over websocket");
}

// ---------------------------------------------------------------------------------------
// the server under test
// ---------------------------------------------------------------------------------------

/// Registers the handlers every hostile test server has: `echo` sends its arguments
/// back; `error` (an ordinary event name) does the same under the name `error-back`.
pub(crate) fn echo_handlers(io: &shoal::SocketIo) {
    io.of("/").on_connect(|socket: shoal::Socket| async move {
        socket.on("echo", |s: shoal::Socket, ev: shoal::Event| async move {
            let _ = s.emit_args("echo", ev.into_args());
        });
        socket.on("error", |s: shoal::Socket, ev: shoal::Event| async move {
            let _ = s.emit_args("error-back", ev.into_args());
        });
    });
}

/// Proves the server still serves a normal client: a fresh polling session and a fresh
/// WebSocket session each connect to `/` and get an echo back.
pub(crate) async fn assert_healthy(addr: SocketAddr) {
    timeout(Duration::from_secs(20), async {
        let p = sio_polling_connect(addr).await;
        polling_echo(&p, r#""still alive""#).await;
        let _ = p.post(b"1").await;
        let (mut ws, _) = sio_ws_connect(addr).await;
        ws_echo(&mut ws, r#"{"still":"alive"}"#).await;
        let _ = ws.send_raw(&masked(OP_CLOSE, &1000u16.to_be_bytes())).await;
    })
    .await
    .expect("a normal client is served in time");
}

/// Runs `f` within `limit` (every hostile test is bounded).
pub(crate) async fn bounded<F: std::future::Future<Output = ()>>(limit: Duration, f: F) {
    timeout(limit, f).await.expect("test exceeded its time bound");
}
