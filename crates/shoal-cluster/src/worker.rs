//! The worker side: what a worker process gets from the primary.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use shoal::{NodeId, SocketIo, SocketIoBuilder};
use shoal_redis::RedisAdapterFactory;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::errors::ClusterError;

/// Environment variable naming a worker's index; its presence makes a process a worker.
pub const ENV_WORKER: &str = "SHOAL_WORKER";
/// Environment variable with the address of the primary's broker.
pub const ENV_BROKER: &str = "SHOAL_CLUSTER_BROKER";
/// Environment variable with the node id the primary assigned to the worker.
pub const ENV_NODE_ID: &str = "SHOAL_CLUSTER_NODE_ID";
/// Environment variable with the broker's authentication token.
pub const ENV_TOKEN: &str = "SHOAL_CLUSTER_TOKEN";

/// What this process is in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The primary (no `SHOAL_WORKER` in the environment): it listens, balances and
    /// supervises.
    Primary,
    /// Worker number `index` (from 0), started by a primary.
    Worker(u32),
}

impl Role {
    /// The role of this process, from its environment.
    ///
    /// # Errors
    /// [`ClusterError::Environment`] when `SHOAL_WORKER` is set but not a number.
    pub fn current() -> Result<Role, ClusterError> {
        match std::env::var(ENV_WORKER) {
            Err(std::env::VarError::NotPresent) => Ok(Role::Primary),
            Ok(v) => v
                .trim()
                .parse()
                .map(Role::Worker)
                .map_err(|_| ClusterError::Environment(format!("{ENV_WORKER}={v:?} is not a worker index"))),
            Err(e) => Err(ClusterError::Environment(format!("{ENV_WORKER}: {e}"))),
        }
    }

    /// True for a worker.
    pub fn is_worker(self) -> bool {
        matches!(self, Role::Worker(_))
    }
}

/// The settings a primary hands to a worker in its environment.
#[derive(Debug, Clone)]
pub(crate) struct WorkerEnv {
    pub(crate) token: Option<crate::AuthToken>,
    pub(crate) broker: SocketAddr,
    pub(crate) node: NodeId,
}

impl WorkerEnv {
    pub(crate) fn read() -> Result<WorkerEnv, ClusterError> {
        let var = |name: &str| {
            std::env::var(name).map_err(|_| {
                ClusterError::Environment(format!("{ENV_WORKER} is set but {name} is missing or not UTF-8"))
            })
        };
        let broker = var(ENV_BROKER)?;
        let broker = broker
            .parse()
            .map_err(|_| ClusterError::Environment(format!("{ENV_BROKER}={broker:?} is not an address")))?;
        let node = var(ENV_NODE_ID)?;
        let node =
            node.parse().map_err(|_| ClusterError::Environment(format!("{ENV_NODE_ID}={node:?} is not a node id")))?;
        let token = std::env::var(ENV_TOKEN).ok().map(crate::AuthToken::new);
        Ok(WorkerEnv { token, broker, node })
    }
}

/// What the function given to [`crate::Cluster::run`] receives in a worker: the
/// listener to serve on, the adapter that connects it with the other workers, its node
/// id, and the future that tells it to stop.
///
/// ```no_run
/// # async fn worker(mut ctx: shoal_cluster::WorkerContext) -> std::io::Result<()> {
/// let io = ctx.socketio_builder().build().map_err(std::io::Error::other)?;
/// let listener = ctx.take_listener().expect("taken once");
/// shoal::serve(listener, io, ctx.shutdown()).await
/// # }
/// ```
pub struct WorkerContext {
    pub(crate) index: u32,
    pub(crate) node: NodeId,
    pub(crate) addr: SocketAddr,
    pub(crate) listener: Option<TcpListener>,
    pub(crate) adapter: Arc<RedisAdapterFactory>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) drain: watch::Receiver<bool>,
}

impl std::fmt::Debug for WorkerContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerContext")
            .field("index", &self.index)
            .field("node", &self.node)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl WorkerContext {
    /// This worker's index (0 to workers - 1; a restarted worker keeps its index).
    pub fn index(&self) -> u32 {
        self.index
    }

    /// This worker's node id, which its session ids must start with so that the
    /// primary routes their requests here: give it to the `SocketIo` builder (as
    /// [`WorkerContext::socketio_builder`] does).
    pub fn node_id(&self) -> NodeId {
        self.node
    }

    /// The loopback address the primary forwards to (the listener's).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The listener, bound on 127.0.0.1 and already announced to the primary; `None`
    /// once taken.
    pub fn take_listener(&mut self) -> Option<TcpListener> {
        self.listener.take()
    }

    /// The adapter factory: the Redis adapter's classic protocol over the primary's
    /// embedded broker, or over Redis when the cluster was built with
    /// [`crate::ClusterBuilder::redis`].
    pub fn adapter(&self) -> Arc<RedisAdapterFactory> {
        self.adapter.clone()
    }

    /// A `SocketIo` builder with this worker's node id and adapter set.
    pub fn socketio_builder(&self) -> SocketIoBuilder {
        SocketIo::builder().node_id(self.node).adapter(self.adapter.clone())
    }

    /// Completes when the primary asks every worker to drain (it got SIGUSR1): take no
    /// new sessions, then close the current ones so that their clients go elsewhere. A
    /// worker started while the cluster drains is asked at once.
    pub fn drain_requested(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut drain = self.drain.clone();
        Box::pin(async move { crate::raised(&mut drain).await })
    }

    /// Completes when the worker must stop gracefully: the primary closed its stdin
    /// (it is stopping, or it died), or the process got SIGTERM or SIGINT.
    pub fn shutdown(&self) -> Pin<Box<dyn Future<Output = ()> + Send + 'static>> {
        let mut stop = self.stop.clone();
        Box::pin(async move { crate::raised(&mut stop).await })
    }
}

/// Raises `stop` when stdin reaches its end (the primary closed it or died) or on
/// SIGTERM/SIGINT.
pub(crate) fn watch_for_stop(stop: watch::Sender<bool>) -> Result<(), ClusterError> {
    use tokio::signal::unix::{SignalKind, signal};
    let stop = Arc::new(stop);
    let by_stdin = stop.clone();
    std::thread::Builder::new()
        .name("shoal-worker-stdin".into())
        .spawn(move || {
            use std::io::Read;
            let mut stdin = std::io::stdin();
            let mut buf = [0u8; 256];
            // the primary never writes: anything read is ignored, the end is the signal
            let why = loop {
                match stdin.read(&mut buf) {
                    Ok(0) => break "end of input".to_owned(),
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break e.to_string(),
                }
            };
            tracing::info!(stdin = %why, "stdin closed: the primary asks this worker to stop");
            let _ = by_stdin.send(true);
        })
        .map_err(|source| ClusterError::Io { what: "cannot start the stdin watcher", source })?;
    let mut interrupt =
        signal(SignalKind::interrupt()).map_err(|source| ClusterError::Io { what: "signal handler", source })?;
    let mut terminate =
        signal(SignalKind::terminate()).map_err(|source| ClusterError::Io { what: "signal handler", source })?;
    tokio::spawn(async move {
        let name = tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        };
        tracing::info!(signal = name, "worker stopping");
        let _ = stop.send(true);
    });
    Ok(())
}
