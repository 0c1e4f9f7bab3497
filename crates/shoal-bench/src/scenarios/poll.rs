//! Polling echo: HTTP long-polling clients (no WebSocket), each in a closed loop: POST an
//! `echo` event with an ack, then GET until the ack arrives; latency from the POST to the
//! ack. With `via`, every request after the handshake goes to another node, which must
//! forward it to the session's owner: the difference from a run without `via` is the cost
//! of the forwarding hop.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{Target, base_report, capped, round3, spawn_progress};
use crate::conn;
use crate::proto::{self, Incoming};
use crate::stats::{self, Latencies};

/// Settings of a polling echo run.
#[derive(Debug, Clone, Copy)]
pub struct Poll {
    /// Clients, each in a closed loop.
    pub clients: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Payload size in bytes.
    pub payload: usize,
    /// Where requests after the handshake go (another node), if not to the target.
    pub via: Option<SocketAddr>,
    /// The process id of the `via` node, to read its CPU time.
    pub via_pid: Option<u32>,
}

/// A keep-alive HTTP/1.1 connection that sends one request at a time.
#[derive(Debug)]
pub struct HttpConn {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl HttpConn {
    /// Connects to `server` (from `source` when given).
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn connect(server: SocketAddr, source: Option<IpAddr>) -> io::Result<HttpConn> {
        let stream = conn::tcp_connect(server, source).await?;
        Ok(HttpConn { stream, host: server.to_string(), buf: Vec::with_capacity(4096) })
    }

    /// Sends a request and reads the whole answer: status and body (`Content-Length` or
    /// chunked).
    ///
    /// # Errors
    /// Socket errors, a closed connection or a malformed answer.
    pub async fn request(&mut self, method: &str, path_query: &str, body: &[u8]) -> io::Result<(u16, Vec<u8>)> {
        let mut req = format!("{method} {path_query} HTTP/1.1\r\nHost: {}\r\n", self.host).into_bytes();
        if method == "POST" {
            req.extend_from_slice(
                format!("Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n", body.len()).as_bytes(),
            );
        }
        req.extend_from_slice(b"\r\n");
        req.extend_from_slice(body);
        self.stream.write_all(&req).await?;
        let head_end = loop {
            if let Some(p) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if self.buf.len() > 64 * 1024 {
                return Err(io::Error::other("response head too large"));
            }
            self.fill().await?;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end);
        let status: u16 =
            head.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| io::Error::other("bad status line"))?;
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_ascii_lowercase())
            })
        };
        let body = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            self.read_chunked().await?
        } else {
            let len = header("content-length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
            while self.buf.len() < len {
                self.fill().await?;
            }
            self.buf.drain(..len).collect()
        };
        Ok((status, body))
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        loop {
            let line_end = loop {
                if let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                    break p;
                }
                self.fill().await?;
            };
            let size_text = String::from_utf8_lossy(&self.buf[..line_end]).into_owned();
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| io::Error::other("bad chunk size"))?;
            self.buf.drain(..line_end + 2);
            while self.buf.len() < size + 2 {
                self.fill().await?;
            }
            body.extend_from_slice(&self.buf[..size]);
            self.buf.drain(..size + 2);
            if size == 0 {
                return Ok(body);
            }
        }
    }

    async fn fill(&mut self) -> io::Result<()> {
        let n = self.stream.read_buf(&mut self.buf).await?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
        }
        Ok(())
    }
}

/// One polling client: its session id and its connection (to the owner or to `via`).
struct Client {
    conn: HttpConn,
    path: String,
}

impl Client {
    async fn open(owner: SocketAddr, via: SocketAddr, source: Option<IpAddr>) -> io::Result<Client> {
        let (status, body) = conn::http_get(owner, source, "/socket.io/?EIO=4&transport=polling").await?;
        if status != 200 {
            return Err(io::Error::other(format!("handshake status {status}")));
        }
        let sid = proto::open_sid(&body).ok_or_else(|| io::Error::other("no sid in the handshake"))?;
        let mut c = Client {
            conn: HttpConn::connect(via, source).await?,
            path: format!("/socket.io/?EIO=4&transport=polling&sid={sid}"),
        };
        c.post(b"40").await?;
        loop {
            for p in c.get().await? {
                match proto::classify(&p) {
                    Incoming::Connected => return Ok(c),
                    Incoming::ConnectError => return Err(io::Error::other("namespace refused")),
                    _ => {}
                }
            }
        }
    }

    async fn post(&mut self, packet: &[u8]) -> io::Result<()> {
        let (status, _) = self.conn.request("POST", &self.path, packet).await?;
        if status != 200 {
            return Err(io::Error::other(format!("POST status {status}")));
        }
        Ok(())
    }

    /// One GET: the packets it carried (answering pings on the way).
    async fn get(&mut self) -> io::Result<Vec<Vec<u8>>> {
        let (status, body) = self.conn.request("GET", &self.path, b"").await?;
        if status != 200 {
            return Err(io::Error::other(format!("GET status {status}: {}", String::from_utf8_lossy(&body))));
        }
        let packets: Vec<Vec<u8>> = body.split(|&b| b == 0x1e).map(<[u8]>::to_vec).collect();
        if packets.iter().any(|p| p.as_slice() == b"2") {
            self.post(b"3").await?;
        }
        Ok(packets)
    }
}

/// Runs the scenario.
///
/// # Errors
/// When more than 1% of the clients cannot open their session.
pub async fn run(target: &Target, cfg: Poll) -> io::Result<Value> {
    let (n, was_capped) = capped(cfg.clients);
    let bench_before = stats::sample_self();
    let via = cfg.via.unwrap_or(target.server);
    let mut clients = Vec::with_capacity(n);
    let mut failures = 0usize;
    let mut first_error = None;
    for i in 0..n {
        match Client::open(target.server, via, target.source(i)).await {
            Ok(c) => clients.push(c),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    if failures * 100 > n.max(1) {
        return Err(io::Error::other(format!(
            "{failures} of {n} sessions failed (first error: {})",
            first_error.unwrap_or_default()
        )));
    }
    let payload = proto::payload_string(cfg.payload);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let acks = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(clients.len());
    for mut client in clients {
        let (payload, acks, errors) = (payload.clone(), acks.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut lat = Latencies::default();
            let mut buf = Vec::with_capacity(payload.len() + 32);
            let mut id = 0u64;
            let run = async {
                while Instant::now() < end {
                    proto::event(&mut buf, "echo", &payload, Some(id));
                    let sent_at = Instant::now();
                    client.post(&buf).await?;
                    'wait: loop {
                        for p in client.get().await? {
                            if let Incoming::Ack { id: got, .. } = proto::classify(&p)
                                && got == id
                            {
                                break 'wait;
                            }
                        }
                    }
                    let now = Instant::now();
                    if now >= measure_from && now < end {
                        lat.record(now - sent_at);
                        acks.fetch_add(1, Ordering::Relaxed);
                    }
                    id += 1;
                }
                Ok::<(), io::Error>(())
            };
            let limit = end.saturating_duration_since(Instant::now()) + Duration::from_secs(10);
            match tokio::time::timeout(limit, run).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                        eprintln!("  client error: {e}");
                    }
                }
                Err(_) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            lat
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before = target.server_sample();
    let via_before = cfg.via_pid.and_then(stats::sample);
    let progress = target.progress.then(|| spawn_progress("acks", acks.clone(), 0));
    tokio::time::sleep_until(end.into()).await;
    let server_after = target.server_sample();
    let via_after = cfg.via_pid.and_then(stats::sample);
    let mut all = Latencies::default();
    for t in tasks {
        if let Ok(l) = t.await {
            all.merge(l);
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    let count = all.len();
    let secs = cfg.duration.as_secs_f64();
    let mut m = base_report(target, "poll", n, was_capped, server_before, server_after, bench_before);
    m.insert("payload_bytes".into(), json!(cfg.payload));
    m.insert("forwarded".into(), json!(cfg.via.is_some()));
    m.insert("session_failures".into(), json!(failures));
    m.insert("client_errors".into(), json!(errors.load(Ordering::Relaxed)));
    m.insert("duration_s".into(), json!(secs));
    m.insert("acks".into(), json!(count));
    m.insert("acks_per_s".into(), json!((count as f64 / secs).round()));
    m.insert("p50_us".into(), json!(all.percentile(50.0)));
    m.insert("p99_us".into(), json!(all.percentile(99.0)));
    m.insert("max_us".into(), json!(all.percentile(100.0)));
    if count > 0 {
        if let (Some(b), Some(a)) = (server_before, server_after) {
            m.insert("server_cpu_us_per_ack".into(), json!(round3((a.cpu_s - b.cpu_s) * 1e6 / count as f64)));
        }
        if let (Some(b), Some(a)) = (via_before, via_after) {
            m.insert("via_cpu_us_per_ack".into(), json!(round3((a.cpu_s - b.cpu_s) * 1e6 / count as f64)));
        }
    }
    Ok(Value::Object(m))
}
