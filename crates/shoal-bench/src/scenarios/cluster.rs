//! Cluster: several nodes of one server sharing a Redis, clients spread over them, one
//! sender on the first node broadcasting to room `bench` at a steady rate; every client
//! counts what it receives and how long each message took from the sender's emit.
//!
//! Each broadcast's payload carries its send time: `"t:<µs>:aaaa…"`, the sender's
//! microseconds since the run's reference instant (one process, one clock), padded to the
//! payload size. Receivers compute the latency from emit to delivery from it; no clock
//! has to be shared between processes.
//!
//! The run goes through phases, all timed from one reference instant:
//! - idle (`idle`, optional): nothing is sent; each node's CPU is read at both ends, its
//!   idle level;
//! - warm-up (`warmup`): the sender sends; nothing is counted;
//! - measured window (`duration`): what the sender sends here is *measured*: expected =
//!   measured broadcasts × clients; each node's CPU is read at both ends;
//! - drain (up to `drain`): the sender stops; the run waits until every measured message
//!   has arrived, or the drain time is over (what is missing then is lost).
//!
//! `delivered_per_s` counts every message received during the window (the receivers'
//! rate, which under saturation is the servers' delivery rate); latency percentiles are
//! over the measured messages, for all clients and (`remote_*`) for the clients of the
//! other nodes than the sender's, whose messages went through Redis.
//! `bench_window_cpu_s` is the load generator's own CPU time during the window: close to
//! the window's length, the load generator (not the servers) set the pace.
//!
//! With `room_only_on_first`, every client connects to the first node: room `bench` has
//! members on that node only, and the others hold no client at all. Their CPU per 1000
//! broadcasts, net of their idle level, is what a broadcast to a room with no member on a
//! node costs that node.

use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tokio::sync::watch;

use super::{Target, base_report, capped, close_all, connect_many, round3, spawn_progress};
use crate::conn::WsClient;
use crate::proto::{self, Incoming};
use crate::stats::{self, Latencies, ProcSample};

/// Settings of a cluster run.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The nodes; the sender connects to the first one.
    pub addrs: Vec<SocketAddr>,
    /// Process ids of the nodes (same order as `addrs`), or empty.
    pub server_pids: Vec<u32>,
    /// Process id of Redis, to report its CPU time too.
    pub redis_pid: Option<u32>,
    /// Clients in the room, spread round-robin over the nodes (the sender is one of them).
    pub clients: usize,
    /// Broadcasts per second; 0: as fast as `max_in_flight` allows.
    pub rate: u32,
    /// At most this many broadcasts not yet delivered to every client (0: no limit).
    pub max_in_flight: u64,
    /// Payload size in bytes (a JSON string of that length).
    pub payload: usize,
    /// Quiet time before sending, to read each node's idle CPU.
    pub idle: Duration,
    /// Sending before the measured window.
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Longest wait for the measured messages after the window.
    pub drain: Duration,
    /// Every client on the first node (room `bench` has no member on the others).
    pub room_only_on_first: bool,
}

/// The phases of a run, in microseconds since the reference instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Phases {
    /// Sending starts (end of the idle phase).
    pub(crate) send_from: u64,
    /// Measured window start (end of the warm-up).
    pub(crate) window_from: u64,
    /// Measured window end: sending stops.
    pub(crate) window_to: u64,
}

impl Phases {
    fn new(idle: Duration, warmup: Duration, duration: Duration) -> Phases {
        let us = |d: Duration| d.as_micros() as u64;
        let send_from = us(idle);
        let window_from = send_from + us(warmup);
        Phases { send_from, window_from, window_to: window_from + us(duration) }
    }

    /// True if a message stamped `t` (its send time) is measured.
    pub(crate) fn measured(&self, t: u64) -> bool {
        (self.window_from..self.window_to).contains(&t)
    }
}

/// Which node each of `clients` clients connects to (client `i` to node `i % nodes`, or
/// all to node 0): the number of clients per node.
pub(crate) fn spread(clients: usize, nodes: usize, only_first: bool) -> Vec<usize> {
    let nodes = nodes.max(1);
    if only_first {
        let mut v = vec![0; nodes];
        v[0] = clients;
        return v;
    }
    (0..nodes).map(|j| clients / nodes + usize::from(j < clients % nodes)).collect()
}

/// Writes the JSON string payload of a broadcast sent at `t_us`: `"t:<t_us>:aaa…"`, padded
/// with letters to `len` bytes (quotes included) when the stamp is shorter.
pub(crate) fn stamped_payload(out: &mut Vec<u8>, t_us: u64, len: usize) {
    out.clear();
    out.extend_from_slice(b"\"t:");
    out.extend_from_slice(t_us.to_string().as_bytes());
    out.push(b':');
    let mut i = 0u8;
    while out.len() + 1 < len {
        out.push(b'a' + i % 26);
        i = i.wrapping_add(1);
    }
    out.push(b'"');
}

/// The send time in a received frame (`42["msg","t:<µs>:…"]`), if it has one.
pub(crate) fn parse_stamp(frame: &[u8]) -> Option<u64> {
    let at = frame.windows(3).position(|w| w == b"\"t:")? + 3;
    let digits = &frame[at..];
    let n = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 19 || digits.get(n) != Some(&b':') {
        return None;
    }
    Some(digits[..n].iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d - b'0')))
}

/// What one client saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tally {
    /// Measured messages received (sent inside the window).
    pub(crate) measured: u64,
    /// Messages received while the window was open (sent any time).
    pub(crate) in_window: u64,
    /// Latency of the measured messages.
    pub(crate) latency: Latencies,
}

impl Tally {
    /// Records a message stamped `sent_us`, received at `now_us`. Returns whether it was
    /// measured.
    pub(crate) fn record(&mut self, phases: &Phases, sent_us: u64, now_us: u64) -> bool {
        if (phases.window_from..phases.window_to).contains(&now_us) {
            self.in_window += 1;
        }
        if phases.measured(sent_us) {
            self.measured += 1;
            self.latency.record(Duration::from_micros(now_us.saturating_sub(sent_us)));
            return true;
        }
        false
    }
}

/// The delivery figures of a run.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figures {
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) loss_pct: f64,
    pub(crate) delivered_per_s: f64,
    pub(crate) p50_us: u32,
    pub(crate) p99_us: u32,
    pub(crate) p999_us: u32,
    pub(crate) max_us: u32,
}

/// Computes the figures from every client's tally: `broadcasts` measured broadcasts to
/// `tallies.len()` clients over a window of `window_s` seconds.
pub(crate) fn account(tallies: Vec<Tally>, broadcasts: u64, window_s: f64) -> Figures {
    let expected = broadcasts * tallies.len() as u64;
    let mut delivered = 0;
    let mut in_window = 0;
    let mut all = Latencies::default();
    for t in tallies {
        delivered += t.measured;
        in_window += t.in_window;
        all.merge(t.latency);
    }
    let lost = expected.saturating_sub(delivered);
    Figures {
        expected,
        delivered,
        lost,
        loss_pct: if expected > 0 { lost as f64 * 100.0 / expected as f64 } else { 0.0 },
        delivered_per_s: if window_s > 0.0 { in_window as f64 / window_s } else { 0.0 },
        p50_us: all.percentile(50.0),
        p99_us: all.percentile(99.0),
        p999_us: all.percentile(99.9),
        max_us: all.percentile(100.0),
    }
}

/// How many broadcasts the sender may send now: what the rate allows since `send_from`
/// (at most `burst_cap` at once), less what the in-flight limit holds back.
pub(crate) fn due(
    rate: u32,
    elapsed_sending_s: f64,
    sent: u64,
    delivered: u64,
    clients: u64,
    max_in_flight: u64,
    burst_cap: u64,
) -> u64 {
    let by_rate = if rate == 0 {
        burst_cap
    } else {
        let target = (elapsed_sending_s * f64::from(rate)).floor() as u64 + 1;
        target.saturating_sub(sent).min(burst_cap)
    };
    if max_in_flight == 0 {
        return by_rate;
    }
    // broadcasts fully delivered, counting each client's copy
    let done = delivered / clients.max(1);
    let in_flight = sent.saturating_sub(done);
    by_rate.min(max_in_flight.saturating_sub(in_flight))
}

/// CPU seconds between two readings of each node, `None` where one is missing.
pub(crate) fn cpu_deltas(before: &[Option<ProcSample>], after: &[Option<ProcSample>]) -> Vec<Option<f64>> {
    before.iter().zip(after).map(|(b, a)| Some(a.as_ref()?.cpu_s - b.as_ref()?.cpu_s)).collect()
}

/// CPU milliseconds per 1000 broadcasts of a node, net of its idle level: `busy_s` CPU
/// seconds over `window_s` while `broadcasts` were sent, against `idle_s` CPU seconds over
/// `idle_window_s` with nothing sent. Negative when the difference is noise.
pub(crate) fn net_ms_per_1000(busy_s: f64, window_s: f64, idle_s: f64, idle_window_s: f64, broadcasts: u64) -> f64 {
    if broadcasts == 0 || window_s <= 0.0 {
        return 0.0;
    }
    let idle_rate = if idle_window_s > 0.0 { idle_s / idle_window_s } else { 0.0 };
    (busy_s - idle_rate * window_s) * 1e6 / broadcasts as f64
}

/// The nodes' readings summed; `None` without readings or when one is missing.
fn sum_samples(samples: &[Option<ProcSample>]) -> Option<ProcSample> {
    if samples.is_empty() {
        return None;
    }
    samples.iter().try_fold(ProcSample::default(), |acc, s| {
        let s = s.as_ref()?;
        Some(ProcSample { cpu_s: acc.cpu_s + s.cpu_s, rss_kib: acc.rss_kib + s.rss_kib })
    })
}

fn read_pids(pids: &[u32]) -> Vec<Option<ProcSample>> {
    pids.iter().map(|&p| stats::sample(p)).collect()
}

/// Runs the scenario.
///
/// # Errors
/// Bad settings, or clients that cannot connect.
pub async fn run(target: &Target, cfg: Cluster) -> io::Result<Value> {
    if cfg.addrs.is_empty() {
        return Err(io::Error::other("no node address"));
    }
    if !cfg.server_pids.is_empty() && cfg.server_pids.len() != cfg.addrs.len() {
        return Err(io::Error::other("give one server pid per node address"));
    }
    if cfg.rate == 0 && cfg.max_in_flight == 0 {
        return Err(io::Error::other("--rate 0 (unlimited) needs --max-in-flight"));
    }
    let (n, was_capped) = capped(cfg.clients.max(1));
    let bench_before = stats::sample_self();
    let plan = spread(n, cfg.addrs.len(), cfg.room_only_on_first);

    // connect, node by node; the sender is the first client of the first node
    let mut clients: Vec<(usize, WsClient)> = Vec::with_capacity(n);
    let mut per_node = Vec::with_capacity(plan.len());
    for (node_index, (&addr, &count)) in cfg.addrs.iter().zip(&plan).enumerate() {
        if count == 0 {
            per_node.push(0);
            continue;
        }
        let node = Target { server: addr, ..target.clone() };
        if target.progress {
            eprintln!("  node {addr}: connecting {count} clients");
        }
        let (c, _, _) = connect_many(&node, count).await?;
        per_node.push(c.len());
        clients.extend(c.into_iter().map(|c| (node_index, c)));
    }
    let n = clients.len();
    let nodes = cfg.addrs.len();

    let start = Instant::now() + Duration::from_millis(200);
    let phases = Phases::new(cfg.idle, cfg.warmup, cfg.duration);
    let at = |us: u64| start + Duration::from_micros(us);
    let now_us = move || Instant::now().saturating_duration_since(start).as_micros() as u64;

    let delivered = Arc::new(AtomicU64::new(0));
    let measured = Arc::new(AtomicU64::new(0));
    let sent_measured = Arc::new(AtomicU64::new(0));
    let sent_total = Arc::new(AtomicU64::new(0));
    let sender_done = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut tasks = Vec::with_capacity(n);
    let mut clients = clients.into_iter();
    // the sender: a receiver too (it is in the room), sending on ticks
    if let Some((node_index, mut client)) = clients.next() {
        let (delivered, measured) = (delivered.clone(), measured.clone());
        let (sent_measured, sent_total, sender_done) = (sent_measured.clone(), sent_total.clone(), sender_done.clone());
        let mut stop = stop_rx.clone();
        let payload_len = cfg.payload;
        let (rate, max_in_flight) = (cfg.rate, cfg.max_in_flight);
        let period = if rate == 0 {
            Duration::from_millis(1)
        } else {
            Duration::from_secs_f64(1.0 / f64::from(rate)).max(Duration::from_millis(1))
        };
        // at most this many at once when catching up (or per tick when unlimited)
        let burst_cap = if rate == 0 { max_in_flight } else { (u64::from(rate) / 100).max(1) * 10 };
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let mut sent = 0u64;
            let mut payload = Vec::with_capacity(payload_len + 32);
            let mut frame = Vec::with_capacity(payload_len + 48);
            let counted = &mut tally;
            let delivered_r = delivered.clone();
            let res = tokio::select! {
                r = client.run_with_ticks(
                    period,
                    |out| {
                        let t = now_us();
                        if t < phases.send_from || sender_done.load(Ordering::Relaxed) {
                            return;
                        }
                        if t >= phases.window_to {
                            sender_done.store(true, Ordering::Release);
                            return;
                        }
                        let elapsed = (t - phases.send_from) as f64 / 1e6;
                        let k = due(rate, elapsed, sent, delivered_r.load(Ordering::Relaxed), n as u64,
                            max_in_flight, burst_cap);
                        for _ in 0..k {
                            let t = now_us();
                            stamped_payload(&mut payload, t, payload_len);
                            // the payload is ASCII
                            proto::event(&mut frame, "broadcast", std::str::from_utf8(&payload).unwrap_or("\"\""), None);
                            out.send(&frame);
                            sent += 1;
                            sent_total.fetch_add(1, Ordering::Relaxed);
                            if phases.measured(t) {
                                sent_measured.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    },
                    |f, _| {
                        on_frame(f, &phases, now_us, counted, &delivered, &measured);
                        ControlFlow::Continue(())
                    },
                ) => r,
                _ = stop.wait_for(|s| *s) => Ok(()),
            };
            sender_done.store(true, Ordering::Release);
            if let Err(e) = res {
                eprintln!("  sender error: {e}");
            }
            (node_index, tally, client)
        }));
    }
    for (node_index, mut client) in clients {
        let (delivered, measured) = (delivered.clone(), measured.clone());
        let mut stop = stop_rx.clone();
        tasks.push(tokio::spawn(async move {
            let mut tally = Tally::default();
            let counted = &mut tally;
            let res = tokio::select! {
                r = client.run(|f, _| {
                    on_frame(f, &phases, now_us, counted, &delivered, &measured);
                    ControlFlow::Continue(())
                }) => r,
                _ = stop.wait_for(|s| *s) => Ok(()),
            };
            if let Err(e) = res {
                eprintln!("  client error: {e}");
            }
            (node_index, tally, client)
        }));
    }

    let pids = &cfg.server_pids;
    let redis = cfg.redis_pid;
    tokio::time::sleep_until(start.into()).await;
    let idle_before = read_pids(pids);
    tokio::time::sleep_until(at(phases.send_from).into()).await;
    let idle_after = read_pids(pids);
    let would_send = u64::from(cfg.rate) * (cfg.warmup + cfg.duration).as_secs();
    let progress = target.progress.then(|| spawn_progress("delivered", delivered.clone(), would_send * n as u64));
    tokio::time::sleep_until(at(phases.window_from).into()).await;
    let before = read_pids(pids);
    let redis_before = redis.and_then(stats::sample);
    let bench_window_before = stats::sample_self();
    tokio::time::sleep_until(at(phases.window_to).into()).await;
    let after = read_pids(pids);
    let redis_after = redis.and_then(stats::sample);
    let bench_window_after = stats::sample_self();
    // the sender notices the end of the window on its next tick
    let wait_sender = Instant::now() + Duration::from_secs(2);
    while !sender_done.load(Ordering::Acquire) && Instant::now() < wait_sender {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let broadcasts = sent_measured.load(Ordering::Acquire);
    let expected = broadcasts * n as u64;
    let drain_end = Instant::now() + cfg.drain;
    while measured.load(Ordering::Relaxed) < expected && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let drained_s = cfg.drain.saturating_sub(drain_end.saturating_duration_since(Instant::now())).as_secs_f64();
    let _ = stop_tx.send(true);
    if let Some(p) = progress {
        p.abort();
    }
    let mut tallies = Vec::with_capacity(n);
    let mut to_close = Vec::with_capacity(n);
    // latency of the clients on other nodes than the sender's: across Redis
    let mut remote = Latencies::default();
    for t in tasks {
        match t.await {
            Ok((node_index, tally, c)) => {
                if node_index != 0 {
                    remote.merge(tally.latency.clone());
                }
                tallies.push(tally);
                to_close.push(c);
            }
            Err(_) => tallies.push(Tally::default()),
        }
    }
    close_all(to_close).await;

    let window_s = cfg.duration.as_secs_f64();
    let idle_s = cfg.idle.as_secs_f64();
    let f = account(tallies, broadcasts, window_s);
    let mut m: Map<String, Value> =
        base_report(target, "cluster", n, was_capped, sum_samples(&before), sum_samples(&after), bench_before);
    m.insert("nodes".into(), json!(nodes));
    m.insert("clients_per_node".into(), json!(per_node));
    m.insert("room_only_on_first".into(), json!(cfg.room_only_on_first));
    m.insert("rate".into(), json!(cfg.rate));
    m.insert("max_in_flight".into(), json!(cfg.max_in_flight));
    m.insert("payload_bytes".into(), json!(cfg.payload));
    m.insert("idle_s".into(), json!(idle_s));
    m.insert("warmup_s".into(), json!(cfg.warmup.as_secs_f64()));
    m.insert("duration_s".into(), json!(window_s));
    m.insert("broadcasts".into(), json!(broadcasts));
    m.insert("broadcasts_total".into(), json!(sent_total.load(Ordering::Relaxed)));
    m.insert("broadcasts_per_s".into(), json!(round3(broadcasts as f64 / window_s.max(1e-9))));
    m.insert("expected".into(), json!(f.expected));
    m.insert("delivered".into(), json!(f.delivered));
    m.insert("lost".into(), json!(f.lost));
    m.insert("loss_pct".into(), json!(round3(f.loss_pct)));
    m.insert("drain_s".into(), json!(round3(drained_s)));
    m.insert("delivered_per_s".into(), json!(f.delivered_per_s.round()));
    m.insert("p50_us".into(), json!(f.p50_us));
    m.insert("p99_us".into(), json!(f.p99_us));
    m.insert("p999_us".into(), json!(f.p999_us));
    m.insert("max_us".into(), json!(f.max_us));
    if !remote.is_empty() {
        m.insert("remote_p50_us".into(), json!(remote.percentile(50.0)));
        m.insert("remote_p99_us".into(), json!(remote.percentile(99.0)));
    }
    m.insert("bench_window_cpu_s".into(), json!(round3(bench_window_after.cpu_s - bench_window_before.cpu_s)));
    if !pids.is_empty() {
        let busy = cpu_deltas(&before, &after);
        m.insert("nodes_cpu_s".into(), json!(busy.iter().map(|c| c.map(round3)).collect::<Vec<_>>()));
        let rss: Vec<Option<u64>> = after.iter().map(|s| s.map(|s| s.rss_kib)).collect();
        m.insert("nodes_rss_kib".into(), json!(rss));
        if let (Some(b), Some(a)) = (sum_samples(&before), sum_samples(&after))
            && f.delivered > 0
        {
            let cpu = a.cpu_s - b.cpu_s;
            m.insert("server_cpu_us_per_msg".into(), json!(round3(cpu * 1e6 / f.delivered as f64)));
        }
        let idle = cpu_deltas(&idle_before, &idle_after);
        if idle_s > 0.0 {
            m.insert("nodes_idle_cpu_s".into(), json!(idle.iter().map(|c| c.map(round3)).collect::<Vec<_>>()));
        }
        // CPU per 1000 broadcasts, net of the idle level when there was an idle phase
        let per_1000: Vec<Option<f64>> = busy
            .iter()
            .zip(&idle)
            .map(|(b, i)| {
                let i = if idle_s > 0.0 { (*i)? } else { 0.0 };
                Some(round3(net_ms_per_1000((*b)?, window_s, i, idle_s, broadcasts)))
            })
            .collect();
        m.insert("nodes_cpu_ms_per_1000_broadcasts".into(), json!(per_1000));
    }
    if let (Some(b), Some(a)) = (redis_before, redis_after) {
        m.insert("redis_cpu_s".into(), json!(round3(a.cpu_s - b.cpu_s)));
    }
    Ok(Value::Object(m))
}

/// Counts a received frame if it is a stamped `msg`.
fn on_frame(
    frame: &[u8],
    phases: &Phases,
    now_us: impl Fn() -> u64,
    tally: &mut Tally,
    delivered: &AtomicU64,
    measured: &AtomicU64,
) {
    if let Incoming::Event { name: b"msg", .. } = proto::classify(frame)
        && let Some(sent) = parse_stamp(frame)
    {
        delivered.fetch_add(1, Ordering::Relaxed);
        if tally.record(phases, sent, now_us()) {
            measured.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_at_the_payload_size() {
        let mut p = Vec::new();
        stamped_payload(&mut p, 123_456, 100);
        assert_eq!(p.len(), 100);
        assert!(p.starts_with(b"\"t:123456:abc"));
        assert!(p.ends_with(b"\""));
        let mut frame = Vec::new();
        proto::event(&mut frame, "msg", std::str::from_utf8(&p).unwrap(), None);
        assert_eq!(parse_stamp(&frame), Some(123_456));
        // a stamp longer than the payload size is kept whole
        stamped_payload(&mut p, 9_876_543_210, 4);
        assert_eq!(p, b"\"t:9876543210:\"");
        stamped_payload(&mut p, 0, 8);
        assert_eq!(p, b"\"t:0:ab\"");
        assert_eq!(parse_stamp(b"42[\"msg\",\"t:0:ab\"]"), Some(0));
        // not stamped, or malformed
        assert_eq!(parse_stamp(b"42[\"msg\",\"abcdef\"]"), None);
        assert_eq!(parse_stamp(b"42[\"msg\",\"t::\"]"), None);
        assert_eq!(parse_stamp(b"42[\"msg\",\"t:12\"]"), None);
        assert_eq!(parse_stamp(b"42[\"msg\",\"t:99999999999999999999:\"]"), None);
    }

    #[test]
    fn clients_spread_round_robin() {
        assert_eq!(spread(3000, 3, false), vec![1000, 1000, 1000]);
        assert_eq!(spread(10, 3, false), vec![4, 3, 3]);
        assert_eq!(spread(2, 3, false), vec![1, 1, 0]);
        assert_eq!(spread(7, 1, false), vec![7]);
        assert_eq!(spread(10, 3, true), vec![10, 0, 0]);
    }

    #[test]
    fn phases_and_tallies() {
        let p = Phases::new(Duration::from_secs(2), Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(p, Phases { send_from: 2_000_000, window_from: 3_000_000, window_to: 13_000_000 });
        let mut t = Tally::default();
        // warm-up message received in the window: counts for the rate, not as measured
        assert!(!t.record(&p, 2_500_000, 3_000_100));
        // measured, 1 ms
        assert!(t.record(&p, 3_000_000, 3_001_000));
        // measured, sent at the end of the window, received after it: 3 ms
        assert!(t.record(&p, 12_999_000, 13_002_000));
        // sent after the window
        assert!(!t.record(&p, 13_000_000, 13_000_500));
        assert_eq!((t.measured, t.in_window), (2, 2));
        assert_eq!(t.latency.len(), 2);
    }

    #[test]
    fn accounting() {
        let p = Phases::new(Duration::ZERO, Duration::ZERO, Duration::from_secs(2));
        let mut a = Tally::default();
        let mut b = Tally::default();
        let c = Tally::default();
        for i in 0..100u64 {
            a.record(&p, i * 10_000, i * 10_000 + 1_000 + i);
            if i < 90 {
                b.record(&p, i * 10_000, i * 10_000 + 2_000);
            }
        }
        let f = account(vec![a, b, c], 100, 2.0);
        assert_eq!((f.expected, f.delivered, f.lost), (300, 190, 110));
        assert!((f.loss_pct - 110.0 * 100.0 / 300.0).abs() < 1e-9);
        assert!((f.delivered_per_s - 95.0).abs() < 1e-9);
        // 100 samples of 1000..1099 µs and 90 of 2000 µs
        assert_eq!(f.p50_us, 1094);
        assert_eq!(f.p99_us, 2000);
        assert_eq!(f.max_us, 2000);
        let none = account(vec![Tally::default(); 3], 0, 1.0);
        assert_eq!((none.expected, none.lost, none.loss_pct, none.p50_us), (0, 0, 0.0, 0));
    }

    #[test]
    fn sending_follows_the_rate_and_the_in_flight_limit() {
        // 20/s: one at once, then one per 50 ms
        assert_eq!(due(20, 0.0, 0, 0, 10, 0, 10), 1);
        assert_eq!(due(20, 0.049, 1, 0, 10, 0, 10), 0);
        assert_eq!(due(20, 0.05, 1, 0, 10, 0, 10), 1);
        // late by a second: catches up, at most burst_cap at once
        assert_eq!(due(20, 1.0, 1, 0, 10, 0, 10), 10);
        // in flight: 5 sent, 25 copies delivered to 10 clients = 2 done, 3 in flight
        assert_eq!(due(1000, 1.0, 5, 25, 10, 4, 100), 1);
        assert_eq!(due(1000, 1.0, 5, 25, 10, 3, 100), 0);
        // unlimited rate: the in-flight limit decides
        assert_eq!(due(0, 5.0, 5, 50, 10, 8, 8), 8);
        assert_eq!(due(0, 5.0, 8, 50, 10, 8, 8), 5);
    }

    /// A node of the benchmark contract (room `bench`, event `broadcast`) in this process,
    /// with the in-memory adapter: two of them share nothing.
    async fn node() -> SocketAddr {
        let io = shoal::SocketIo::builder().build().expect("settings");
        io.of("/").on_connect(|socket: shoal::Socket| async move {
            socket.join("bench");
            socket.on("broadcast", |s: shoal::Socket, ev: shoal::Event| async move {
                let _ = s.namespace().to("bench").emit_args("msg", ev.into_args());
            });
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = shoal::serve(listener, io, std::future::pending()).await;
        });
        addr
    }

    fn settings(addrs: Vec<SocketAddr>, clients: usize) -> Cluster {
        let pids = vec![std::process::id(); addrs.len()];
        Cluster {
            addrs,
            server_pids: pids,
            redis_pid: None,
            clients,
            rate: 40,
            max_in_flight: 0,
            payload: 60,
            idle: Duration::from_millis(200),
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(1000),
            drain: Duration::from_secs(2),
            room_only_on_first: false,
        }
    }

    fn quiet(addr: SocketAddr) -> Target {
        let mut t = Target::new(addr, None, "test", 2);
        t.progress = false;
        t
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_node_delivers_every_message() {
        let addr = node().await;
        let r = tokio::time::timeout(Duration::from_secs(60), run(&quiet(addr), settings(vec![addr], 9)))
            .await
            .expect("bounded")
            .expect("runs");
        let broadcasts = r["broadcasts"].as_u64().unwrap();
        // 40/s over 1 s, give or take a tick at each end
        assert!((38..=42).contains(&broadcasts), "{r}");
        assert_eq!(r["expected"].as_u64().unwrap(), broadcasts * 9, "{r}");
        assert_eq!(r["delivered"], r["expected"], "{r}");
        assert_eq!(r["lost"], 0, "{r}");
        assert!(r["delivered_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["p50_us"].as_u64().unwrap() <= r["p99_us"].as_u64().unwrap(), "{r}");
        assert_eq!(r["clients_per_node"], json!([9]));
        assert!(r.get("remote_p50_us").is_none(), "one node has no remote clients: {r}");
        assert_eq!(r["nodes_cpu_ms_per_1000_broadcasts"].as_array().unwrap().len(), 1, "{r}");
        assert!(r["nodes_idle_cpu_s"].is_array(), "{r}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_node_does_not_get_is_lost() {
        // two nodes that share nothing: the clients of the second one never see the
        // sender's broadcasts
        let (a, b) = (node().await, node().await);
        let r = tokio::time::timeout(Duration::from_secs(60), run(&quiet(a), settings(vec![a, b], 6)))
            .await
            .expect("bounded")
            .expect("runs");
        let broadcasts = r["broadcasts"].as_u64().unwrap();
        assert!(broadcasts > 0, "{r}");
        assert_eq!(r["clients_per_node"], json!([3, 3]));
        assert_eq!(r["delivered"].as_u64().unwrap(), broadcasts * 3, "{r}");
        assert_eq!(r["lost"].as_u64().unwrap(), broadcasts * 3, "{r}");
        assert_eq!(r["loss_pct"].as_f64().unwrap(), 50.0, "{r}");

        // every client on the first node: nothing is missing
        let mut cfg = settings(vec![a, b], 6);
        cfg.room_only_on_first = true;
        let r = run(&quiet(a), cfg).await.expect("runs");
        assert_eq!(r["clients_per_node"], json!([6, 0]));
        assert_eq!(r["lost"], 0, "{r}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unlimited_rate_keeps_to_the_in_flight_limit() {
        let addr = node().await;
        let mut cfg = settings(vec![addr], 4);
        cfg.rate = 0;
        cfg.max_in_flight = 2;
        cfg.server_pids.clear();
        let r = run(&quiet(addr), cfg).await.expect("runs");
        assert!(r["broadcasts"].as_u64().unwrap() > 40, "faster than a fixed rate: {r}");
        assert_eq!(r["lost"], 0, "{r}");
        assert!(r.get("server_cpu_s").is_none() && r.get("nodes_cpu_s").is_none(), "no pid, no CPU: {r}");
        let mut cfg = settings(vec![addr], 4);
        cfg.rate = 0;
        assert!(run(&quiet(addr), cfg).await.is_err(), "no rate and no in-flight limit");
    }

    #[test]
    fn cpu_of_the_nodes() {
        let s = |cpu_s| Some(ProcSample { cpu_s, rss_kib: 10 });
        let d = cpu_deltas(&[s(1.0), s(2.0), None], &[s(1.5), s(2.0), s(3.0)]);
        assert_eq!(d, vec![Some(0.5), Some(0.0), None]);
        assert_eq!(sum_samples(&[s(1.0), s(2.0)]), Some(ProcSample { cpu_s: 3.0, rss_kib: 20 }));
        assert_eq!(sum_samples(&[s(1.0), None]), None);
        assert_eq!(sum_samples(&[]), None);
        // 0.25 s busy over 10 s for 10 000 broadcasts, idle 0.01 s per second: 15 ms per 1000
        let x = net_ms_per_1000(0.25, 10.0, 0.05, 5.0, 10_000);
        assert!((x - 15.0).abs() < 1e-9, "{x}");
        assert!((net_ms_per_1000(0.25, 10.0, 0.0, 0.0, 10_000) - 25.0).abs() < 1e-9);
        assert_eq!(net_ms_per_1000(1.0, 10.0, 0.0, 0.0, 0), 0.0);
    }
}
