//! The primary's supervision of its workers: spawn, wait for the registration, put in
//! rotation, restart with backoff when one exits, stop them all on shutdown.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use shoal::NodeId;
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::broker::Registration;
use crate::worker::{ENV_BROKER, ENV_NODE_ID, ENV_TOKEN, ENV_WORKER};

/// Where the primary sends traffic: the balancer's set of upstreams.
pub(crate) trait Rotation: Send + Sync + 'static {
    /// Worker `node` serves on `addr`: route its sids there and give it new sessions.
    fn add(&self, node: NodeId, addr: SocketAddr);
    /// Worker `node` is gone.
    fn remove(&self, node: NodeId);
}

/// Restart backoff settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Backoff {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
    /// A worker that lived this long restarts after `min` again.
    pub(crate) reset_after: Duration,
}

impl Backoff {
    /// The delay before restarting a worker that lived `lived`, given the delay used
    /// last time (`None` for its first exit); returns (this delay, the next base).
    pub(crate) fn delay(&self, last: Option<Duration>, lived: Duration) -> Duration {
        match last {
            None => self.min,
            Some(_) if lived >= self.reset_after => self.min,
            Some(d) => (d * 2).clamp(self.min, self.max),
        }
    }
}

/// Everything needed to start worker processes.
#[derive(Debug)]
pub(crate) struct Spec {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<OsString>,
    pub(crate) broker: SocketAddr,
    pub(crate) token: crate::AuthToken,
    pub(crate) backoff: Backoff,
    pub(crate) start_timeout: Duration,
    pub(crate) stop_grace: Duration,
}

/// The node ids of `n` workers of a primary whose id is `primary`: a hash of the
/// primary's id and the index (24 bits), deduplicated, never the primary's own.
pub(crate) fn worker_ids(primary: NodeId, n: usize) -> Vec<NodeId> {
    let mut out: Vec<NodeId> = Vec::with_capacity(n);
    for i in 0..n {
        // a hash of the primary's id and the index: stable across restarts, and unrelated
        // for primaries whose ids look alike (hosts named web1, web2… share a prefix)
        let mut salt = 0u32;
        let id = loop {
            let id = NodeId::from_name(&format!("{primary}/{i}/{salt}"));
            if id != primary && !out.contains(&id) {
                break id;
            }
            salt += 1;
        };
        out.push(id);
    }
    out
}

/// How a worker's life ended.
enum End {
    Exited(std::io::Result<ExitStatus>),
    Stop,
}

fn spawn(spec: &Spec, index: u32, node: NodeId) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .env(ENV_WORKER, index.to_string())
        .env(ENV_BROKER, spec.broker.to_string())
        .env(ENV_NODE_ID, node.as_str())
        .env(ENV_TOKEN, spec.token.as_str())
        // the pipe's end is the worker's signal to stop (and it sees it if we die)
        .stdin(Stdio::piped())
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        // a terminal's Ctrl-C reaches the primary only, which stops the workers in order
        .process_group(0)
        .kill_on_drop(true);
    cmd.spawn()
}

/// Stops `child`: closes its stdin, waits up to `grace`, then kills it.
async fn stop_child(child: &mut Child, stdin: Option<ChildStdin>, grace: Duration, index: u32) {
    drop(stdin);
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(status) => tracing::info!(index, status = ?status.ok(), "worker stopped"),
        Err(_) => {
            tracing::warn!(index, grace = ?grace, "worker did not stop in time; killing it");
            let _ = child.kill().await;
        }
    }
}

/// Runs worker `index` until `stop` is raised, restarting it whenever it exits.
pub(crate) async fn supervise(
    spec: Arc<Spec>,
    index: u32,
    node: NodeId,
    mut registrations: mpsc::UnboundedReceiver<Registration>,
    rotation: Arc<dyn Rotation>,
    ready: mpsc::UnboundedSender<u32>,
    mut stop: watch::Receiver<bool>,
) {
    let mut last_delay: Option<Duration> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        let started = Instant::now();
        let mut child = match spawn(&spec, index, node) {
            Ok(c) => c,
            Err(e) => {
                let delay = spec.backoff.delay(last_delay, Duration::ZERO);
                last_delay = Some(delay);
                tracing::error!(index, cause = %e, retry_in = ?delay, "cannot start worker");
                tokio::select! {
                    _ = crate::raised(&mut stop) => return,
                    _ = tokio::time::sleep(delay) => continue,
                }
            }
        };
        // held apart: `Child::wait` would close it, and its end tells the worker to stop
        let stdin = child.stdin.take();
        let pid = child.id().unwrap_or(0);
        tracing::info!(index, pid, node = %node, "worker started");
        let mut registered: Option<NodeId> = None;
        let mut listening = true;
        let start_deadline = tokio::time::sleep(spec.start_timeout);
        tokio::pin!(start_deadline);
        let end = loop {
            tokio::select! {
                _ = crate::raised(&mut stop) => break End::Stop,
                status = child.wait() => break End::Exited(status),
                reg = registrations.recv(), if listening => {
                    let Some(reg) = reg else {
                        listening = false;
                        continue;
                    };
                    if reg.pid != pid || registered.is_some() {
                        tracing::debug!(index, pid = reg.pid, "stale worker registration ignored");
                        continue;
                    }
                    if reg.node != node {
                        tracing::warn!(index, expected = %node, got = %reg.node, "worker registered another node id than assigned");
                    }
                    rotation.add(reg.node, reg.addr);
                    registered = Some(reg.node);
                    // tests and scripts read this line
                    tracing::info!(index, pid, node = %reg.node, addr = %reg.addr, "worker ready");
                    let _ = ready.send(index);
                }
                _ = &mut start_deadline, if registered.is_none() => {
                    tracing::warn!(index, pid, timeout = ?spec.start_timeout, "worker did not register in time; killing it");
                    let _ = child.start_kill();
                    // its exit comes through `child.wait()` next
                    start_deadline.as_mut().reset(Instant::now() + Duration::from_secs(3600));
                }
            }
        };
        if let Some(id) = registered {
            rotation.remove(id);
        }
        match end {
            End::Stop => {
                stop_child(&mut child, stdin, spec.stop_grace, index).await;
                return;
            }
            End::Exited(status) => {
                let lived = started.elapsed();
                let delay = spec.backoff.delay(last_delay, lived);
                last_delay = Some(delay);
                let status = status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
                tracing::warn!(index, pid, %status, lived = ?lived, restart_in = ?delay, "worker exited; restarting it");
                tokio::select! {
                    _ = crate::raised(&mut stop) => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_max_and_resets_after_a_long_life() {
        let b = Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(10),
            reset_after: Duration::from_secs(30),
        };
        let short = Duration::from_millis(5);
        let mut last = None;
        let mut seen = Vec::new();
        for _ in 0..10 {
            let d = b.delay(last, short);
            seen.push(d.as_millis());
            last = Some(d);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 10_000]);
        assert_eq!(b.delay(last, Duration::from_secs(31)), Duration::from_millis(100));
    }

    #[test]
    fn worker_ids_are_distinct_and_derived_from_the_primary() {
        let primary: NodeId = "AbCd".parse().unwrap();
        let ids = worker_ids(primary, 200);
        let mut set: Vec<NodeId> = ids.clone();
        set.sort();
        set.dedup();
        assert_eq!(set.len(), 200, "every worker id is distinct");
        assert!(!ids.contains(&primary));
        // stable: a restarted primary with the same id gives the same ids
        assert_eq!(worker_ids(primary, 200), ids);
        // primaries with alike ids (hosts web1, web2, …) get unrelated worker ids
        let mut all: Vec<NodeId> = Vec::new();
        for host in ["web1", "web2", "web3", "web4"] {
            all.extend(worker_ids(host.parse().unwrap(), 8));
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "no worker id shared between the hosts");
    }
}
