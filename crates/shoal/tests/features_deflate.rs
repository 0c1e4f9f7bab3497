//! WebSocket permessage-deflate (`per_message_deflate(DeflateConfig::default())`):
//!
//! - with the official Node client (which offers the extension by default, through
//!   `ws`): 20 KB strings both ways arrive intact, and far fewer bytes than that cross
//!   the TCP connection in each direction;
//! - with a hand-made client built on `shoal_ws`: the 101 accepts the offer, a 5 KB emit
//!   arrives as one RSV1 frame much smaller than 5 KB that inflates to the exact packet,
//!   messages below the 1024-byte threshold are sent as they are, and a compressed
//!   message from the client is inflated by the server.

mod common;
mod js;
mod raw;

use std::ops::ControlFlow;
use std::time::Duration;

use common::TestServer;
use js::{NodeScenario, bounded};
use serde_json::{Value, json};
use shoal::{Event, Socket, SocketIo};
use shoal_engineio::config::DeflateConfig;
use shoal_ws::{Decoder, DecoderConfig, Inflater, Message, OpCode, Role};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const STEP: Duration = Duration::from_secs(10);

/// A deterministic text of about `bytes` bytes: words drawn pseudo-randomly from a small
/// vocabulary (some of it outside ASCII), so it compresses well but not trivially.
fn text(bytes: usize, seed: u64) -> String {
    const WORDS: [&str; 16] = [
        "socket",
        "shoal",
        "deflate",
        "wörd",
        "héllo",
        "世界",
        "🚀",
        "frame",
        "window",
        "packet",
        "ack",
        "room",
        "namespace",
        "\"quoted\"",
        "back\\slash",
        "line\nbreak",
    ];
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut s = String::with_capacity(bytes + 16);
    while s.len() < bytes {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        s.push_str(WORDS[(x >> 60) as usize]);
        s.push(' ');
    }
    s
}

/// `big` is acked with a summary of what arrived and answered with `big-back` carrying
/// `down`; `emit` makes the server emit `["sized", <n characters>]`.
fn deflate_server(io: &SocketIo, up: String, down: String, got: mpsc::UnboundedSender<String>) {
    io.of("/").on_connect(move |socket: Socket| {
        let (up, down, got) = (up.clone(), down.clone(), got.clone());
        socket.on("big", move |s: Socket, mut ev: Event| {
            let (up, down, got) = (up.clone(), down.clone(), got.clone());
            async move {
                let data: String = ev.data().unwrap_or_default();
                let _ = ev.ack(&json!({"equal": data == up, "bytes": data.len()}));
                let _ = got.send(data);
                let _ = s.emit("big-back", &down);
            }
        });
        socket.on("sized", |s: Socket, ev: Event| async move {
            let n: usize = ev.data().unwrap_or(0);
            let _ = s.emit("sized", &"x".repeat(n));
        });
        socket.on("echo", |s: Socket, ev: Event| async move {
            let _ = s.emit_args("echo", ev.into_args());
        });
        async {}
    });
}

/// The official client: 20 KB up, 20 KB down, both compressed on the wire.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_client_exchanges_large_messages() {
    bounded(60, "deflate with the official client", async {
        let up = text(20_000, 1);
        let down = text(20_000, 2);
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (u, d) = (up.clone(), down.clone());
        let srv = TestServer::start(SocketIo::builder().per_message_deflate(DeflateConfig::default()), move |io| {
            deflate_server(io, u, d, tx)
        })
        .await;
        let node = NodeScenario::spawn("features-deflate", &srv.url(), json!({"up": up, "down": down}));
        let r = node.result().await;
        let got = js::recv(&mut rx, STEP, "the big event").await;
        assert!(got == up, "the server received the 20 KB string intact ({} vs {} bytes)", got.len(), up.len());
        assert_eq!(r["ack"], json!({"equal": true, "bytes": up.len()}), "{r}");
        assert_eq!(r["downEqual"], true, "the client received the 20 KB string intact: {r}");
        let extensions = r["extensions"].as_str().expect("extensions");
        assert!(extensions.starts_with("permessage-deflate"), "negotiated: {extensions}");
        // both directions were compressed: far less than 20 KB crossed the connection
        let (written, read) = (r["bytesWritten"].as_u64().unwrap(), r["bytesRead"].as_u64().unwrap());
        assert!(written < up.len() as u64 / 2, "client → server: {written} bytes for {} bytes of text", up.len());
        assert!(read < down.len() as u64 / 2, "server → client: {read} bytes for {} bytes of text", down.len());
        srv.stop().await;
    })
    .await;
}

/// A frame as it came from the server, and its decoded message.
#[derive(Debug)]
struct RawFrame {
    rsv1: bool,
    opcode: u8,
    /// The payload length on the wire.
    wire_len: usize,
    message: Message,
}

/// A client on `shoal_ws`: the upgrade by hand, then frames read one by one (to see
/// their header bits and size) and decoded with a client-role [`Decoder`] that holds the
/// negotiated [`Inflater`].
struct DeflateClient {
    stream: TcpStream,
    buf: Vec<u8>,
    decoder: Decoder,
    response_head: String,
}

impl DeflateClient {
    async fn connect(addr: std::net::SocketAddr, offer: &str) -> DeflateClient {
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let key = shoal_ws::generate_key([7; 16]);
        let req = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nConnection: Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\
             Sec-WebSocket-Extensions: {offer}\r\n\r\n"
        );
        stream.write_all(req.as_bytes()).await.expect("send upgrade");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(STEP, stream.read(&mut chunk)).await.expect("in time").expect("read");
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let response_head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.drain(..end);
        assert!(response_head.starts_with("HTTP/1.1 101"), "{response_head}");
        let accept = header(&response_head, "sec-websocket-accept").expect("accept");
        assert!(shoal_ws::verify_accept(&key, accept.as_bytes()), "{response_head}");
        let mut decoder = Decoder::new(DecoderConfig { role: Role::Client, ..DecoderConfig::default() });
        if header(&response_head, "sec-websocket-extensions").is_some() {
            // the server always answers server_no_context_takeover: no window is kept
            decoder.set_inflater(Inflater::with_context_takeover(false));
        }
        DeflateClient { stream, buf, decoder, response_head }
    }

    fn extensions(&self) -> Option<String> {
        header(&self.response_head, "sec-websocket-extensions")
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(STEP, self.stream.read(&mut chunk)).await.expect("data in time").expect("read");
        assert!(n > 0, "the server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    /// The next frame (the server never fragments its messages).
    async fn frame(&mut self) -> RawFrame {
        loop {
            if self.buf.len() >= 2 {
                let (len, header_len) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => (usize::from(u16::from_be_bytes([self.buf[2], self.buf[3]])), 4),
                    127 if self.buf.len() >= 10 => {
                        (u64::from_be_bytes(self.buf[2..10].try_into().unwrap()) as usize, 10)
                    }
                    126 | 127 => (usize::MAX, 0),
                    n => (usize::from(n), 2),
                };
                if len != usize::MAX && self.buf.len() >= header_len + len {
                    let bytes: Vec<u8> = self.buf.drain(..header_len + len).collect();
                    assert!(bytes[0] & 0x80 != 0, "a final frame");
                    assert_eq!(bytes[1] & 0x80, 0, "server frames are not masked");
                    let mut messages = Vec::new();
                    self.decoder
                        .decode(&bytes, |m| {
                            messages.push(m);
                            ControlFlow::Continue(())
                        })
                        .expect("a valid frame");
                    assert_eq!(messages.len(), 1, "one frame, one message");
                    return RawFrame {
                        rsv1: bytes[0] & 0x40 != 0,
                        opcode: bytes[0] & 0x0f,
                        wire_len: len,
                        message: messages.remove(0),
                    };
                }
            }
            self.fill().await;
        }
    }

    /// The next text frame that is not an Engine.IO ping (pings are answered).
    async fn text_frame(&mut self) -> (RawFrame, String) {
        loop {
            let f = self.frame().await;
            let Message::Text(t) = &f.message else { panic!("expected text, got {f:?}") };
            let t = std::str::from_utf8(t).expect("utf-8").to_owned();
            if t == "2" {
                self.send(b"3", false).await;
                continue;
            }
            return (f, t);
        }
    }

    /// Sends a masked text frame, compressed (RSV1) when `compress`.
    async fn send(&mut self, text: &[u8], compress: bool) {
        let mut frame = Vec::new();
        let mask = Some([0x11, 0x22, 0x33, 0x44]);
        if compress {
            let cfg = DeflateConfig { threshold: 0, ..DeflateConfig::default() };
            let compressed = shoal_ws::deflate_message(text, &cfg).expect("compressible");
            shoal_ws::write_frame(&mut frame, OpCode::Text, &compressed, true, mask);
        } else {
            shoal_ws::write_frame(&mut frame, OpCode::Text, text, false, mask);
        }
        self.stream.write_all(&frame).await.expect("send");
    }
}

fn header(head: &str, name: &str) -> Option<String> {
    head.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim().to_owned())
}

async fn deflate_test_server() -> TestServer {
    let (tx, _rx) = mpsc::unbounded_channel();
    TestServer::start(SocketIo::builder().per_message_deflate(DeflateConfig::default()), move |io| {
        deflate_server(io, String::new(), String::new(), tx)
    })
    .await
}

/// The server really compresses what reaches the threshold, and only that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_frames_are_compressed_above_the_threshold() {
    bounded(30, "raw deflate client", async {
        let srv = deflate_test_server().await;
        let mut c = DeflateClient::connect(srv.addr, "permessage-deflate; client_max_window_bits").await;
        assert_eq!(c.extensions().as_deref(), Some("permessage-deflate; server_no_context_takeover"));

        // the open packet and the CONNECT answer are small: sent as they are
        let (open, t) = c.text_frame().await;
        assert!(t.starts_with("0{") && !open.rsv1 && open.opcode == 1, "{open:?}");
        assert_eq!(open.wire_len, t.len());
        c.send(b"40", false).await;
        let (connected, t) = c.text_frame().await;
        assert!(t.starts_with("40{") && !connected.rsv1, "{connected:?}");

        // a 5 KB emit: one compressed frame, much smaller, inflating to the exact packet
        let big = text(5_000, 3);
        let expected = format!("42{}", json!(["echo", big]));
        c.send(format!(r#"42["echo",{}]"#, serde_json::to_string(&big).unwrap()).as_bytes(), false).await;
        let (f, t) = c.text_frame().await;
        assert!(f.rsv1, "RSV1 set on a {}-byte message", t.len());
        assert_eq!(t, expected, "inflates to the exact packet");
        assert!(f.wire_len < expected.len() / 2, "{} bytes on the wire for {}", f.wire_len, expected.len());

        // the threshold (1024 bytes of message): `42["sized","xxx…"]` is n + 14 bytes
        for (n, compressed) in [(100, false), (1_009, false), (1_010, true), (5_000, true)] {
            c.send(format!(r#"42["sized",{n}]"#).as_bytes(), false).await;
            let (f, t) = c.text_frame().await;
            assert_eq!(t, format!(r#"42["sized","{}"]"#, "x".repeat(n)));
            assert_eq!(f.rsv1, compressed, "a {}-byte message: {f:?}", t.len());
            if compressed {
                assert!(f.wire_len < t.len() / 10, "{} bytes on the wire for {}", f.wire_len, t.len());
            } else {
                assert_eq!(f.wire_len, t.len());
            }
        }

        // a compressed message from the client is inflated by the server
        let payload = text(3_000, 4);
        let msg = format!(r#"42["echo",{}]"#, serde_json::to_string(&payload).unwrap());
        c.send(msg.as_bytes(), true).await;
        let (f, t) = c.text_frame().await;
        assert!(f.rsv1);
        let v: Value = serde_json::from_str(&t[2..]).expect("JSON");
        assert_eq!(v, json!(["echo", payload]));
        srv.stop().await;
    })
    .await;
}

/// Without an offer, or with the option off, nothing is compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_compression_without_negotiation() {
    bounded(30, "no deflate", async {
        let srv = deflate_test_server().await;
        let mut c = DeflateClient::connect(srv.addr, "x-unknown-extension").await;
        assert_eq!(c.extensions(), None);
        let _ = c.text_frame().await;
        c.send(b"40", false).await;
        let _ = c.text_frame().await;
        c.send(br#"42["sized",5000]"#, false).await;
        let (f, t) = c.text_frame().await;
        assert!(!f.rsv1 && f.wire_len == t.len() && t.len() == 5_014, "{f:?}");
        srv.stop().await;

        let (tx, _rx) = mpsc::unbounded_channel();
        let srv =
            TestServer::start(SocketIo::builder(), move |io| deflate_server(io, String::new(), String::new(), tx))
                .await;
        let mut c = DeflateClient::connect(srv.addr, "permessage-deflate; client_max_window_bits").await;
        assert_eq!(c.extensions(), None, "deflate is off by default");
        let _ = c.text_frame().await;
        c.send(b"40", false).await;
        let _ = c.text_frame().await;
        c.send(br#"42["sized",5000]"#, false).await;
        let (f, _) = c.text_frame().await;
        assert!(!f.rsv1, "{f:?}");
        srv.stop().await;
    })
    .await;
}

/// `compress(false)` on a broadcast asks for the packet to be sent uncompressed (as in
/// Node, where compression is on by default and `compress(false)` turns it off).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compress_false_sends_uncompressed() {
    bounded(30, "compress(false)", async {
        let srv = TestServer::start(SocketIo::builder().per_message_deflate(DeflateConfig::default()), |io| {
            io.of("/").on_connect(|socket: Socket| {
                socket.on("plain", |s: Socket, _ev: Event| async move {
                    let _ = s.namespace().to(s.id()).compress(false).emit("plain", &"x".repeat(5_000));
                });
                async {}
            });
        })
        .await;
        let mut c = DeflateClient::connect(srv.addr, "permessage-deflate").await;
        assert!(c.extensions().is_some());
        let _ = c.text_frame().await;
        c.send(b"40", false).await;
        let _ = c.text_frame().await;
        c.send(br#"42["plain"]"#, false).await;
        let (f, t) = c.text_frame().await;
        assert_eq!(t.len(), 5_014);
        assert!(!f.rsv1, "compress(false) ignored: RSV1 set, {} bytes on the wire", f.wire_len);
        srv.stop().await;
    })
    .await;
}
