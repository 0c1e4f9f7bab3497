//! `shoal serve`: one node (in-memory adapter, or Redis with `--redis`: then also the
//! membership and forwarding between nodes), the demo chat, `/health` and drain on
//! SIGUSR1; with `--workers N` (N > 1) a cluster of N such nodes behind this process
//! (crate `shoal-cluster`). (The module is not called `serve` so that its log target
//! differs from the library's `shoal::serve`: this binary is also named `shoal`.)

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use std::future::Future;
use std::pin::Pin;

use shoal::{ServerConfig, SocketIo};
use shoal_cluster::{Cluster, Role, WorkerContext};
use shoal_redis::membership::{Announcer, Membership, MembershipConfig, NodeStatus};
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::ServeArgs;
use crate::config::ServeConfig;
use crate::web::{self, Health, WebService};

/// Runs `shoal serve` to the end; the process's exit status.
pub(crate) fn run(args: &ServeArgs) -> ExitCode {
    let config = match ServeConfig::load(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::FAILURE;
        }
    };
    if args.check_config {
        return check(&config);
    }
    let filter = match config.validate().and_then(|()| config.log_filter()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shoal: {e}");
            return ExitCode::FAILURE;
        }
    };
    crate::run_logged(filter, async move {
        if config.worker_count() > 1 { cluster(config).await } else { serve(config, None).await }
    })
}

/// `first`, or the first id `draw` gives that is not `taken` (at most 64 draws: with 24-bit
/// ids, a run of 64 taken ids means the membership is not what it seems, and ids stay
/// usable anyway, only ambiguous for forwarding).
fn free_node_id(
    first: shoal::NodeId,
    taken: impl Fn(shoal::NodeId) -> bool,
    mut draw: impl FnMut() -> shoal::NodeId,
) -> shoal::NodeId {
    let mut id = first;
    for _ in 0..64 {
        if !taken(id) {
            return id;
        }
        id = draw();
    }
    tracing::warn!(node = %id, "could not draw a node id that no live node has");
    id
}

/// `--check-config`: prints the merged configuration (valid TOML, with the demo
/// directory found as a comment), then whether it is valid.
fn check(config: &ServeConfig) -> ExitCode {
    println!("# shoal serve: merged configuration (defaults < file < flags)");
    if config.demo && config.demo_dir.is_none() {
        match web::find_demo_dir(None) {
            Some(dir) => println!("# demo_dir not set: would serve {}", dir.display()),
            None => println!("# demo_dir not set, and no web/index.html found: the demo page would be 404"),
        }
    }
    print!("{}", config.to_toml());
    match config.validate() {
        Ok(()) => {
            eprintln!("shoal: configuration is valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shoal: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Cluster mode: in the primary, listens and runs the workers until SIGINT/SIGTERM; in a
/// worker (this same program, started by the primary), serves like a single node on the
/// listener, node id and adapter the primary gave it.
async fn cluster(config: ServeConfig) -> Result<(), String> {
    let role = Role::current().map_err(|e| e.to_string())?;
    let primary = config.node_id.as_deref().map(shoal::NodeId::from_name).unwrap_or_else(shoal::NodeId::random);
    let mut builder = Cluster::builder()
        .node_id(primary)
        // scripts and tests wait for this line: once every worker serves
        .on_ready(move |addr| tracing::info!(node = %primary, "shoal listening on http://{addr}"))
        .workers(config.worker_count())
        .host(config.host.as_str())
        .port(config.port)
        .strategy(config.cluster_strategy.strategy())
        .key(config.redis_key.as_str());
    if let Some(redis) = config.redis_adapter_config() {
        builder = builder.redis(redis);
    }
    let cluster = builder.build().map_err(|e| e.to_string())?;
    let shutdown: Pin<Box<dyn Future<Output = ()> + Send>> = match role {
        Role::Primary => Box::pin(
            shoal_cluster::shutdown_signal("shutting down gracefully")
                .map_err(|e| format!("cannot install signal handlers: {e}"))?,
        ),
        // a worker stops when the primary tells it (WorkerContext::shutdown)
        Role::Worker(_) => Box::pin(std::future::pending()),
    };
    cluster.run_until(move |ctx| serve(config, Some(ctx)), shutdown).await.map_err(|e| e.to_string())
}

/// Serves one node: standalone (`worker` is `None`), or as a cluster worker.
async fn serve(config: ServeConfig, worker: Option<WorkerContext>) -> Result<(), String> {
    let mut settings = config.socketio_config().map_err(|e| e.to_string())?;
    if let Some(ctx) = &worker {
        settings.engine.node_id = ctx.node_id();
    }
    let drawn_id = settings.engine.node_id;
    let mut builder = SocketIo::builder().config(settings);
    let mut membership = None;
    let is_worker = worker.is_some();
    if let Some(ctx) = &worker {
        // the embedded broker's adapter, or Redis's when --redis is given
        builder = builder.adapter(ctx.adapter());
        if let Some(redis) = config.redis_adapter_config() {
            // workers of clusters on other hosts: forward the requests of their sessions
            let url = crate::config::redact_url(&redis.connection.url);
            let members = Membership::connect(&redis.connection, MembershipConfig::default().prefix(redis.key.clone()))
                .await
                .map_err(|e| format!("cannot start the membership ({url}): {e}"))?;
            let directory = members.clone();
            builder = builder.node_directory(Arc::new(move |id: shoal::NodeId| directory.address(id)));
            membership = Some(members);
        }
    } else if let Some(redis) = config.redis_adapter_config() {
        let url = crate::config::redact_url(&redis.connection.url);
        let mode = match config.redis_mode {
            crate::config::RedisModeName::Classic => "classic".to_owned(),
            crate::config::RedisModeName::Sharded => {
                format!("sharded, {}", config.redis_subscription_mode.unwrap_or_default().mode().as_str())
            }
        };
        let key = redis.key.clone();
        let connection = redis.connection.clone();
        let factory = shoal_redis::RedisAdapterFactory::connect(redis)
            .await
            .map_err(|e| format!("cannot start the Redis adapter ({url}): {e}"))?;
        tracing::info!(redis = %url, %mode, %key, "Redis adapter connected");
        builder = builder.adapter(factory);
        // the other nodes, for forwarding the requests of their sessions to them
        let members = Membership::connect(&connection, MembershipConfig::default().prefix(key))
            .await
            .map_err(|e| format!("cannot start the membership ({url}): {e}"))?;
        if config.node_id.is_none() {
            // a random id that a live node of this deployment already has: draw another
            let id = free_node_id(drawn_id, |id| members.get(id).is_some(), shoal::NodeId::random);
            if id != drawn_id {
                tracing::info!(taken = %drawn_id, node = %id, "random node id already in use; drew another");
            }
            builder = builder.node_id(id);
        }
        let directory = members.clone();
        builder = builder.node_directory(Arc::new(move |id: shoal::NodeId| directory.address(id)));
        membership = Some(members);
    }
    let io = builder.build().map_err(|e| format!("invalid configuration: {e}"))?;
    // the main namespace always accepts connections; the demo adds its chat to it
    let _ = io.of("/");
    let demo_dir = if config.demo {
        crate::demo::install(&io);
        let dir = web::find_demo_dir(config.demo_dir.as_deref());
        check_demo_dir(dir.as_deref());
        dir
    } else {
        None
    };

    // a worker drains when the primary asks (it got SIGUSR1)
    let drain_requested = worker.as_ref().map(WorkerContext::drain_requested);
    let (listener, signalled): (_, Pin<Box<dyn Future<Output = ()> + Send>>) = match worker {
        Some(mut ctx) => {
            let listener = ctx.take_listener().ok_or("the worker's listener was already taken")?;
            tracing::info!(node = %io.node_id(), index = ctx.index(), "worker listening on http://{}", ctx.local_addr());
            (listener, ctx.shutdown())
        }
        None => {
            let listener = tokio::net::TcpListener::bind((config.host.as_str(), config.port))
                .await
                .map_err(|e| format!("cannot listen on {}:{}: {e}", config.host, config.port))?;
            let signalled = shoal_cluster::shutdown_signal("shutting down gracefully")
                .map_err(|e| format!("cannot install signal handlers: {e}"))?;
            (listener, Box::pin(signalled))
        }
    };
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    let announcer = match &membership {
        Some(members) => {
            // a worker announces its own port, at --advertise's host when given
            let configured = match (is_worker, config.advertise.as_deref()) {
                (true, Some(a)) => Some(format!("{}:{}", a.rsplit_once(':').map_or(a, |(host, _)| host), addr.port())),
                (_, a) => a.map(str::to_owned),
            };
            let status = io.clone();
            let status =
                Arc::new(move || NodeStatus { load: status.connection_count() as u64, draining: status.is_draining() });
            let announcer = members
                .announce_at(io.node_id(), configured.as_deref(), addr, status)
                .await
                .map_err(|e| e.to_string())?;
            let advertise = announcer.node().addr;
            tracing::info!(node = %io.node_id(), %advertise, "announced in Redis; forwarding between nodes on");
            Some(Arc::new(announcer))
        }
        None => None,
    };
    if !is_worker {
        // scripts and tests wait for this line (a cluster's primary logs its own)
        tracing::info!(node = %io.node_id(), "shoal listening on http://{addr}");
        if let Some(dir) = &demo_dir {
            tracing::info!(files = %dir.display(), "demo chat on http://{}/", browsable(addr));
        }
    }

    let (stopping, stopping_announcer) = (io.clone(), announcer.clone());
    let shutdown = async move {
        signalled.await;
        // balancers stop sending new clients at once
        stopping.drain();
        if let Some(a) = &stopping_announcer {
            a.announce_now();
        }
    };
    let grace = Duration::from_millis(config.drain_grace);
    match drain_requested {
        Some(requested) => {
            let (io, announcer) = (io.clone(), announcer.clone());
            tokio::spawn(async move {
                requested.await;
                tracing::info!(grace_ms = grace.as_millis() as u64, "the primary asks to drain");
                start_drain(&io, announcer.as_ref(), grace);
            });
        }
        None => {
            let drain =
                signal(SignalKind::user_defined1()).map_err(|e| format!("cannot install signal handlers: {e}"))?;
            tokio::spawn(drain_on_signal(drain, io.clone(), announcer.clone(), grace));
        }
    }
    let health = io.clone();
    let node = io.node_id().to_string();
    let inner = WebService::new(
        demo_dir,
        Arc::new(move || Health {
            node: node.clone(),
            connections: health.connection_count(),
            draining: health.is_draining(),
            forwarded: health.forwarded_requests(),
        }),
    );
    shoal::serve_with(listener, io, inner, ServerConfig::default(), shutdown)
        .await
        .map_err(|e| format!("server failed: {e}"))?;
    if let Some(announcer) = &announcer {
        announcer.leave().await;
    }
    if let Some(members) = membership {
        members.close().await;
    }
    tracing::info!("shoal stopped");
    Ok(())
}

/// On each SIGUSR1: drain (new connections refused, `/health` 503, announced), then
/// after `grace` close the remaining connections so that their clients reconnect
/// elsewhere. The node keeps running (and forwarding) until SIGTERM.
async fn drain_on_signal(
    mut usr1: tokio::signal::unix::Signal,
    io: SocketIo,
    announcer: Option<Arc<Announcer>>,
    grace: Duration,
) {
    while usr1.recv().await.is_some() {
        if io.is_draining() {
            tracing::info!("already draining");
            continue;
        }
        tracing::info!(signal = "SIGUSR1", grace_ms = grace.as_millis() as u64, "draining");
        start_drain(&io, announcer.as_ref(), grace);
    }
}

/// Drains `io` (new connections refused, `/health` 503, announced), and after `grace`
/// closes the remaining connections.
fn start_drain(io: &SocketIo, announcer: Option<&Arc<Announcer>>, grace: Duration) {
    io.drain();
    if let Some(a) = announcer {
        a.announce_now();
    }
    let io = io.clone();
    tokio::spawn(async move {
        let left = io.drain_and_close(grace).await;
        tracing::info!(connections = left, "drain complete");
    });
}

/// Warns about a demo that cannot work.
fn check_demo_dir(dir: Option<&Path>) {
    let Some(dir) = dir else {
        tracing::warn!("no demo directory found (web/index.html): the demo page is off; pass --demo-dir DIR");
        return;
    };
    if !dir.join("index.html").is_file() {
        tracing::warn!(dir = %dir.display(), "the demo directory has no index.html");
    }
    if !dir.join(web::CLIENT_DIST).join("socket.io.min.js").is_file() {
        tracing::warn!(
            dir = %dir.display(),
            "socket.io-client is not installed there; the demo page cannot connect until `npm ci` is run in it"
        );
    }
}

/// The address to open in a browser: loopback instead of "any address".
fn browsable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(if a.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() });
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsable_address() {
        assert_eq!(browsable("0.0.0.0:3000".parse().unwrap()), "127.0.0.1:3000".parse().unwrap());
        assert_eq!(browsable("[::]:80".parse().unwrap()), "[::1]:80".parse().unwrap());
        assert_eq!(browsable("10.1.2.3:3000".parse().unwrap()), "10.1.2.3:3000".parse().unwrap());
    }

    #[test]
    fn random_node_ids_avoid_the_ones_in_use() {
        let ids: Vec<shoal::NodeId> = ["aaaa", "bbbb", "cccc", "dddd"].iter().map(|s| s.parse().unwrap()).collect();
        let taken = |id: shoal::NodeId| id == ids[0] || id == ids[1];
        // free at once: kept, nothing drawn
        assert_eq!(free_node_id(ids[2], taken, || panic!("drew for a free id")), ids[2]);
        // taken: the draws go on past the taken ones
        let mut next = ids[1..].iter().copied();
        assert_eq!(free_node_id(ids[0], taken, || next.next().unwrap()), ids[2]);
        // everything taken: gives up after a bounded number of draws
        let mut draws = 0;
        let id = free_node_id(
            ids[0],
            |_| true,
            || {
                draws += 1;
                ids[3]
            },
        );
        assert_eq!((id, draws), (ids[3], 64));
    }
}
