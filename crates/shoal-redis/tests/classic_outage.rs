//! Loss of Redis under steady traffic: node A emits a numbered `tick` every 10 ms to every
//! client; one raw client listens on A, one on B. Redis is killed (SIGKILL) and restarted
//! on the same port. Checked and measured:
//! - local delivery on A never stops;
//! - while Redis is down, `emit` returns `AdapterError::Unavailable` (the packet was still
//!   delivered locally) and `Driver::stats().publish_errors` grows;
//! - requests (fetch sockets) during the outage fail within `requests_timeout`;
//! - after the restart, ticks reach B again within a few seconds, and from the first one
//!   that does, none is lost;
//! - what B lost during the outage (reported on stderr: run with `--nocapture`).
//!
//! Needs `redis-server` (`scripts/deps`).

#[path = "classic_support.rs"]
mod support;

use std::collections::BTreeSet;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal::SendError;
use shoal_bench::conn::WsClient;
use shoal_redis::{AdapterError, RedisAdapterConfig};
use shoal_testkit::RedisServer;
use support::{ShoalNode, T};

/// Ticks a client received: `(n, when)`.
type Received = Arc<Mutex<Vec<(u64, Instant)>>>;

/// What `emit` returned for each tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Ok,
    Unavailable,
    OtherError,
}

/// Ticks sent: `(n, when, what emit returned)`.
type SentLog = Arc<Mutex<Vec<(u64, Instant, Sent)>>>;

/// The sender: a tick every 10 ms from `node` to every client, what emit returned for each.
fn start_sender(node: &ShoalNode) -> (SentLog, Arc<AtomicBool>, tokio::task::JoinHandle<()>) {
    let sent: SentLog = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let (io, log, flag) = (node.io.clone(), sent.clone(), stop.clone());
    let task = tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_millis(10));
        let mut n = 0u64;
        while !flag.load(Ordering::Acquire) {
            every.tick().await;
            let r = match io.of("/").emit("tick", &n) {
                Ok(()) => Sent::Ok,
                Err(SendError::Adapter(AdapterError::Unavailable(_))) => Sent::Unavailable,
                Err(_) => Sent::OtherError,
            };
            log.lock().unwrap().push((n, Instant::now(), r));
            n += 1;
        }
    });
    (sent, stop, task)
}

/// Connects a raw client to `/` and records every `tick` it receives, in a task.
async fn listener(node: &ShoalNode, seed: u64) -> Received {
    let mut c = WsClient::connect_socketio(node.addr, None, seed).await.unwrap();
    let got: Received = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        let _ = c
            .run(move |frame, out| {
                if let Some(rest) = frame.strip_prefix(b"42[\"tick\",")
                    && let Some(num) = rest.strip_suffix(b"]")
                    && let Some(n) = std::str::from_utf8(num).ok().and_then(|s| s.parse().ok())
                {
                    g.lock().unwrap().push((n, Instant::now()));
                } else if let Some(rest) = frame.strip_prefix(b"42")
                    && let Some(end) = rest.iter().position(|b| !b.is_ascii_digit())
                    && end > 0
                {
                    // an event asking for an ack: answer it
                    let mut ack = b"43".to_vec();
                    ack.extend_from_slice(&rest[..end]);
                    ack.extend_from_slice(b"[\"ok\"]");
                    out.send(&ack);
                }
                ControlFlow::Continue(())
            })
            .await;
    });
    got
}

fn numbers(r: &Received) -> BTreeSet<u64> {
    r.lock().unwrap().iter().map(|(n, _)| *n).collect()
}

async fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Instant {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Instant::now();
        }
        assert!(Instant::now() < deadline, "not within {timeout:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_and_recovery_under_steady_traffic() {
    let started = Instant::now();
    let requests_timeout = Duration::from_secs(2);
    let mut redis = RedisServer::start().await;
    let config = || RedisAdapterConfig::new(redis.url()).requests_timeout(requests_timeout);
    let a = ShoalNode::start_with("A", config(), &[], |b| b).await;
    let b = ShoalNode::start_with("B", config(), &[], |b| b).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let on_a = listener(&a, 1).await;
    let on_b = listener(&b, 2).await;
    support::wait_until("clients connected", || a.io.of("/").socket_count() == 1 && b.io.of("/").socket_count() == 1)
        .await;

    let (sent, stop, sender) = start_sender(&a);
    wait_for("B receives steady traffic", T, || numbers(&on_b).len() >= 20).await;

    // --- Redis goes away
    let errors_before = a.factory.driver().stats().publish_errors.load(Ordering::Relaxed);
    let last_before_kill = sent.lock().unwrap().last().unwrap().0;
    let t_kill = Instant::now();
    redis.kill();
    let t_first_err =
        wait_for("emit reports the outage", T, || sent.lock().unwrap().iter().any(|(_, _, r)| *r == Sent::Unavailable))
            .await;
    let first_err_n = sent.lock().unwrap().iter().find(|(_, _, r)| *r == Sent::Unavailable).unwrap().0;
    wait_for("publish_errors grows", T, || {
        a.factory.driver().stats().publish_errors.load(Ordering::Relaxed) > errors_before + 5
    })
    .await;

    // requests during the outage end (their durations are reported; see
    // `requests_during_an_outage_end_within_requests_timeout` for the bound)
    let requests = requests_during_outage(&a).await;
    let outage_min = Duration::from_millis(1500);
    let left = outage_min.saturating_sub(t_first_err.elapsed());
    tokio::time::sleep(left).await; // the outage itself lasts a while, on purpose

    // --- Redis comes back (same port, empty)
    let before_restart = sent.lock().unwrap().last().unwrap().0;
    redis.restart().await;
    let t_restart = Instant::now();
    let restart_n = sent.lock().unwrap().last().unwrap().0;
    let t_recovered = wait_for("ticks reach B again", Duration::from_secs(20), || {
        on_b.lock().unwrap().iter().any(|(n, _)| *n > restart_n)
    })
    .await;
    let first_after = on_b.lock().unwrap().iter().map(|(n, _)| *n).filter(|n| *n > before_restart).min().unwrap();
    let t_publisher_ok =
        sent.lock().unwrap().iter().filter(|(n, _, r)| *n > first_err_n && *r == Sent::Ok).map(|(_, t, _)| *t).next();
    // a further second of traffic, then stop and let the last ticks arrive
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Release);
    sender.await.unwrap();
    let sent = sent.lock().unwrap().clone();
    let last = sent.last().unwrap().0;
    wait_for("B receives the last tick", T, || numbers(&on_b).contains(&last)).await;
    wait_for("A's client receives the last tick", T, || numbers(&on_a).contains(&last)).await;

    // --- what happened
    let got_a = numbers(&on_a);
    let got_b = numbers(&on_b);
    let all: BTreeSet<u64> = sent.iter().map(|(n, _, _)| *n).collect();
    let lost_a: Vec<u64> = all.difference(&got_a).copied().collect();
    let lost_b: Vec<u64> = all.difference(&got_b).copied().collect();
    let unavailable: Vec<u64> = sent.iter().filter(|(_, _, r)| *r == Sent::Unavailable).map(|(n, _, _)| *n).collect();
    let other: Vec<u64> = sent.iter().filter(|(_, _, r)| *r == Sent::OtherError).map(|(n, _, _)| *n).collect();
    let silent: Vec<u64> = lost_b.iter().copied().filter(|n| !unavailable.contains(n)).collect();
    // ticks emitted after the kill but before the outage was noticed (emit said Ok)
    let window: Vec<(u64, Duration)> = on_b
        .lock()
        .unwrap()
        .iter()
        .filter(|(n, _)| *n > last_before_kill && *n < first_err_n)
        .map(|(n, t)| (*n, t.saturating_duration_since(t_restart)))
        .collect();
    let stats = a.factory.driver().stats();
    let stats_b = b.factory.driver().stats();
    eprintln!("outage report:");
    eprintln!("  ticks sent: {} ({} before the kill), every 10 ms", all.len(), last_before_kill + 1);
    eprintln!("  first Unavailable: tick {first_err_n}, {:?} after the kill", t_first_err - t_kill);
    eprintln!("  emit results: {} Unavailable, {} other errors", unavailable.len(), other.len());
    eprintln!("  requests during the outage (what, result, duration): {requests:?}");
    eprintln!("  Redis down for {:?} (kill to ready)", t_restart - t_kill);
    eprintln!("  publisher accepting again {:?} after the restart", t_publisher_ok.map(|t| t - t_restart));
    eprintln!("  B receives again {:?} after the restart (first tick {first_after})", t_recovered - t_restart);
    eprintln!(
        "  lost on B: {} ticks ({} with Unavailable, {} silently: emit said Ok) {}",
        lost_b.len(),
        lost_b.len() - silent.len(),
        silent.len(),
        ranges(&lost_b)
    );
    eprintln!("  silent losses: {silent:?}");
    eprintln!("  accepted between the kill and its detection, received by B (tick, after the restart): {window:?}");
    eprintln!("  lost on A (local): {lost_a:?}");
    eprintln!(
        "  A: published {}, publish_errors {}, reconnects {}; B: reconnects {}",
        stats.published.load(Ordering::Relaxed),
        stats.publish_errors.load(Ordering::Relaxed),
        stats.reconnects.load(Ordering::Relaxed),
        stats_b.reconnects.load(Ordering::Relaxed)
    );
    eprintln!("  total test time {:?}", started.elapsed());

    assert!(lost_a.is_empty(), "local delivery on A never stops: lost {lost_a:?}");
    assert!(other.is_empty(), "emit errors other than Unavailable: {other:?}");
    assert!(!unavailable.is_empty(), "emit reports Unavailable while Redis is down");
    assert!(t_first_err - t_kill < Duration::from_secs(3), "the outage is noticed within 3 s");
    assert!(lost_b.iter().all(|n| *n > last_before_kill), "nothing sent before the kill is lost: {lost_b:?}");
    assert!(
        got_b.range(first_after..).count() as u64 == last - first_after + 1,
        "nothing is lost on B once ticks flow again (from tick {first_after})"
    );
    assert!(t_recovered - t_restart < Duration::from_secs(6), "B receives again within a few seconds");
    wait_for("both subscribers report their reconnection", Duration::from_secs(5), || {
        stats.reconnects.load(Ordering::Relaxed) >= 1 && stats_b.reconnects.load(Ordering::Relaxed) >= 1
    })
    .await;
    for (what, result, took) in &requests {
        assert!(*took < Duration::from_secs(15), "{what} during the outage did not end: {result}");
    }
    assert!(requests[0].1.starts_with("Err"), "fetch_sockets fails during the outage: {requests:?}");
    // after the recovery, the cluster works as before: requests too, once both of A's
    // connections are back and its subscriptions restored (within a few seconds)
    let recovered = Instant::now();
    loop {
        let count = a.io.of("/").server_count().await;
        let fetched = a.io.of("/").fetch_sockets().await.map(|s| s.len());
        if matches!((&count, &fetched), (Ok(2), Ok(2))) {
            break;
        }
        assert!(recovered.elapsed() < Duration::from_secs(5), "requests work again: {count:?} {fetched:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `[1, 2, 3, 7]` as `1..=3, 7`.
fn ranges(v: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        out.push(if j > i { format!("{}..={}", v[i], v[j]) } else { v[i].to_string() });
        i = j + 1;
    }
    format!("[{}]", out.join(", "))
}

/// Runs every kind of request at once on `node` (Redis being down): `(what, result, how
/// long it took)`, each bounded by 15 s.
async fn requests_during_outage(node: &ShoalNode) -> Vec<(&'static str, String, Duration)> {
    async fn timed<T: std::fmt::Debug, E: std::fmt::Display>(
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, E>>,
    ) -> (&'static str, String, Duration) {
        let t0 = Instant::now();
        let r = match tokio::time::timeout(Duration::from_secs(15), f).await {
            Ok(Ok(v)) => format!("Ok({v:?})"),
            Ok(Err(e)) => format!("Err({e})"),
            Err(_) => "did not end within 15 s".to_owned(),
        };
        (what, r, t0.elapsed())
    }
    let ns = node.io.of("/");
    let (fetch, count, rooms, acks, sse) = tokio::join!(
        timed("fetch_sockets", async { ns.fetch_sockets().await.map(|v| v.len()) }),
        timed("server_count", ns.server_count()),
        timed("all_rooms", async { ns.all_rooms().await.map(|v| v.len()) }),
        timed("emit_with_ack (local client answers)", async {
            ns.timeout(Duration::from_secs(1)).emit_with_ack("ask", &1).await.map(|v| v.len())
        }),
        timed("server_side_emit_with_ack", async {
            ns.server_side_emit_with_ack("sse-ack", &1, Duration::from_secs(1)).await.map(|v| v.len())
        }),
    );
    vec![fetch, count, rooms, acks, sse]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_during_an_outage_end_within_requests_timeout() {
    let requests_timeout = Duration::from_secs(1);
    let mut redis = RedisServer::start().await;
    let config = || RedisAdapterConfig::new(redis.url()).requests_timeout(requests_timeout);
    let a = ShoalNode::start_with("A", config(), &[], |b| b).await;
    let b = ShoalNode::start_with("B", config(), &[], |b| b).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let _on_a = listener(&a, 1).await;
    support::wait_until("client connected", || a.io.of("/").socket_count() == 1).await;
    redis.kill();
    wait_for("A notices the outage", T, || a.io.emit("probe", &0).is_err()).await;
    let requests = requests_during_outage(&a).await;
    eprintln!("requests during the outage: {requests:#?}");
    for (what, result, took) in &requests {
        // emit_with_ack waits for its own ack timeout (1 s) at most
        assert!(
            *took <= requests_timeout + Duration::from_millis(500),
            "{what} took {took:?} ({result}), more than requests_timeout ({requests_timeout:?})"
        );
    }
    assert_eq!(requests[3].1, "Ok(1)", "emit_with_ack still collects the local answer");
}

/// What `emit` accepted (`Ok`) is delivered promptly or not at all: an outage must not turn
/// into a late replay of old broadcasts.
///
/// Known limitation (documented in docs/redis.md): publishes accepted in the ~150 ms
/// before the client notices the connection is gone are sometimes written again by the
/// `fred` client after the reconnection (seconds late), although the publisher asks for a
/// single attempt and fail-fast; in other runs they are lost. Fixing it needs a publisher
/// connection of our own (or a change in `fred`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "known limitation: fred may re-send publishes accepted just before an outage is noticed (docs/redis.md)"]
async fn accepted_broadcasts_are_not_replayed_late() {
    let mut redis = RedisServer::start().await;
    let a = ShoalNode::start("A", &redis.url(), &[]).await;
    let b = ShoalNode::start("B", &redis.url(), &[]).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    let on_b = listener(&b, 2).await;
    support::wait_until("client connected", || b.io.of("/").socket_count() == 1).await;
    let (sent, stop, sender) = start_sender(&a);
    wait_for("B receives steady traffic", T, || numbers(&on_b).len() >= 10).await;
    redis.kill();
    wait_for("emit reports the outage", T, || sent.lock().unwrap().iter().any(|(_, _, r)| *r == Sent::Unavailable))
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await; // the outage lasts a while, on purpose
    redis.restart().await;
    let restart_n = sent.lock().unwrap().last().unwrap().0;
    wait_for("ticks reach B again", Duration::from_secs(20), || numbers(&on_b).iter().any(|n| *n > restart_n)).await;
    stop.store(true, Ordering::Release);
    sender.await.unwrap();
    let sent = sent.lock().unwrap().clone();
    let late: Vec<(u64, Duration)> = on_b
        .lock()
        .unwrap()
        .iter()
        .map(|(n, at)| (*n, at.saturating_duration_since(sent[*n as usize].1)))
        .filter(|(_, latency)| *latency > Duration::from_secs(1))
        .collect();
    let first_err = sent.iter().find(|(_, _, r)| *r == Sent::Unavailable).unwrap().0;
    let got = numbers(&on_b);
    let window: Vec<(u64, bool)> = sent
        .iter()
        .filter(|(n, _, r)| *r == Sent::Ok && *n < first_err)
        .map(|(n, _, _)| (*n, got.contains(n)))
        .collect();
    eprintln!("accepted before the outage was noticed (tick, received): {window:?}");
    assert!(late.is_empty(), "ticks delivered more than 1 s after emit accepted them: {late:?}");
}

/// Namespaces created or removed while Redis is down: once Redis is back, a namespace
/// created meanwhile is subscribed (other nodes count it), and one removed meanwhile is not
/// subscribed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaces_created_or_removed_during_an_outage() {
    let mut redis = RedisServer::start().await;
    let mut config = RedisAdapterConfig::new(redis.url());
    config.connection.command_timeout = Duration::from_millis(500);
    let a = ShoalNode::start_with("A", config, &[], |b| b.cleanup_empty_child_namespaces(true)).await;
    a.io.of_dynamic(shoal::NamespaceMatcher::Pattern("/dyn-*".into())).on_connect(|_s: shoal::Socket| async move {});
    let b = ShoalNode::start("B", &redis.url(), &[]).await;
    support::wait_server_counts(&[&a, &b], "/", 2).await;
    // a dynamic child with one client, subscribed
    let stream = shoal_bench::conn::tcp_connect(a.addr, None).await.unwrap();
    let mut c =
        WsClient::handshake(stream, &a.addr.to_string(), "/socket.io/?EIO=4&transport=websocket", 7).await.unwrap();
    assert!(c.next_text().await.unwrap().starts_with(b"0{"));
    c.queue_text(b"40/dyn-gone,");
    c.flush().await.unwrap();
    assert!(c.next_text().await.unwrap().starts_with(b"40/dyn-gone,{"));
    support::wait_until("dyn-gone has its socket", || a.io.namespaces().iter().any(|n| n.name() == "/dyn-gone")).await;
    let deadline = Instant::now() + T;
    while redis.numsub("socket.io-request#/dyn-gone#").await != 1 {
        assert!(Instant::now() < deadline, "/dyn-gone not subscribed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    redis.kill();
    wait_for("A notices the outage", T, || a.io.emit("probe", &0).is_err()).await;
    // created during the outage
    let during = a.setup_ns("/during");
    // removed during the outage (its last socket leaves)
    c.close().await;
    support::wait_until("dyn-gone removed", || a.io.namespaces().iter().all(|n| n.name() != "/dyn-gone")).await;
    // longer than the command timeout: the (un)subscriptions fail, they are not just queued
    tokio::time::sleep(Duration::from_millis(1500)).await;
    redis.restart().await;
    wait_for("A reconnects", T, || a.factory.driver().stats().reconnects.load(Ordering::Relaxed) >= 1).await;
    b.wait_server_count("/", 2).await;

    let deadline = Instant::now() + T;
    loop {
        let (during_subs, gone_subs) =
            (redis.numsub("socket.io-request#/during#").await, redis.numsub("socket.io-request#/dyn-gone#").await);
        if during_subs == 1 && gone_subs == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "10 s after the reconnection: /during has {during_subs} request subscriber(s) (expected 1), /dyn-gone \
             has {gone_subs} (expected 0); channels: {:?}",
            redis.channels("*").await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // the publisher connection may come back a moment after the subscriber
    let back = Instant::now();
    while during.server_count().await.ok() != Some(1) {
        assert!(back.elapsed() < Duration::from_secs(5), "the server count of /during is 1 again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // B serving /during too counts A
    b.setup_ns("/during");
    b.wait_server_count("/during", 2).await;
}
