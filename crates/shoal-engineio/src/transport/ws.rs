//! The WebSocket connection of a session.
//!
//! Memory is the design constraint: an idle connection holds no buffer at all. Reads go
//! through a buffer on the stack of the poll function; only an incomplete frame is kept
//! (by the decoder). Writes take the session's whole queue, encode every frame into one
//! buffer and write it with as few syscalls as the kernel allows; the buffer is released
//! as soon as it is written.

use std::collections::VecDeque;
use std::io;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use shoal_engineio_proto::OutPacket;

use crate::session::Queued;
use shoal_ws::{Decoder, DecoderConfig, DeflateConfig, Message, OpCode, Role};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Any byte stream a WebSocket can run over.
pub(crate) trait Io: AsyncRead + AsyncWrite + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + 'static> Io for T {}

/// How many reads one poll may do before yielding to other tasks.
const READ_BUDGET: usize = 16;
/// Size of the (per-thread) buffer reads go through.
const READ_CHUNK: usize = 16 * 1024;

thread_local! {
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static WRITE_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Appends one frame (compressed when deflate is on and the message is large enough).
fn encode_frame(out: &mut Vec<u8>, deflate: Option<&DeflateConfig>, opcode: OpCode, data: &[u8]) {
    if let Some(cfg) = deflate
        && let Some(compressed) = shoal_ws::deflate_message(data, cfg)
    {
        shoal_ws::write_frame(out, opcode, &compressed, true, None);
        return;
    }
    let mut header = [0u8; 14];
    let n = shoal_ws::encode_header(&mut header, opcode, true, false, data.len(), None);
    out.extend_from_slice(&header[..n]);
    out.extend_from_slice(data);
}
/// Output buffers above this size are not kept for reuse.
const KEEP_OUT_CAPACITY: usize = 0;
/// The per-thread write buffer is kept up to this size.
const KEEP_WRITE_BUF: usize = 1024 * 1024;

/// Why a WebSocket connection ended.
#[derive(Debug)]
pub(crate) enum WsEnd {
    /// The peer closed the TCP connection.
    Eof,
    /// An IO error.
    Io(io::Error),
    /// The peer broke the WebSocket protocol (the close code to send).
    Protocol(u16),
}

/// The byte stream: a plain TCP socket (read and written directly, the common case) or
/// anything else hyper handed over.
pub(crate) enum WsIo {
    Tcp(tokio::net::TcpStream),
    Other(Pin<Box<dyn Io>>),
}

impl WsIo {
    /// Reads one chunk into `buf`. A TCP read shorter than the buffer means the socket
    /// was drained: its readiness is cleared right there (safely: tokio only clears it if
    /// no new readiness arrived since the read began), which saves the read that would
    /// only return `WouldBlock`.
    fn poll_read_chunk(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        match self {
            WsIo::Tcp(stream) => loop {
                match stream.poll_read_ready(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => {}
                }
                let cap = buf.len();
                let mut got = None;
                let r = stream.try_io(tokio::io::Interest::READABLE, || {
                    let n = stream.try_read(buf)?;
                    got = Some(n);
                    if n > 0 && n < cap { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(()) }
                });
                match (got, r) {
                    (Some(n), _) => return Poll::Ready(Ok(n)),
                    (None, Err(e)) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    (None, Err(e)) => return Poll::Ready(Err(e)),
                    (None, Ok(())) => continue,
                }
            },
            WsIo::Other(io) => {
                let mut rb = ReadBuf::new(buf);
                match io.as_mut().poll_read(cx, &mut rb) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Ready(Ok(())) => Poll::Ready(Ok(rb.filled().len())),
                }
            }
        }
    }

    fn poll_write(&mut self, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        match self {
            WsIo::Tcp(s) => Pin::new(s).poll_write(cx, data),
            WsIo::Other(io) => io.as_mut().poll_write(cx, data),
        }
    }

    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            WsIo::Tcp(_) => Poll::Ready(Ok(())),
            WsIo::Other(io) => io.as_mut().poll_flush(cx),
        }
    }

    fn poll_shutdown(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self {
            WsIo::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            WsIo::Other(io) => io.as_mut().poll_shutdown(cx),
        }
    }
}

pub(crate) struct WsConn {
    io: WsIo,
    decoder: Decoder,
    /// Bytes read by the HTTP server before the upgrade, not yet decoded.
    leftover: Bytes,
    /// The decoder stopped in the middle of a chunk; resume it before reading more.
    resume: bool,
    out: Vec<u8>,
    out_pos: usize,
    deflate: Option<DeflateConfig>,
}

impl WsConn {
    pub(crate) fn new(
        io: WsIo,
        leftover: Bytes,
        max_payload: usize,
        deflate: Option<(DeflateConfig, shoal_ws::Inflater)>,
    ) -> WsConn {
        let mut decoder = Decoder::new(DecoderConfig {
            role: Role::Server,
            max_message_size: max_payload,
            ..DecoderConfig::default()
        });
        let deflate = deflate.map(|(cfg, inflater)| {
            decoder.set_inflater(inflater);
            cfg
        });
        WsConn { io, decoder, leftover, resume: false, out: Vec::new(), out_pos: 0, deflate }
    }

    /// Reads and decodes what the socket has, calling `on_msg` for each message. Returns
    /// `Pending` when the socket has nothing more, `Ready(Ok)` when the read budget is
    /// spent or `on_msg` asked to stop (the caller polls again), `Ready(Err)` when the
    /// connection is over.
    pub(crate) fn poll_read(
        &mut self,
        cx: &mut Context<'_>,
        on_msg: &mut dyn FnMut(Message) -> ControlFlow<()>,
    ) -> Poll<Result<(), WsEnd>> {
        let stopped = std::cell::Cell::new(false);
        let mut cb = |m: Message| {
            let flow = on_msg(m);
            if flow.is_break() {
                stopped.set(true);
            }
            flow
        };
        if self.resume {
            self.resume = false;
            if let Err(e) = self.decoder.decode(&[], &mut cb) {
                return Poll::Ready(Err(WsEnd::Protocol(e.close_code())));
            }
            if stopped.get() {
                self.resume = true;
                return Poll::Ready(Ok(()));
            }
        }
        if !self.leftover.is_empty() {
            let chunk = std::mem::take(&mut self.leftover);
            if let Err(e) = self.decoder.decode(&chunk, &mut cb) {
                return Poll::Ready(Err(WsEnd::Protocol(e.close_code())));
            }
            if stopped.get() {
                self.resume = true;
                return Poll::Ready(Ok(()));
            }
        }
        // One read buffer per thread, lent to the connection being read (no buffer is
        // kept per connection, and none is zeroed for each read).
        let mut buf = READ_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        if buf.len() < READ_CHUNK {
            buf.resize(READ_CHUNK, 0);
        }
        let result = (|| {
            for _ in 0..READ_BUDGET {
                match self.io.poll_read_chunk(cx, &mut buf) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(WsEnd::Io(e))),
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(WsEnd::Eof)),
                    Poll::Ready(Ok(n)) => {
                        if let Err(e) = self.decoder.decode(&buf[..n], &mut cb) {
                            return Poll::Ready(Err(WsEnd::Protocol(e.close_code())));
                        }
                        if stopped.get() {
                            self.resume = true;
                            return Poll::Ready(Ok(()));
                        }
                    }
                }
            }
            cx.waker().wake_by_ref();
            Poll::Ready(Ok(()))
        })();
        READ_BUF.with(|b| *b.borrow_mut() = buf);
        result
    }

    /// True if bytes wait to be written.
    pub(crate) fn has_output(&self) -> bool {
        self.out_pos < self.out.len()
    }

    /// Bytes waiting to be written.
    pub(crate) fn output_len(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Writes queued packets: the frames are encoded into a per-thread buffer and written
    /// at once; only what the socket does not take right away is copied into the
    /// connection's own output buffer (so an idle or fast connection owns none).
    pub(crate) fn write_packets(&mut self, cx: &mut Context<'_>, packets: VecDeque<Queued>) -> Poll<io::Result<()>> {
        debug_assert!(!self.has_output());
        let mut scratch = WRITE_BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
        scratch.clear();
        let total: usize = packets.iter().map(|q| q.packet.len() + 10).sum();
        scratch.reserve(total);
        for q in packets {
            let (opcode, data) = match q.packet {
                OutPacket::Text(b) => (OpCode::Text, b),
                OutPacket::Binary(b) => (OpCode::Binary, b),
            };
            let deflate = if q.compress { self.deflate.as_ref() } else { None };
            encode_frame(&mut scratch, deflate, opcode, &data);
        }
        let mut pos = 0;
        let result = loop {
            if pos == scratch.len() {
                break self.io.poll_flush(cx);
            }
            match self.io.poll_write(cx, &scratch[pos..]) {
                Poll::Ready(Ok(0)) => break Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => pos += n,
                Poll::Ready(Err(e)) => break Poll::Ready(Err(e)),
                Poll::Pending => {
                    self.out.extend_from_slice(&scratch[pos..]);
                    self.out_pos = 0;
                    break Poll::Pending;
                }
            }
        };
        if scratch.capacity() > KEEP_WRITE_BUF {
            scratch = Vec::new();
        }
        WRITE_BUF.with(|b| *b.borrow_mut() = scratch);
        result
    }

    fn encode_message(&mut self, opcode: OpCode, data: &[u8]) {
        encode_frame(&mut self.out, self.deflate.as_ref(), opcode, data);
    }

    /// Queues one text frame.
    pub(crate) fn push_text(&mut self, text: &[u8]) {
        self.encode_message(OpCode::Text, text);
    }

    /// Queues a pong frame answering a WebSocket ping.
    pub(crate) fn push_pong(&mut self, payload: &[u8]) {
        shoal_ws::write_frame(&mut self.out, OpCode::Pong, payload, false, None);
    }

    /// Queues a close frame.
    pub(crate) fn push_close(&mut self, code: u16) {
        let payload = shoal_ws::close_payload(code, "");
        shoal_ws::write_frame(&mut self.out, OpCode::Close, &payload, false, None);
    }

    /// Writes the output buffer. `Ready(Ok)` once everything is written and flushed.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            match self.io.poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.out_pos += n,
            }
        }
        if self.out.capacity() > KEEP_OUT_CAPACITY {
            self.out = Vec::new();
        } else {
            self.out.clear();
        }
        self.out_pos = 0;
        self.io.poll_flush(cx)
    }

    /// Writes everything pending (async form, for the handshake phase).
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_write(cx)).await
    }

    /// Reads the next message (async form, for the upgrade phase). Control frames are
    /// handled here: pings answered, a close frame or EOF ends the connection.
    pub(crate) async fn next_message(&mut self) -> Result<Message, WsEnd> {
        loop {
            let mut got: Option<Message> = None;
            let res = std::future::poll_fn(|cx| {
                self.poll_read(cx, &mut |m| {
                    got = Some(m);
                    ControlFlow::Break(())
                })
            })
            .await;
            res?;
            match got {
                Some(Message::Ping(p)) => {
                    self.push_pong(&p);
                    self.flush().await.map_err(WsEnd::Io)?;
                }
                Some(Message::Pong(_)) => {}
                Some(Message::Close(_)) => return Err(WsEnd::Eof),
                Some(m) => return Ok(m),
                None => {}
            }
        }
    }

    /// Best-effort graceful close: a close frame, then shut down the write side.
    pub(crate) async fn close(mut self, code: u16) {
        self.push_close(code);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            let _ = self.flush().await;
            let _ = std::future::poll_fn(|cx| self.io.poll_shutdown(cx)).await;
        })
        .await;
    }
}
