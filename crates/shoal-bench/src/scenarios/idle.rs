//! Idle: connect many clients, then measure the server's memory per client and the
//! connect rate.

use std::io;
use std::ops::ControlFlow;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Target, base_report, capped, close_all, connect_many, round3};
use crate::stats;

/// Settings of an idle run.
#[derive(Debug, Clone, Copy)]
pub struct Idle {
    /// Clients to connect.
    pub clients: usize,
    /// How long to hold them before measuring memory.
    pub settle: Duration,
}

/// Runs the scenario.
///
/// # Errors
/// When the clients cannot connect.
pub async fn run(target: &Target, cfg: Idle) -> io::Result<Value> {
    let (n, was_capped) = capped(cfg.clients);
    let bench_before = stats::sample_self();
    let before = target.server_sample();
    let (clients, connect_time, failures) = connect_many(target, n).await?;
    let n = clients.len();
    // keep answering pings while idle
    let tasks: Vec<_> = clients
        .into_iter()
        .map(|mut c| {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(cfg.settle, c.run(|_, _| ControlFlow::Continue(()))).await;
                c
            })
        })
        .collect();
    tokio::time::sleep(cfg.settle).await;
    let after = target.server_sample();
    let mut to_close = Vec::with_capacity(n);
    for t in tasks {
        if let Ok(c) = t.await {
            to_close.push(c);
        }
    }
    close_all(to_close).await;
    let mut m = base_report(target, "idle", n, was_capped, before, after, bench_before);
    m.insert("connect_failures".into(), json!(failures));
    m.insert("connect_s".into(), json!(round3(connect_time.as_secs_f64())));
    m.insert("connects_per_s".into(), json!((n as f64 / connect_time.as_secs_f64()).round()));
    if let (Some(b), Some(a)) = (before, after) {
        m.insert("server_rss_before_kib".into(), json!(b.rss_kib));
        let per = (a.rss_kib as f64 - b.rss_kib as f64) * 1024.0 / n.max(1) as f64;
        m.insert("rss_per_client_bytes".into(), json!(per.round()));
    }
    Ok(Value::Object(m))
}
