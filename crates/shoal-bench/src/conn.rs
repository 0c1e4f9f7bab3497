//! Client connections: WebSocket (handshake, masked frames) and the polling handshake.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::ops::ControlFlow;
use std::time::Duration;

use bytes::Bytes;
use shoal_ws::{Decoder, DecoderConfig, Message, OpCode, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::proto::{self, Incoming};

/// Bytes read per `read` call (through a stack buffer, not kept per connection).
const READ_CHUNK: usize = 16 * 1024;

/// Opens a TCP connection to `server` from `source` (a loopback address such as
/// 127.0.0.2), with `TCP_NODELAY`.
///
/// # Errors
/// Socket errors.
pub async fn tcp_connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let socket = if server.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(src) = source {
        socket.bind(SocketAddr::new(src, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A WebSocket client connection speaking Engine.IO.
#[derive(Debug)]
pub struct WsClient {
    stream: TcpStream,
    decoder: Decoder,
    /// Frames waiting to be written.
    out: Vec<u8>,
    rng: u64,
    /// Text frames decoded but not yet handed out.
    pending: std::collections::VecDeque<Bytes>,
}

impl WsClient {
    /// WebSocket handshake on `path_query` (`/socket.io/?EIO=4&transport=websocket`).
    ///
    /// # Errors
    /// Socket errors, or a refused upgrade.
    pub async fn handshake(mut stream: TcpStream, host: &str, path_query: &str, seed: u64) -> io::Result<WsClient> {
        let mut rng = seed | 1;
        let mut key = [0u8; 16];
        for b in &mut key {
            *b = xorshift(&mut rng) as u8;
        }
        let key = shoal_ws::generate_key(key);
        let req = format!(
            "GET {path_query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await?;
        let (head, rest) = read_head(&mut stream).await?;
        if !head.starts_with(b"HTTP/1.1 101") {
            let line = String::from_utf8_lossy(head.split(|&c| c == b'\r').next().unwrap_or(&[])).into_owned();
            return Err(io::Error::other(format!("upgrade refused: {line}")));
        }
        let decoder = Decoder::new(DecoderConfig {
            role: Role::Client,
            max_message_size: 64 * 1024 * 1024,
            ..DecoderConfig::default()
        });
        let mut c = WsClient { stream, decoder, out: Vec::new(), rng, pending: Default::default() };
        if !rest.is_empty() {
            c.feed(&rest)?;
        }
        Ok(c)
    }

    /// Connects to a Socket.IO server over WebSocket and joins namespace `/`: waits for
    /// the open packet, sends `40`, waits for `40{…}`.
    ///
    /// # Errors
    /// Socket errors, a refused upgrade or connection, or no answer within 30 s.
    pub async fn connect_socketio(server: SocketAddr, source: Option<IpAddr>, seed: u64) -> io::Result<WsClient> {
        let stream = tcp_connect(server, source).await?;
        let host = server.to_string();
        let mut c = WsClient::handshake(stream, &host, "/socket.io/?EIO=4&transport=websocket", seed).await?;
        tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let f = c.next_text().await?;
                match proto::classify(&f) {
                    Incoming::Open => {
                        c.queue_text(b"40");
                        c.flush().await?;
                    }
                    Incoming::Connected => return Ok(()),
                    Incoming::ConnectError => return Err(io::Error::other("namespace refused")),
                    Incoming::Ping => {
                        c.queue_text(b"3");
                        c.flush().await?;
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "socket.io connect timed out"))??;
        Ok(c)
    }

    fn feed(&mut self, chunk: &[u8]) -> io::Result<()> {
        let mut pongs = Vec::new();
        let pending = &mut self.pending;
        self.decoder
            .decode(chunk, |m| {
                match m {
                    Message::Text(t) => pending.push_back(t),
                    Message::Ping(p) => pongs.push(p),
                    Message::Close(_) => pending.push_back(Bytes::from_static(b"\x00close")),
                    _ => {}
                }
                ControlFlow::Continue(())
            })
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        for p in pongs {
            let mask = self.mask();
            shoal_ws::write_frame(&mut self.out, OpCode::Pong, &p, false, Some(mask));
        }
        Ok(())
    }

    fn mask(&mut self) -> [u8; 4] {
        (xorshift(&mut self.rng) as u32).to_le_bytes()
    }

    /// Queues a text frame.
    pub fn queue_text(&mut self, text: &[u8]) {
        let mask = self.mask();
        shoal_ws::write_frame(&mut self.out, OpCode::Text, text, false, Some(mask));
    }

    /// Writes the queued frames.
    ///
    /// # Errors
    /// Socket errors.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
            if self.out.capacity() > 64 * 1024 {
                self.out = Vec::new();
            }
        }
        Ok(())
    }

    /// Reads from the socket until at least one text frame is available, and returns the
    /// next one. A close frame or EOF is an error.
    ///
    /// # Errors
    /// Socket or protocol errors, or the connection closing.
    pub async fn next_text(&mut self) -> io::Result<Bytes> {
        loop {
            if let Some(t) = self.pending.pop_front() {
                if &t[..] == b"\x00close" {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server"));
                }
                return Ok(t);
            }
            self.read_some().await?;
            self.flush().await?;
        }
    }

    /// Reads what the socket has (waiting for at least one byte) and decodes it.
    async fn read_some(&mut self) -> io::Result<()> {
        loop {
            self.stream.readable().await?;
            let res = {
                let mut buf = [0u8; READ_CHUNK];
                match self.stream.try_read(&mut buf) {
                    Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")),
                    Ok(n) => self.feed(&buf[..n]).map(|()| true),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
                    Err(e) => Err(e),
                }
            };
            if res? {
                return Ok(());
            }
        }
    }

    /// Runs `on_frame` on every text frame received until it returns `Break` or the
    /// connection fails. Engine.IO pings are answered here. Frames `on_frame` queues with
    /// [`WsClient::queue_text`] are written after each read.
    ///
    /// # Errors
    /// Socket or protocol errors, or the connection closing.
    pub async fn run(&mut self, mut on_frame: impl FnMut(&[u8], &mut Outbox<'_>) -> ControlFlow<()>) -> io::Result<()> {
        loop {
            while let Some(t) = self.pending.pop_front() {
                if &t[..] == b"\x00close" {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server"));
                }
                if &t[..] == b"2" {
                    self.queue_text(b"3");
                    continue;
                }
                let mut outbox = Outbox { client: self };
                if on_frame(&t, &mut outbox).is_break() {
                    self.flush().await?;
                    return Ok(());
                }
            }
            self.flush().await?;
            self.read_some().await?;
        }
    }

    /// As [`WsClient::run`], also calling `on_tick` every `period` (to send at a steady
    /// rate while reading).
    ///
    /// # Errors
    /// Socket or protocol errors, or the connection closing.
    pub async fn run_with_ticks(
        &mut self,
        period: Duration,
        mut on_tick: impl FnMut(&mut Outbox<'_>),
        mut on_frame: impl FnMut(&[u8], &mut Outbox<'_>) -> ControlFlow<()>,
    ) -> io::Result<()> {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            while let Some(t) = self.pending.pop_front() {
                if &t[..] == b"\x00close" {
                    return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "closed by the server"));
                }
                if &t[..] == b"2" {
                    self.queue_text(b"3");
                    continue;
                }
                if on_frame(&t, &mut Outbox { client: self }).is_break() {
                    self.flush().await?;
                    return Ok(());
                }
            }
            self.flush().await?;
            let readable = tokio::select! {
                _ = tick.tick() => false,
                r = self.stream.readable() => { r?; true }
            };
            if readable {
                let res = {
                    let mut buf = [0u8; READ_CHUNK];
                    match self.stream.try_read(&mut buf) {
                        Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed")),
                        Ok(n) => self.feed(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
                        Err(e) => Err(e),
                    }
                };
                res?;
            } else {
                on_tick(&mut Outbox { client: self });
            }
        }
    }

    /// Closes the connection (best effort).
    pub async fn close(mut self) {
        let mask = self.mask();
        let payload = shoal_ws::close_payload(1000, "");
        shoal_ws::write_frame(&mut self.out, OpCode::Close, &payload, false, Some(mask));
        let _ = self.flush().await;
        let _ = self.stream.shutdown().await;
    }
}

/// Lets a frame handler queue frames to send.
#[derive(Debug)]
pub struct Outbox<'a> {
    client: &'a mut WsClient,
}

impl Outbox<'_> {
    /// Queues a text frame.
    pub fn send(&mut self, text: &[u8]) {
        self.client.queue_text(text);
    }
}

fn xorshift(state: &mut u64) -> u64 {
    let mut x = *state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    x
}

/// Reads an HTTP response head; returns it and the bytes read past it.
async fn read_head(stream: &mut TcpStream) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(pos + 4);
            return Ok((buf, rest));
        }
        if buf.len() > 64 * 1024 {
            return Err(io::Error::other("response head too large"));
        }
    }
}

/// An HTTP/1.1 `GET` on a fresh connection; returns the status code and the body
/// (`Content-Length` framed).
///
/// # Errors
/// Socket errors or a malformed response.
pub async fn http_get(server: SocketAddr, source: Option<IpAddr>, path_query: &str) -> io::Result<(u16, Vec<u8>)> {
    let mut stream = tcp_connect(server, source).await?;
    let req = format!("GET {path_query} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let (head, mut body) = read_head(&mut stream).await?;
    let head = String::from_utf8_lossy(&head).into_owned();
    let status: u16 =
        head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other("bad status line"))?;
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case("content-length").then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while body.len() < len {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok((status, body))
}

/// A whole session as a browser client opens it: polling handshake, then upgrade to
/// WebSocket (`2probe`/`3probe`/`5`), then the Socket.IO CONNECT on `/`.
///
/// # Errors
/// Anything that goes wrong along the way.
pub async fn polling_then_upgrade(server: SocketAddr, source: Option<IpAddr>, seed: u64) -> io::Result<WsClient> {
    let (status, body) = http_get(server, source, "/socket.io/?EIO=4&transport=polling").await?;
    if status != 200 {
        return Err(io::Error::other(format!("handshake status {status}")));
    }
    let sid = proto::open_sid(&body).ok_or_else(|| io::Error::other("no sid in the handshake"))?;
    let stream = tcp_connect(server, source).await?;
    let path = format!("/socket.io/?EIO=4&transport=websocket&sid={sid}");
    let mut ws = WsClient::handshake(stream, &server.to_string(), &path, seed).await?;
    ws.queue_text(b"2probe");
    ws.flush().await?;
    loop {
        let f = ws.next_text().await?;
        if proto::classify(&f) == Incoming::PongProbe {
            break;
        }
    }
    ws.queue_text(b"5");
    ws.queue_text(b"40");
    ws.flush().await?;
    loop {
        let f = ws.next_text().await?;
        match proto::classify(&f) {
            Incoming::Connected => return Ok(ws),
            Incoming::ConnectError => return Err(io::Error::other("namespace refused")),
            _ => {}
        }
    }
}
