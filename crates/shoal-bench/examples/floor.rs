//! The floor: the least a server can do for the benchmark contract with the same stack
//! as Shoal (tokio, `shoal-ws` framing, one task per connection, a shared-bytes queue per
//! connection drained in one write), but no Engine.IO sessions, no Socket.IO parsing, no
//! rooms: it fakes just enough of the protocol for `shoal-bench` (`0{…}`, `40{…}`,
//! `echo` acks, `burst` to everyone, `count`). The distance between a server and this
//! floor is what its protocol layers cost.
//!
//! `cargo run --release -p shoal-bench --example floor -- --port 3000`

use std::collections::VecDeque;
use std::io;
use std::mem::MaybeUninit;
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use queue::Queue;
use shoal_ws::{Decoder, DecoderConfig, Message, OpCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// A connection's queue of shared frames and the notification that wakes its writer.
mod queue {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use bytes::Bytes;
    use tokio::sync::Notify;

    #[derive(Default)]
    pub(crate) struct Queue {
        pub(crate) items: Mutex<VecDeque<Bytes>>,
        pub(crate) notify: Notify,
    }

    impl Queue {
        pub(crate) fn push_many(&self, b: &Bytes, n: usize) {
            let mut q = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = q.is_empty();
            for _ in 0..n {
                q.push_back(b.clone());
            }
            drop(q);
            if was_empty {
                self.notify.notify_one();
            }
        }
        pub(crate) fn take(&self) -> VecDeque<Bytes> {
            std::mem::take(&mut *self.items.lock().unwrap_or_else(|e| e.into_inner()))
        }
    }
}

type Registry = Arc<std::sync::Mutex<Vec<Arc<Queue>>>>;

fn main() -> io::Result<()> {
    let port: u16 = std::env::args().skip_while(|a| a != "--port").nth(1).and_then(|p| p.parse().ok()).unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        println!("bench_server listening on http://{}", listener.local_addr()?);
        let registry: Registry = Arc::default();
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let registry = registry.clone();
            tokio::spawn(async move {
                let _ = conn(stream, registry).await;
            });
        }
    })
}

async fn conn(mut stream: TcpStream, registry: Registry) -> io::Result<()> {
    // HTTP upgrade
    let mut head = Vec::new();
    let mut b = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut b).await?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&b[..n]);
    }
    let text = String::from_utf8_lossy(&head);
    let key = text
        .lines()
        .find_map(|l| {
            l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case("sec-websocket-key")).map(|(_, v)| v.trim())
        })
        .unwrap_or("");
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        shoal_ws::accept_key(key.as_bytes())
    );
    stream.write_all(resp.as_bytes()).await?;
    let queue = Arc::new(Queue::default());
    registry.lock().unwrap_or_else(|e| e.into_inner()).push(queue.clone());
    queue.push_many(&Bytes::from_static(b"0{\"sid\":\"floorfloorfloorfloor\",\"upgrades\":[],\"pingInterval\":25000,\"pingTimeout\":20000,\"maxPayload\":1000000}"), 1);
    let mut decoder = Decoder::new(DecoderConfig::default());
    let mut out: Vec<u8> = Vec::new();
    loop {
        // write what is queued
        let items = queue.take();
        if !items.is_empty() {
            encode(&mut out, items);
            stream.write_all(&out).await?;
            out = Vec::new();
        }
        tokio::select! {
            _ = queue.notify.notified() => {}
            r = stream.readable() => {
                r?;
                let mut buf = [MaybeUninit::<u8>::uninit(); 8192];
                let mut rb = ReadBuf::uninit(&mut buf);
                let n = match stream.try_read_buf(&mut rb) {
                    Ok(0) => return Ok(()),
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                };
                let data = rb.filled()[..n].to_vec();
                let mut replies: Vec<Bytes> = Vec::new();
                let mut burst: Option<(usize, Bytes)> = None;
                let r = decoder.decode(&data, |m| {
                    if let Message::Text(t) = m {
                        handle(&t, &mut replies, &mut burst, &registry);
                    }
                    ControlFlow::Continue(())
                });
                if r.is_err() {
                    return Ok(());
                }
                for r in replies {
                    queue.push_many(&r, 1);
                }
                if let Some((n, msg)) = burst {
                    let all: Vec<Arc<Queue>> = registry.lock().unwrap_or_else(|e| e.into_inner()).clone();
                    for q in &all {
                        q.push_many(&msg, n);
                    }
                }
            }
        }
    }
}

fn encode(out: &mut Vec<u8>, items: VecDeque<Bytes>) {
    for p in items {
        let mut h = [0u8; 14];
        let n = shoal_ws::encode_header(&mut h, OpCode::Text, true, false, p.len(), None);
        out.extend_from_slice(&h[..n]);
        out.extend_from_slice(&p);
    }
}

fn handle(t: &[u8], replies: &mut Vec<Bytes>, burst: &mut Option<(usize, Bytes)>, registry: &Registry) {
    if t == b"40" {
        replies.push(Bytes::from_static(b"40{\"sid\":\"floorfloorfloorfloor\"}"));
        return;
    }
    let Some(rest) = t.strip_prefix(b"42") else { return };
    let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    let (id, body) = rest.split_at(digits);
    if body.starts_with(b"[\"echo\",") {
        // 43<id>[<args>]
        let mut r = Vec::with_capacity(t.len());
        r.extend_from_slice(b"43");
        r.extend_from_slice(id);
        r.push(b'[');
        r.extend_from_slice(&body[8..]);
        replies.push(Bytes::from(r));
    } else if body.starts_with(b"[\"count\"") {
        let n = registry.lock().unwrap_or_else(|e| e.into_inner()).len();
        replies.push(Bytes::from(format!("43{}[{n}]", String::from_utf8_lossy(id))));
    } else if body.starts_with(b"[\"burst\",") {
        // [\"burst\",{\"n\":N,\"payload\":P}]
        let s = String::from_utf8_lossy(body);
        let n = s
            .split("\"n\":")
            .nth(1)
            .and_then(|x| x.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        let payload =
            s.split("\"payload\":").nth(1).map(|p| p.trim_end_matches(']').trim_end_matches('}')).unwrap_or("null");
        *burst = Some((n, Bytes::from(format!("42[\"msg\",{payload}]"))));
    }
}
