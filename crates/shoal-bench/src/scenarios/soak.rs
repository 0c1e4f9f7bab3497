//! Soak: many clients connected while one of them asks for broadcasts at a steady rate;
//! the server's memory is sampled throughout and must stay flat.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Target, base_report, capped, close_all, connect_many, round3};
use crate::proto::{self, Incoming};
use crate::stats;

/// Settings of a soak run.
#[derive(Debug, Clone, Copy)]
pub struct Soak {
    /// Clients connected.
    pub clients: usize,
    /// Total duration.
    pub duration: Duration,
    /// Broadcasts per second.
    pub rate: u32,
    /// Payload size in bytes.
    pub payload: usize,
    /// Memory sampling interval.
    pub sample_every: Duration,
}

/// Runs the scenario.
///
/// # Errors
/// When the clients cannot connect.
pub async fn run(target: &Target, cfg: Soak) -> io::Result<Value> {
    let (n, was_capped) = capped(cfg.clients);
    let bench_before = stats::sample_self();
    let (mut clients, _, _) = connect_many(target, n).await?;
    let n = clients.len();
    let received = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + cfg.duration;
    let Some(mut sender) = clients.pop() else { return Err(io::Error::other("no client")) };
    let mut tasks = Vec::with_capacity(n);
    for mut c in clients {
        let received = received.clone();
        tasks.push(tokio::spawn(async move {
            let _ = tokio::time::timeout_at(
                end.into(),
                c.run(|f, _| {
                    if let Incoming::Event { name: b"msg", .. } = proto::classify(f) {
                        received.fetch_add(1, Ordering::Relaxed);
                    }
                    ControlFlow::Continue(())
                }),
            )
            .await;
            c
        }));
    }
    let payload = proto::payload_string(cfg.payload);
    let mut cmd = Vec::new();
    proto::event(&mut cmd, "broadcast", &payload, None);
    let period = Duration::from_secs_f64(1.0 / f64::from(cfg.rate.max(1)));
    let sent = Arc::new(AtomicU64::new(0));
    let sent2 = sent.clone();
    let sender_task = tokio::spawn(async move {
        // the sender is in the room too: it keeps reading so it is not a slow consumer
        let _ = tokio::time::timeout_at(
            end.into(),
            sender.run_with_ticks(
                period,
                |out| {
                    out.send(&cmd);
                    sent2.fetch_add(1, Ordering::Relaxed);
                },
                |_, _| ControlFlow::Continue(()),
            ),
        )
        .await;
    });
    let mut samples = Vec::new();
    let server_first = target.server_sample();
    while Instant::now() < end {
        tokio::time::sleep(cfg.sample_every.min(end.saturating_duration_since(Instant::now()))).await;
        if let Some(s) = target.server_sample() {
            let t = start.elapsed().as_secs_f64();
            if target.progress {
                eprintln!("  t={t:.0}s rss={} KiB received={}", s.rss_kib, received.load(Ordering::Relaxed));
            }
            samples.push((t, s.rss_kib));
        }
    }
    let server_last = target.server_sample();
    let _ = sender_task.await;
    let mut to_close = Vec::new();
    for t in tasks {
        if let Ok(c) = t.await {
            to_close.push(c);
        }
    }
    close_all(to_close).await;
    let mut m = base_report(target, "soak", n, was_capped, server_first, server_last, bench_before);
    m.insert("duration_s".into(), json!(cfg.duration.as_secs()));
    m.insert("broadcasts".into(), json!(sent.load(Ordering::Relaxed)));
    m.insert("received".into(), json!(received.load(Ordering::Relaxed)));
    // the reference point is the first sample at or after one minute (or the first one)
    let reference = samples.iter().find(|(t, _)| *t >= 60.0).or(samples.first()).map(|s| s.1);
    if let (Some(r), Some(last)) = (reference, samples.last().map(|s| s.1)) {
        m.insert("rss_ref_kib".into(), json!(r));
        m.insert("rss_end_kib".into(), json!(last));
        m.insert("rss_drift_pct".into(), json!(round3((last as f64 - r as f64) * 100.0 / r.max(1) as f64)));
    }
    m.insert("rss_samples".into(), json!(samples));
    Ok(Value::Object(m))
}
