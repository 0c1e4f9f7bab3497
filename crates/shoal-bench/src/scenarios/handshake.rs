//! Handshake storm: sessions opened as a browser does (polling handshake, upgrade to
//! WebSocket, namespace CONNECT) by `concurrency` loops, for a fixed time.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Target, base_report, round3, spawn_progress};
use crate::conn;
use crate::stats;

/// Settings of a handshake storm.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// Loops running at once.
    pub concurrency: usize,
    /// How long to run.
    pub duration: Duration,
}

/// Runs the scenario.
///
/// # Errors
/// Never (failures are counted).
pub async fn run(target: &Target, cfg: Handshake) -> io::Result<Value> {
    let bench_before = stats::sample_self();
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let server_before = target.server_sample();
    let start = Instant::now();
    let end = start + cfg.duration;
    let progress = target.progress.then(|| spawn_progress("sessions", ok.clone(), 0));
    let mut tasks = Vec::new();
    for w in 0..cfg.concurrency {
        let target = target.clone();
        let (ok, failed, first_error) = (ok.clone(), failed.clone(), first_error.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while Instant::now() < end {
                i += 1;
                let source =
                    (!target.sources.is_empty()).then(|| target.sources[(w + i as usize) % target.sources.len()]);
                let r = tokio::time::timeout(
                    Duration::from_secs(10),
                    conn::polling_then_upgrade(target.server, source, (w as u64) << 32 | i),
                )
                .await;
                match r {
                    Ok(Ok(ws)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        ws.close().await;
                    }
                    Ok(Err(e)) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                        first_error.lock().map(|mut f| f.get_or_insert(e.to_string()).clone()).ok();
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let server_after = target.server_sample();
    if let Some(p) = progress {
        p.abort();
    }
    let sessions = ok.load(Ordering::Relaxed);
    let mut m = base_report(target, "handshake", cfg.concurrency, false, server_before, server_after, bench_before);
    m.insert("duration_s".into(), json!(round3(elapsed)));
    m.insert("sessions".into(), json!(sessions));
    m.insert("failures".into(), json!(failed.load(Ordering::Relaxed)));
    if let Some(e) = first_error.lock().ok().and_then(|f| f.clone()) {
        m.insert("first_error".into(), json!(e));
    }
    m.insert("sessions_per_s".into(), json!((sessions as f64 / elapsed).round()));
    if let (Some(b), Some(a)) = (server_before, server_after)
        && sessions > 0
    {
        m.insert("server_cpu_us_per_session".into(), json!(round3((a.cpu_s - b.cpu_s) * 1e6 / sessions as f64)));
    }
    Ok(Value::Object(m))
}
