//! Echo: each client sends `echo` with an ack and waits for it before sending the next
//! (closed loop); latency from send to ack.

use std::io;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Target, base_report, capped, close_all, connect_many, round3, spawn_progress};
use crate::proto::{self, Incoming};
use crate::stats::{self, Latencies};

/// Settings of an echo run.
#[derive(Debug, Clone, Copy)]
pub struct Echo {
    /// Clients, each in a closed loop.
    pub clients: usize,
    /// Measured duration.
    pub duration: Duration,
    /// Warm-up before measuring.
    pub warmup: Duration,
    /// Payload size in bytes.
    pub payload: usize,
}

/// Runs the scenario.
///
/// # Errors
/// When the clients cannot connect.
pub async fn run(target: &Target, cfg: Echo) -> io::Result<Value> {
    let (n, was_capped) = capped(cfg.clients);
    let bench_before = stats::sample_self();
    let (clients, _, _) = connect_many(target, n).await?;
    let n = clients.len();
    let payload = proto::payload_string(cfg.payload);
    let start = Instant::now() + Duration::from_millis(100);
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let acks = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::with_capacity(n);
    for mut client in clients {
        let payload = payload.clone();
        let acks = acks.clone();
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(start.into()).await;
            let mut lat = Latencies::default();
            let mut id = 0u64;
            let mut buf = Vec::with_capacity(payload.len() + 32);
            proto::event(&mut buf, "echo", &payload, Some(id));
            client.queue_text(&buf);
            let mut sent_at = Instant::now();
            let res = tokio::time::timeout(
                end.saturating_duration_since(Instant::now()) + Duration::from_secs(10),
                client.run(|frame, out| {
                    if let Incoming::Ack { id: got, .. } = proto::classify(frame) {
                        if got != id {
                            return ControlFlow::Continue(());
                        }
                        let now = Instant::now();
                        if now >= measure_from && now < end {
                            lat.record(now - sent_at);
                            acks.fetch_add(1, Ordering::Relaxed);
                        }
                        if now >= end {
                            return ControlFlow::Break(());
                        }
                        id += 1;
                        proto::event(&mut buf, "echo", &payload, Some(id));
                        out.send(&buf);
                        sent_at = Instant::now();
                    }
                    ControlFlow::Continue(())
                }),
            )
            .await;
            if let Ok(Err(e)) = res {
                eprintln!("  client error: {e}");
            }
            (lat, client)
        }));
    }
    tokio::time::sleep_until(measure_from.into()).await;
    let server_before = target.server_sample();
    let progress = target.progress.then(|| spawn_progress("acks", acks.clone(), 0));
    tokio::time::sleep_until(end.into()).await;
    let server_after = target.server_sample();
    let mut all = Latencies::default();
    let mut to_close = Vec::with_capacity(n);
    for t in tasks {
        if let Ok((l, c)) = t.await {
            all.merge(l);
            to_close.push(c);
        }
    }
    if let Some(p) = progress {
        p.abort();
    }
    close_all(to_close).await;
    let count = all.len();
    let secs = cfg.duration.as_secs_f64();
    let mut m = base_report(target, "echo", n, was_capped, server_before, server_after, bench_before);
    m.insert("payload_bytes".into(), json!(cfg.payload));
    m.insert("duration_s".into(), json!(secs));
    m.insert("acks".into(), json!(count));
    m.insert("acks_per_s".into(), json!((count as f64 / secs).round()));
    m.insert("p50_us".into(), json!(all.percentile(50.0)));
    m.insert("p99_us".into(), json!(all.percentile(99.0)));
    m.insert("p999_us".into(), json!(all.percentile(99.9)));
    m.insert("max_us".into(), json!(all.percentile(100.0)));
    if let (Some(b), Some(a)) = (server_before, server_after)
        && count > 0
    {
        m.insert("server_cpu_us_per_ack".into(), json!(round3((a.cpu_s - b.cpu_s) * 1e6 / count as f64)));
    }
    Ok(Value::Object(m))
}
