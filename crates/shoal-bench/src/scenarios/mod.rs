//! The scenarios. Each returns one JSON object (printed as one line by the binary).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::conn::WsClient;
use crate::stats::{self, ProcSample};

pub mod cluster;
pub mod echo;
pub mod fanout;
pub mod handshake;
pub mod idle;
pub mod poll;
pub mod soak;

/// The server under test.
#[derive(Debug, Clone)]
pub struct Target {
    /// Its address.
    pub server: SocketAddr,
    /// Its process id, to read its CPU time and memory.
    pub server_pid: Option<u32>,
    /// A label for the report (`shoal`, `node`, `socketioxide`).
    pub label: String,
    /// Local addresses to connect from (spread over to pass the ephemeral port limit).
    pub sources: Vec<IpAddr>,
    /// Print progress to stderr.
    pub progress: bool,
    /// Connections opened at once while connecting many clients.
    pub connect_concurrency: usize,
}

impl Target {
    /// A target with loopback source addresses 127.0.0.2 … 127.0.0.(1+n) when the server
    /// is on loopback.
    pub fn new(server: SocketAddr, server_pid: Option<u32>, label: &str, sources: usize) -> Target {
        let sources = if server.ip().is_loopback() && server.is_ipv4() {
            (0..sources.max(1)).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (i % 250) as u8))).collect()
        } else {
            Vec::new()
        };
        Target { server, server_pid, label: label.to_owned(), sources, progress: true, connect_concurrency: 256 }
    }

    fn source(&self, i: usize) -> Option<IpAddr> {
        (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()])
    }

    /// The server's CPU and memory now (zero when unknown).
    pub fn server_sample(&self) -> Option<ProcSample> {
        self.server_pid.and_then(stats::sample)
    }
}

/// How many clients this process can open, given its open-file limit (keeps 300 spare).
pub fn client_cap() -> usize {
    (stats::open_files_limit() as usize).saturating_sub(300)
}

/// Caps `wanted` at [`client_cap`]; returns the number and whether it was capped.
pub fn capped(wanted: usize) -> (usize, bool) {
    let cap = client_cap();
    if wanted > cap { (cap, true) } else { (wanted, false) }
}

/// Opens `n` Socket.IO WebSocket clients, `connect_concurrency` at a time. Returns them,
/// the time it took and the number of failures.
///
/// # Errors
/// When more than 1% of the connections fail.
pub async fn connect_many(target: &Target, n: usize) -> io::Result<(Vec<WsClient>, Duration, usize)> {
    let sem = Arc::new(Semaphore::new(target.connect_concurrency.max(1)));
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let progress = target.progress.then(|| spawn_progress("connected", done.clone(), n as u64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await.map_err(io::Error::other)?;
        let server = target.server;
        let source = target.source(i);
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            let r = WsClient::connect_socketio(server, source, 0x9E37_79B9_7F4A_7C15 ^ (i as u64 + 1)).await;
            drop(permit);
            done.fetch_add(1, Ordering::Relaxed);
            r
        }));
    }
    let mut clients = Vec::with_capacity(n);
    let mut failures = 0;
    let mut first_error = None;
    for t in tasks {
        match t.await {
            Ok(Ok(c)) => clients.push(c),
            Ok(Err(e)) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e.to_string());
            }
        }
    }
    let elapsed = start.elapsed();
    if let Some(p) = progress {
        p.abort();
    }
    if failures * 100 > n {
        return Err(io::Error::other(format!(
            "{failures} of {n} connections failed (first error: {})",
            first_error.unwrap_or_default()
        )));
    }
    Ok((clients, elapsed, failures))
}

/// Prints `label: x/total` to stderr every second until aborted.
pub fn spawn_progress(label: &'static str, counter: Arc<impl Counter>, total: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            eprintln!("  {label}: {}/{total}", counter.get());
        }
    })
}

/// Something progress can be read from.
pub trait Counter: Send + Sync + 'static {
    /// The current value.
    fn get(&self) -> u64;
}

impl Counter for AtomicUsize {
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed) as u64
    }
}

impl Counter for AtomicU64 {
    fn get(&self) -> u64 {
        self.load(Ordering::Relaxed)
    }
}

/// Fields every report has, plus the server's CPU and memory between two samples.
pub(crate) fn base_report(
    target: &Target,
    scenario: &str,
    clients: usize,
    capped: bool,
    before: Option<ProcSample>,
    after: Option<ProcSample>,
    bench_before: ProcSample,
) -> Map<String, Value> {
    let bench_after = stats::sample_self();
    let mut m = Map::new();
    m.insert("scenario".into(), json!(scenario));
    m.insert("server".into(), json!(target.label));
    m.insert("clients".into(), json!(clients));
    m.insert("capped".into(), json!(capped));
    m.insert("bench_cpu_s".into(), json!(round3(bench_after.cpu_s - bench_before.cpu_s)));
    if let (Some(b), Some(a)) = (before, after) {
        m.insert("server_cpu_s".into(), json!(round3(a.cpu_s - b.cpu_s)));
        m.insert("server_rss_kib".into(), json!(a.rss_kib));
    }
    m
}

pub(crate) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Closes every client (in parallel, bounded in time).
pub async fn close_all(clients: Vec<WsClient>) {
    let tasks: Vec<_> = clients.into_iter().map(|c| tokio::spawn(c.close())).collect();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        for t in tasks {
            let _ = t.await;
        }
    })
    .await;
}
