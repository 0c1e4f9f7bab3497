//! Fan-out: every client in room `bench`; one of them asks the server for a burst of `n`
//! messages to the room; every client counts what it receives.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::watch;

use super::{Target, base_report, capped, close_all, connect_many, round3, spawn_progress};
use crate::proto::{self, Incoming};
use crate::stats::{self, Latencies};

/// Settings of a fan-out run.
#[derive(Debug, Clone, Copy)]
pub struct Fanout {
    /// Clients in the room.
    pub clients: usize,
    /// Messages in the burst.
    pub messages: usize,
    /// Payload size in bytes (a JSON string of that length).
    pub payload: usize,
    /// Give up after this long without the burst completing.
    pub timeout: Duration,
}

/// What one client saw.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Received {
    pub(crate) count: u64,
    pub(crate) first: Option<Instant>,
    pub(crate) last: Option<Instant>,
}

/// Computes the figures of a fan-out from what each client received.
pub(crate) fn account(received: &[Received], expected_per_client: u64, t0: Instant) -> FanoutFigures {
    let delivered: u64 = received.iter().map(|r| r.count).sum();
    let expected = expected_per_client * received.len() as u64;
    let last = received.iter().filter_map(|r| r.last).max();
    let elapsed = last.map_or(0.0, |l| l.saturating_duration_since(t0).as_secs_f64());
    let mut first = Latencies::default();
    for r in received {
        if let Some(f) = r.first {
            first.record(f.saturating_duration_since(t0));
        }
    }
    FanoutFigures {
        expected,
        delivered,
        lost: expected.saturating_sub(delivered),
        elapsed_s: elapsed,
        delivered_per_s: if elapsed > 0.0 { delivered as f64 / elapsed } else { 0.0 },
        first_ms_min: if first.is_empty() { 0.0 } else { f64::from(first.percentile(0.0)) / 1000.0 },
        first_ms_p50: f64::from(first.percentile(50.0)) / 1000.0,
        first_ms_max: f64::from(first.percentile(100.0)) / 1000.0,
    }
}

/// The figures of a fan-out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct FanoutFigures {
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) elapsed_s: f64,
    pub(crate) delivered_per_s: f64,
    pub(crate) first_ms_min: f64,
    pub(crate) first_ms_p50: f64,
    pub(crate) first_ms_max: f64,
}

/// Runs the scenario.
///
/// # Errors
/// When the clients cannot connect.
pub async fn run(target: &Target, cfg: Fanout) -> io::Result<Value> {
    let (n, was_capped) = capped(cfg.clients);
    let bench_before = stats::sample_self();
    let (clients, _, _) = connect_many(target, n).await?;
    let n = clients.len();
    let expected = cfg.messages as u64;
    let total = Arc::new(AtomicU64::new(0));
    let (go_tx, go_rx) = watch::channel(None::<Instant>);
    let payload = proto::payload_string(cfg.payload);
    let command = {
        let mut out = Vec::new();
        proto::event(&mut out, "burst", &format!("{{\"n\":{},\"payload\":{payload}}}", cfg.messages), None);
        out
    };

    let mut tasks = Vec::with_capacity(n);
    for (i, mut client) in clients.into_iter().enumerate() {
        let total = total.clone();
        let mut go = go_rx.clone();
        let sender = (i == 0).then(|| (command.clone(), go_tx.clone()));
        let timeout = cfg.timeout;
        tasks.push(tokio::spawn(async move {
            let mut r = Received::default();
            if let Some((cmd, go_tx)) = sender {
                // wait until every receiver is reading, then send the command
                let _ = go.changed().await;
                client.queue_text(&cmd);
                let t0 = Instant::now();
                client.flush().await?;
                let _ = go_tx.send(Some(t0));
            }
            let res = tokio::time::timeout(
                timeout,
                client.run(|frame, _out| {
                    if let Incoming::Event { name: b"msg", .. } = proto::classify(frame) {
                        let now = Instant::now();
                        r.count += 1;
                        total.fetch_add(1, Ordering::Relaxed);
                        r.first.get_or_insert(now);
                        r.last = Some(now);
                        if r.count >= expected {
                            return ControlFlow::Break(());
                        }
                    }
                    ControlFlow::Continue(())
                }),
            )
            .await;
            if let Ok(Err(e)) = res {
                eprintln!("  client error: {e}");
            }
            Ok::<_, io::Error>((r, client))
        }));
    }
    // let the tasks reach their read loop
    tokio::time::sleep(Duration::from_millis(200)).await;
    let server_before = target.server_sample();
    let _ = go_tx.send(None);
    let progress = target.progress.then(|| spawn_progress("delivered", total.clone(), expected * n as u64));
    let mut received = Vec::with_capacity(n);
    let mut to_close = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(Ok((r, c))) = t.await {
            received.push(r);
            to_close.push(c);
        } else {
            received.push(Received::default());
        }
    }
    let server_after = target.server_sample();
    if let Some(p) = progress {
        p.abort();
    }
    let t0 = go_rx.borrow().unwrap_or_else(Instant::now);
    let f = account(&received, expected, t0);
    close_all(to_close).await;

    let mut m = base_report(target, "fanout", n, was_capped, server_before, server_after, bench_before);
    m.insert("messages".into(), json!(cfg.messages));
    m.insert("payload_bytes".into(), json!(cfg.payload));
    m.insert("expected".into(), json!(f.expected));
    m.insert("delivered".into(), json!(f.delivered));
    m.insert("lost".into(), json!(f.lost));
    m.insert("elapsed_s".into(), json!(round3(f.elapsed_s)));
    m.insert("delivered_per_s".into(), json!(f.delivered_per_s.round()));
    m.insert("first_msg_ms_min".into(), json!(round3(f.first_ms_min)));
    m.insert("first_msg_ms_p50".into(), json!(round3(f.first_ms_p50)));
    m.insert("first_msg_ms_max".into(), json!(round3(f.first_ms_max)));
    if let (Some(b), Some(a)) = (server_before, server_after)
        && f.delivered > 0
    {
        m.insert("server_cpu_us_per_msg".into(), json!(round3((a.cpu_s - b.cpu_s) * 1e6 / f.delivered as f64)));
    }
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting() {
        let t0 = Instant::now();
        let at = |ms| Some(t0 + Duration::from_millis(ms));
        let received = [
            Received { count: 100, first: at(2), last: at(50) },
            Received { count: 100, first: at(4), last: at(100) },
            Received { count: 90, first: at(6), last: at(80) },
            Received { count: 0, first: None, last: None },
        ];
        let f = account(&received, 100, t0);
        assert_eq!(f.expected, 400);
        assert_eq!(f.delivered, 290);
        assert_eq!(f.lost, 110);
        assert!((f.elapsed_s - 0.1).abs() < 1e-9);
        assert!((f.delivered_per_s - 2900.0).abs() < 1e-6);
        assert!((f.first_ms_min - 2.0).abs() < 1e-9);
        assert!((f.first_ms_p50 - 4.0).abs() < 1e-9);
        assert!((f.first_ms_max - 6.0).abs() < 1e-9);
    }

    #[test]
    fn accounting_with_nothing_received() {
        let f = account(&[Received::default()], 10, Instant::now());
        assert_eq!((f.delivered, f.lost, f.delivered_per_s), (0, 10, 0.0));
    }
}
