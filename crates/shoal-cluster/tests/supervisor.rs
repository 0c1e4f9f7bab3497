//! The primary's supervision with stand-in worker programs (`/bin/sh` scripts): a
//! worker that crashes at start is restarted with a growing delay, not in a busy loop;
//! a worker that never registers is killed after the start timeout; on shutdown a
//! worker that ignores its closed stdin is killed after the grace period and `run`
//! returns.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use shoal_cluster::{Cluster, ClusterBuilder, ClusterError, WorkerContext};

fn temp_file(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let p = std::env::temp_dir().join(format!("shoal-cluster-{tag}-{}-{nanos}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

/// Start times (ns since the epoch) the script appended to `file`.
fn starts(file: &PathBuf) -> Vec<u128> {
    std::fs::read_to_string(file).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

async fn never(_ctx: WorkerContext) -> Result<(), String> {
    unreachable!("this process is the primary")
}

/// A primary running in the background until [`Running::stop`].
struct Running {
    stop_tx: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<Result<(), ClusterError>>,
}

impl Running {
    /// Tells the primary to stop; `run` must return within 20 s, and cleanly.
    async fn stop(self) {
        let _ = self.stop_tx.send(());
        tokio::time::timeout(Duration::from_secs(20), self.run)
            .await
            .expect("run returns")
            .unwrap()
            .expect("clean stop");
    }
}

/// Starts a primary on 127.0.0.1, any port, with one worker that runs `/bin/sh -c
/// script`; `tune` adds settings to the builder.
fn run_sh(script: &str, tune: impl FnOnce(ClusterBuilder) -> ClusterBuilder) -> Running {
    let builder = Cluster::builder().workers(1).host("127.0.0.1").port(0).program("/bin/sh").args(["-c", script]);
    let cluster = tune(builder).build().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(cluster.run_until(never, async move {
        let _ = stop_rx.await;
    }));
    Running { stop_tx, run }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_crashing_at_start_is_restarted_with_backoff() {
    let file = temp_file("crash");
    let script = format!("date +%s%N >> {}; exit 3", file.display());
    let running = run_sh(&script, |b| b);
    // 100 + 200 + 400 + 800 + 1600 ms: about 6 starts in 3.5 s; a busy loop would be
    // hundreds
    tokio::time::sleep(Duration::from_millis(3500)).await;
    running.stop().await;
    let t = starts(&file);
    let _ = std::fs::remove_file(&file);
    assert!(t.len() >= 3, "the worker was restarted: {} starts", t.len());
    assert!(t.len() <= 8, "not a busy loop: {} starts in 3.5 s", t.len());
    // each delay at least the backoff's (100 ms doubling)
    for (k, w) in t.windows(2).enumerate() {
        let gap = Duration::from_nanos((w[1] - w[0]) as u64);
        let min = Duration::from_millis(100 << k);
        assert!(gap >= min, "restart {k} came after {gap:?}, before the backoff of {min:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_never_registers_is_killed_and_one_that_ignores_stop_too() {
    let file = temp_file("silent");
    // starts, records it, and ignores everything (stdin included) for a minute
    let script = format!("date +%s%N >> {}; trap '' TERM INT; exec sleep 60", file.display());
    let running =
        run_sh(&script, |b| b.start_timeout(Duration::from_millis(700)).stop_grace(Duration::from_millis(500)));
    // killed after 0.7 s, restarted 0.1 s later: a second start
    let deadline = Instant::now() + Duration::from_secs(20);
    while starts(&file).len() < 2 {
        assert!(Instant::now() < deadline, "the silent worker was not killed and restarted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // on stop it ignores its stdin: killed after the grace, and run returns
    running.stop().await;
    let _ = std::fs::remove_file(&file);
}

#[tokio::test]
async fn invalid_settings_are_refused() {
    assert!(Cluster::builder().workers(0).build().is_err());
    assert!(
        Cluster::builder().restart_min(Duration::from_secs(5)).restart_max(Duration::from_secs(1)).build().is_err()
    );
    assert!(Cluster::builder().host("").build().is_err());
}
