//! [`Cluster`]: the builder and the entry point shared by the primary and the workers.

use std::ffi::OsString;
use std::fmt::Display;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use shoal::NodeId;
use shoal_balance::{BalancerConfig, Directory, ForeignSids, HealthConfig, Strategy};
use shoal_redis::membership::{Membership, MembershipConfig};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::auth::AuthToken;
use crate::broker::{Broker, BrokerConfig};
#[cfg(doc)]
use crate::driver::CONTROL_PREFIX;
use crate::driver::{EmbeddedDriver, EmbeddedDriverConfig};
use crate::errors::ClusterError;
use crate::supervisor::{self, Backoff, Spec};
use crate::worker::{Role, WorkerContext, WorkerEnv};

/// The channel of the primary's drain request (a [`CONTROL_PREFIX`] channel).
const CHANNEL_DRAIN: &str = "\u{1}shoal-cluster#drain";

/// The number of workers by default: the number of cores (1 if unknown).
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map(usize::from).unwrap_or(1)
}

/// A boxed future that completes when the primary must stop.
type Shutdown = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Settings of a cluster; build with [`Cluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Number of worker processes. Default: the number of cores.
    pub workers: usize,
    /// Host the primary listens on. Default `0.0.0.0`.
    pub host: String,
    /// Port the primary listens on (0: any free port). Default 3000.
    pub port: u16,
    /// The balancer in the primary: how new sessions are spread (`strategy`, default
    /// least-connections; requests with a sid always go to the worker named in it),
    /// its limits and drain timeout. Active health checks are off by default (the
    /// primary sees its workers exit and takes them out at once).
    pub balancer: BalancerConfig,
    /// The primary's node id, from which the workers' ids are derived (a hash of it and
    /// the worker's index: stable across restarts). Default random.
    pub node_id: Option<NodeId>,
    /// With a Redis configuration the workers use Redis instead of the embedded
    /// broker, and the cluster can span machines. Default none (embedded).
    pub redis: Option<RedisAdapterConfig>,
    /// Channel prefix of the adapter over the embedded broker. Default `socket.io`.
    pub key: String,
    /// The program workers run. Default: this executable ([`std::env::current_exe`]).
    pub program: Option<PathBuf>,
    /// The workers' arguments. Default: this process's arguments.
    pub args: Option<Vec<OsString>>,
    /// First delay before restarting a worker that exited. Default 100 ms.
    pub restart_min: Duration,
    /// Longest delay before restarting a worker (the delay doubles on each quick
    /// exit). Default 10 s.
    pub restart_max: Duration,
    /// A worker that lived this long restarts after `restart_min` again. Default 30 s.
    pub restart_reset: Duration,
    /// A worker that has not registered within this time is killed (and restarted).
    /// Default 30 s.
    pub start_timeout: Duration,
    /// How long a stopping worker may take to close its connections before it is
    /// killed. Default 15 s.
    pub stop_grace: Duration,
    /// Limits of the embedded broker.
    pub broker: BrokerConfig,
    /// Settings of the workers' connection to the embedded broker.
    pub driver: EmbeddedDriverConfig,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            workers: default_workers(),
            host: "0.0.0.0".into(),
            port: 3000,
            balancer: default_balancer(),
            node_id: None,
            redis: None,
            key: "socket.io".into(),
            program: None,
            args: None,
            restart_min: Duration::from_millis(100),
            restart_max: Duration::from_secs(10),
            restart_reset: Duration::from_secs(30),
            start_timeout: Duration::from_secs(30),
            stop_grace: Duration::from_secs(15),
            broker: BrokerConfig::default(),
            driver: EmbeddedDriverConfig::default(),
        }
    }
}

/// The balancer's defaults in cluster mode: active health checks off.
fn default_balancer() -> BalancerConfig {
    let mut config = BalancerConfig::default();
    config.health = HealthConfig::default().interval(Duration::ZERO);
    config
}

impl ClusterConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// [`ClusterError::Config`] naming the invalid setting.
    pub fn validate(&self) -> Result<(), ClusterError> {
        if self.workers == 0 {
            return Err(ClusterError::Config("workers must be at least 1".into()));
        }
        if self.workers > 1024 {
            return Err(ClusterError::Config("workers must be at most 1024".into()));
        }
        if self.host.trim().is_empty() {
            return Err(ClusterError::Config("host must not be empty".into()));
        }
        if self.restart_min.is_zero() || self.restart_min > self.restart_max {
            return Err(ClusterError::Config("restart backoff: 0 < restart_min <= restart_max".into()));
        }
        if self.start_timeout.is_zero() || self.stop_grace.is_zero() {
            return Err(ClusterError::Config("start_timeout and stop_grace must be positive".into()));
        }
        if self.key.is_empty() {
            return Err(ClusterError::Config("the adapter key must not be empty".into()));
        }
        self.balancer.validate().map_err(|e| ClusterError::Config(format!("balancer: {e}")))?;
        Ok(())
    }
}

/// Called in the primary with its public address once every worker served.
type ReadyHook = Arc<dyn Fn(SocketAddr) + Send + Sync>;

/// Builds a [`Cluster`]. Every setter is documented on the [`ClusterConfig`] field of
/// the same name.
#[derive(Clone, Default)]
pub struct ClusterBuilder {
    config: ClusterConfig,
    on_ready: Option<ReadyHook>,
}

impl std::fmt::Debug for ClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBuilder").field("config", &self.config).finish_non_exhaustive()
    }
}

macro_rules! setter {
    ($(#[$m:meta])* $name:ident: $ty:ty) => {
        $(#[$m])*
        #[must_use]
        pub fn $name(mut self, value: $ty) -> Self {
            self.config.$name = value;
            self
        }
    };
}

impl ClusterBuilder {
    setter!(/// Number of worker processes (default: the number of cores).
        workers: usize);
    setter!(/// Port the primary listens on (default 3000; 0: any free port).
        port: u16);
    setter!(/// The primary's balancer settings (see [`ClusterConfig::balancer`]).
        balancer: BalancerConfig);
    setter!(/// First restart delay (default 100 ms).
        restart_min: Duration);
    setter!(/// Longest restart delay (default 10 s).
        restart_max: Duration);
    setter!(/// Life after which the restart delay resets (default 30 s).
        restart_reset: Duration);
    setter!(/// Time a worker has to register (default 30 s).
        start_timeout: Duration);
    setter!(/// Time a stopping worker has before it is killed (default 15 s).
        stop_grace: Duration);
    setter!(/// Limits of the embedded broker.
        broker: BrokerConfig);
    setter!(/// Settings of the workers' broker connection.
        driver: EmbeddedDriverConfig);

    /// How new sessions are spread (default least-connections): sets the balancer's
    /// strategy.
    #[must_use]
    pub fn strategy(mut self, strategy: Strategy) -> Self {
        self.config.balancer.strategy = strategy;
        self
    }

    /// Host the primary listens on (default `0.0.0.0`).
    #[must_use]
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.config.host = host.into();
        self
    }

    /// The primary's node id (default random).
    #[must_use]
    pub fn node_id(mut self, id: NodeId) -> Self {
        self.config.node_id = Some(id);
        self
    }

    /// Workers use Redis with this configuration instead of the embedded broker.
    #[must_use]
    pub fn redis(mut self, config: RedisAdapterConfig) -> Self {
        self.config.redis = Some(config);
        self
    }

    /// Channel prefix over the embedded broker (default `socket.io`).
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.config.key = key.into();
        self
    }

    /// The program the workers run (default: this executable).
    #[must_use]
    pub fn program(mut self, program: impl Into<PathBuf>) -> Self {
        self.config.program = Some(program.into());
        self
    }

    /// The workers' arguments (default: this process's).
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.config.args = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Starts from a whole configuration.
    #[must_use]
    pub fn config(mut self, config: ClusterConfig) -> Self {
        self.config = config;
        self
    }

    /// Called in the primary, with its public address, once every worker has
    /// registered (the first time): for a "ready" line that scripts wait for.
    #[must_use]
    pub fn on_ready(mut self, hook: impl Fn(SocketAddr) + Send + Sync + 'static) -> Self {
        self.on_ready = Some(Arc::new(hook));
        self
    }

    /// Checks the settings and builds the cluster.
    ///
    /// # Errors
    /// [`ClusterError::Config`] for an invalid setting.
    pub fn build(self) -> Result<Cluster, ClusterError> {
        self.config.validate()?;
        Ok(Cluster { config: self.config, on_ready: self.on_ready })
    }
}

/// A cluster on one machine: a primary process that listens on the public port and
/// balances between worker processes it spawns (the same program), and the workers,
/// connected by the embedded broker. The same code runs in both; [`Cluster::run`] finds
/// out which one this process is.
#[derive(Clone)]
pub struct Cluster {
    config: ClusterConfig,
    on_ready: Option<ReadyHook>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Cluster {
    /// A builder with the defaults of [`ClusterConfig`].
    pub fn builder() -> ClusterBuilder {
        ClusterBuilder::default()
    }

    /// The settings.
    pub fn config(&self) -> &ClusterConfig {
        &self.config
    }

    /// In the primary: runs the cluster until SIGTERM or SIGINT, then stops the workers
    /// and returns; on SIGUSR1 asks every worker to drain
    /// ([`WorkerContext::drain_requested`]). In a worker: connects to the primary, then runs `worker` with its
    /// [`WorkerContext`] and returns when it does.
    ///
    /// # Errors
    /// See [`ClusterError`]; in a worker, also `worker`'s own error.
    pub async fn run<F, Fut, E>(self, worker: F) -> Result<(), ClusterError>
    where
        F: FnOnce(WorkerContext) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        match Role::current()? {
            Role::Worker(index) => self.run_worker(index, worker).await,
            Role::Primary => {
                let shutdown = crate::signals::shutdown_signal("shutting down gracefully")
                    .map_err(|source| ClusterError::Io { what: "cannot install signal handlers", source })?;
                self.run_primary(Box::pin(shutdown)).await
            }
        }
    }

    /// As [`Cluster::run`], the primary stopping when `shutdown` completes instead of
    /// on a signal.
    ///
    /// # Errors
    /// See [`Cluster::run`].
    pub async fn run_until<F, Fut, E>(
        self,
        worker: F,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ClusterError>
    where
        F: FnOnce(WorkerContext) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        match Role::current()? {
            Role::Worker(index) => self.run_worker(index, worker).await,
            Role::Primary => self.run_primary(Box::pin(shutdown)).await,
        }
    }

    async fn run_worker<F, Fut, E>(self, index: u32, worker: F) -> Result<(), ClusterError>
    where
        F: FnOnce(WorkerContext) -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: Display,
    {
        let env = WorkerEnv::read()?;
        let broker_err = |cause: String| ClusterError::Broker { addr: env.broker.to_string(), cause };
        let (stop_tx, stop) = watch::channel(false);
        crate::worker::watch_for_stop(stop_tx)?;
        // one connection to the primary: pub/sub (embedded mode) and the registration
        let mut driver_config = self.config.driver.clone();
        driver_config.auth_token = env.token.clone();
        let control =
            EmbeddedDriver::connect(env.broker, driver_config).await.map_err(|e| broker_err(e.to_string()))?;
        // the primary's requests (drain)
        let (drain_tx, drain) = watch::channel(false);
        control.set_control(Arc::new(move |channel: &str, _payload: bytes::Bytes| {
            if channel == CHANNEL_DRAIN {
                let _ = drain_tx.send(true);
            }
        }));
        shoal_redis::Driver::subscribe(
            control.as_ref(),
            vec![shoal_redis::Subscription::Channel(CHANNEL_DRAIN.into())],
        )
        .await
        .map_err(|e| broker_err(format!("subscription failed: {e}")))?;
        let adapter = match &self.config.redis {
            Some(redis) => RedisAdapterFactory::connect(redis.clone()).await?,
            None => RedisAdapterFactory::with_driver(
                RedisAdapterConfig::new("embedded://").key(self.config.key.as_str()),
                control.clone(),
            ),
        };
        // with Redis, other hosts' workers forward requests of this worker's sessions to
        // it: it listens on the public host (announced by the application, see
        // docs/scaling.md); with the embedded broker only the primary reaches it
        let host = if self.config.redis.is_some() { self.config.host.as_str() } else { "127.0.0.1" };
        let listener = TcpListener::bind((host, 0))
            .await
            .map_err(|source| ClusterError::Bind { addr: format!("{host}:0"), source })?;
        let addr = listener.local_addr().map_err(|source| ClusterError::Io { what: "worker address", source })?;
        control
            .register(index, std::process::id(), env.node.as_str(), addr)
            .await
            .map_err(|e| broker_err(format!("registration failed: {e}")))?;
        tracing::info!(index, node = %env.node, %addr, "worker serving");
        let ctx = WorkerContext { index, node: env.node, addr, listener: Some(listener), adapter, stop, drain };
        let result = worker(ctx).await.map_err(|e| ClusterError::Worker(e.to_string()));
        shoal_redis::Driver::close(control.as_ref()).await;
        result
    }

    async fn run_primary(self, shutdown: Shutdown) -> Result<(), ClusterError> {
        let on_ready = self.on_ready;
        let config = self.config;
        let host = config.host.clone();
        let listener = TcpListener::bind((host.as_str(), config.port))
            .await
            .map_err(|source| ClusterError::Bind { addr: format!("{host}:{}", config.port), source })?;
        let public = listener.local_addr().map_err(|source| ClusterError::Io { what: "bound address", source })?;
        // only this primary's workers may use its broker
        let token = config.broker.auth_token.clone().unwrap_or_else(AuthToken::random);
        let broker_config = config.broker.clone().auth_token(Some(token.clone()));
        let mut broker = Broker::bind(SocketAddr::from(([127, 0, 0, 1], 0)), broker_config).await?;
        let mut registrations = broker.take_registrations().unwrap_or_else(|| mpsc::unbounded_channel().1);

        let program = match &config.program {
            Some(p) => p.clone(),
            None => {
                std::env::current_exe().map_err(|source| ClusterError::Io { what: "current executable", source })?
            }
        };
        let args = config.args.clone().unwrap_or_else(|| std::env::args_os().skip(1).collect());
        let spec = Arc::new(Spec {
            program,
            args,
            broker: broker.local_addr(),
            token,
            backoff: Backoff { min: config.restart_min, max: config.restart_max, reset_after: config.restart_reset },
            start_timeout: config.start_timeout,
            stop_grace: config.stop_grace,
        });
        let primary_id = config.node_id.unwrap_or_else(NodeId::random);
        let ids = supervisor::worker_ids(primary_id, config.workers);

        let (front_stop_tx, front_stop) = watch::channel(false);
        let strategy = config.balancer.strategy.name();
        let mut balancer = config.balancer.clone();
        // sessions of other hosts' workers go straight to their owner, found in the
        // membership the workers announce themselves in; until the primary watches it
        // (Redis unreachable at start), and for nodes not known yet, a worker forwards them
        let membership: Arc<OnceLock<Arc<Membership>>> = Arc::default();
        let mut watching = None;
        if let Some(redis) = &config.redis {
            let (slot, conn) = (membership.clone(), redis.connection.clone());
            let settings = MembershipConfig::default().prefix(redis.key.clone());
            watching = Some(tokio::spawn(async move {
                let mut delay = Duration::from_millis(100);
                loop {
                    match Membership::connect(&conn, settings.clone()).await {
                        Ok(m) => {
                            let _ = slot.set(m);
                            break;
                        }
                        Err(e) => {
                            tracing::warn!(cause = %e, retry_in = ?delay, "cannot watch the membership in Redis yet");
                            tokio::time::sleep(delay).await;
                            delay = (delay * 2).min(Duration::from_secs(10));
                        }
                    }
                }
            }));
            let directory = membership.clone();
            balancer.directory = Some(Directory::new(move |id| directory.get().and_then(|m| m.address(id))));
            balancer.foreign_sids = ForeignSids::Delegate;
        }
        let (rotation, mut front) = crate::front::start(listener, balancer, front_stop)?;
        let mut front_failed: Option<String> = None;
        tracing::info!(node = %primary_id, workers = config.workers, strategy, "cluster primary bound to http://{public}");

        let (stop_tx, stop) = watch::channel(false);
        let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
        let mut per_worker = Vec::with_capacity(ids.len());
        let mut tasks = Vec::with_capacity(ids.len());
        for (i, node) in ids.iter().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            per_worker.push(tx);
            tasks.push(tokio::spawn(supervisor::supervise(
                spec.clone(),
                i as u32,
                *node,
                rx,
                rotation.clone(),
                ready_tx.clone(),
                stop.clone(),
            )));
        }
        drop(ready_tx);
        let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let publisher = broker.publisher();
        let (drained, relay) = (draining.clone(), publisher.clone());
        let dispatch = tokio::spawn(async move {
            while let Some(reg) = registrations.recv().await {
                match per_worker.get(reg.index as usize) {
                    Some(tx) => {
                        let _ = tx.send(reg);
                    }
                    None => tracing::warn!(index = reg.index, "registration of an unknown worker index ignored"),
                }
                // a worker (re)started while the cluster drains drains too
                if drained.load(std::sync::atomic::Ordering::Acquire) {
                    relay.publish(CHANNEL_DRAIN, b"");
                }
            }
        });
        let total = config.workers;
        let announce = tokio::spawn(async move {
            let mut seen = std::collections::HashSet::new();
            while let Some(i) = ready_rx.recv().await {
                if seen.insert(i) && seen.len() == total {
                    // scripts and tests wait for this line
                    tracing::info!(workers = total, "cluster ready: every worker serves, on http://{public}");
                    if let Some(hook) = &on_ready {
                        hook(public);
                    }
                }
            }
        });

        // SIGUSR1: every worker drains (the process would otherwise die of it)
        let mut usr1 = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::user_defined1())
            .map_err(|source| ClusterError::Io { what: "cannot install signal handlers", source })?;
        let mut shutdown = shutdown;
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                ended = &mut front => {
                    // the public side is gone: nothing reaches the workers any more
                    let why = match ended {
                        Ok(Ok(())) => "stopped".to_owned(),
                        Ok(Err(e)) => e,
                        Err(e) => e.to_string(),
                    };
                    tracing::error!(cause = %why, "the cluster's balancer stopped; stopping the cluster");
                    front_failed = Some(why);
                    break;
                }
                _ = usr1.recv() => {
                    draining.store(true, std::sync::atomic::Ordering::Release);
                    let told = publisher.publish(CHANNEL_DRAIN, b"");
                    tracing::info!(signal = "SIGUSR1", workers = told, "draining every worker");
                }
            }
        }
        // as a single node does: the workers close their sessions while the port still
        // accepts (a polling client may need a new request to get its last packets),
        // then the balancer stops accepting and drains
        tracing::info!("stopping the cluster: stopping the workers");
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        let _ = front_stop_tx.send(true);
        if front_failed.is_none() {
            match front.await {
                Ok(Err(e)) => tracing::warn!(cause = %e, "the cluster's balancer failed while stopping"),
                Err(e) => tracing::warn!(cause = %e, "the cluster's balancer task failed"),
                Ok(Ok(())) => {}
            }
        }
        dispatch.abort();
        announce.abort();
        if let Some(w) = watching {
            w.abort();
        }
        if let Some(m) = membership.get() {
            m.close().await;
        }
        broker.shutdown().await;
        tracing::info!("shoal stopped");
        match front_failed {
            Some(why) => Err(ClusterError::Balancer(why)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_drain_channel_is_a_control_channel() {
        assert!(super::CHANNEL_DRAIN.starts_with(crate::driver::CONTROL_PREFIX));
    }
}
