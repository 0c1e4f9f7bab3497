//! Active health checks: `GET /health` on every upstream, every interval.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full, Limited};
use shoal_engineio_proto::{NodeId, Sid};
use shoal_proxy::{Forwarding, UpstreamPool};
use tokio::sync::watch;

use crate::config::BalancerConfig;
use crate::upstreams::{CheckOutcome, Upstreams};

/// Largest health (or probe handshake) answer read.
const MAX_BODY: usize = 64 * 1024;

/// Checks every upstream now, all at once, and records the results.
pub(crate) async fn check_all(pool: &Arc<UpstreamPool>, upstreams: &Upstreams, config: &BalancerConfig) {
    let targets = upstreams.to_check();
    let mut tasks = tokio::task::JoinSet::new();
    for (addr, need_id) in targets {
        let pool = pool.clone();
        let config = config.clone();
        tasks.spawn(async move { (addr, check(&pool, addr, need_id, &config).await) });
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok((addr, outcome)) = r {
            upstreams.record_check(addr, &outcome, config.health.rise, config.health.fall);
        }
    }
}

/// Runs the checks every interval (and at once when the set changes) until `stop`.
pub(crate) async fn run(
    pool: Arc<UpstreamPool>,
    upstreams: Upstreams,
    config: BalancerConfig,
    mut stop: watch::Receiver<bool>,
) {
    let interval = config.health.interval;
    if interval.is_zero() {
        return;
    }
    // a deadline, so that frequent changes (membership updates) do not postpone rounds
    let mut next = tokio::time::Instant::now() + interval;
    loop {
        let known = upstreams.addrs();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep_until(next) => next = tokio::time::Instant::now() + interval,
            () = upstreams.changed() => {
                // only a new upstream needs checking before the next round
                if upstreams.addrs().is_subset(&known) {
                    continue;
                }
            }
        }
        for gone in known.difference(&upstreams.addrs()) {
            pool.forget(*gone);
        }
        check_all(&pool, &upstreams, &config).await;
    }
}

/// One check of `addr`: `/health`, then a probe handshake when the id is still unknown.
async fn check(pool: &Arc<UpstreamPool>, addr: SocketAddr, need_id: bool, config: &BalancerConfig) -> CheckOutcome {
    let timeout = config.health.timeout;
    let health = async {
        let (status, body) = get(pool, addr, Method::GET, &config.health.path, None).await?;
        let draining = match status {
            StatusCode::OK => false,
            StatusCode::SERVICE_UNAVAILABLE => true,
            other => return Err(format!("/health answered {other}")),
        };
        let mut node = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("node").and_then(|n| n.as_str()).and_then(|n| n.parse::<NodeId>().ok()));
        if node.is_none() && need_id && !draining {
            node = probe_node(pool, addr, &config.path).await;
        }
        Ok(CheckOutcome::Up { draining, node })
    };
    match tokio::time::timeout(timeout, health).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(why)) => CheckOutcome::Down(why),
        Err(_) => CheckOutcome::Down(format!("no answer within {timeout:?}")),
    }
}

/// Learns a node's id from the sid of a polling handshake, then closes that session.
async fn probe_node(pool: &Arc<UpstreamPool>, addr: SocketAddr, path: &str) -> Option<NodeId> {
    let handshake = format!("{path}?EIO=4&transport=polling");
    let (status, body) = get(pool, addr, Method::GET, &handshake, None).await.ok()?;
    if status != StatusCode::OK {
        return None;
    }
    // `0{"sid":"…",…}` (possibly followed by more packets after a record separator)
    let text = std::str::from_utf8(&body).ok()?;
    let open = text.strip_prefix('0')?.split('\u{1e}').next()?;
    let sid: Sid = serde_json::from_str::<serde_json::Value>(open).ok()?.get("sid")?.as_str()?.parse().ok()?;
    let close = format!("{path}?EIO=4&transport=polling&sid={sid}");
    let _ = get(pool, addr, Method::POST, &close, Some("1")).await;
    Some(sid.node())
}

/// A small request to `addr`; the status and the body (at most [`MAX_BODY`]).
async fn get(
    pool: &Arc<UpstreamPool>,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<&'static str>,
) -> Result<(StatusCode, Bytes), String> {
    let builder = Request::builder().method(method).uri(path).header(HOST, addr.to_string());
    let fwd = Forwarding { client_addr: None, proto: "http" };
    let resp = match body {
        Some(b) => {
            let req = builder
                .header(CONTENT_TYPE, "text/plain;charset=UTF-8")
                .body(Full::new(Bytes::from_static(b.as_bytes())))
                .map_err(|e| e.to_string())?;
            pool.forward(addr, req, &fwd, None).await
        }
        None => {
            let req = builder.body(Empty::<Bytes>::new()).map_err(|e| e.to_string())?;
            pool.forward(addr, req, &fwd, None).await
        }
    }
    .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY).collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, body))
}
