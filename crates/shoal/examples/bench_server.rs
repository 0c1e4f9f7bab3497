//! The server the benchmarks drive, on namespace `/`. Every socket joins room `"bench"`
//! when it connects, then:
//! - `"echo"` (any arguments, ack): acknowledges with the same arguments;
//! - `"broadcast"` (payload): emits `"msg"` with the payload to room `"bench"`;
//! - `"burst"` (`{n, payload}`, optional ack): emits `"msg"` with the payload `n` times to
//!   room `"bench"` as fast as it can, then acknowledges with `n`;
//! - `"count"` (ack): acknowledges with the number of sockets in `/`;
//! - `"to"` (`{room, event, payload}`): emits `event` with the payload to `room` (a socket
//!   id targets that socket).
//!
//! With `--redis URL` (and `--redis-mode classic|sharded`, `--redis-key KEY`) it uses the
//! Redis adapter, so that several of them (or Node servers) share the rooms; otherwise
//! the in-memory adapter. With `--redis`, nodes also announce themselves
//! (`--advertise HOST:PORT`, default 127.0.0.1 and the bound port) and forward the
//! requests of other nodes' sessions to them, so any load balancer works in front of
//! them. `--node-id ID` fixes the node id.
//!
//! `--threads 1` (the default) runs everything on one thread, so that pinning the process
//! to one core (`taskset -c 0`) measures one core. It prints
//! `bench_server listening on http://HOST:PORT` on stdout once bound, and stops on
//! SIGINT or SIGTERM.
//!
//! `--workers N` runs cluster mode (crate `shoal-cluster`): this process listens on
//! `--port` and balances between N worker processes (each with `--threads` threads)
//! connected by the embedded broker, or by Redis with `--redis`. The listening line is
//! printed once every worker serves.
//!
//! `cargo run --release --example bench_server -- --port 3000`

#[path = "support/redis_node.rs"]
mod redis_node;

use std::process::ExitCode;

use clap::Parser;
use serde::Deserialize;
use serde_json::Value;
use shoal::{Args as EventArgs, Event, Namespace, NodeId, Socket, SocketIo};
use shoal_cluster::Cluster;
use shoal_redis::{RedisAdapterConfig, RedisMode, SubscriptionMode};
use tokio::signal::unix::{SignalKind, signal};

/// The room every socket joins.
const ROOM: &str = "bench";

/// How many emits a burst makes between two yields to the runtime.
const BURST_YIELD_EVERY: u64 = 64;

#[derive(Parser, Debug)]
#[command(about = "The Socket.IO server the Shoal benchmarks drive")]
struct Args {
    /// Port to listen on (0: any free port; the bound address is printed).
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Tokio worker threads (of each process in cluster mode). 1 runs a current-thread
    /// runtime: the whole server on one thread, so on one core when pinned with taskset.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Cluster mode: balance between this many worker processes on one port, sharing
    /// rooms through the embedded broker (or Redis with --redis). [default: one process,
    /// no cluster]
    #[arg(long, value_name = "N")]
    workers: Option<usize>,
    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(long, default_value = "warn")]
    log: String,
    /// Redis URL of the adapter that spans several nodes (`redis://host:6379`,
    /// `redis-cluster://host:port?node=host:port`); in-memory adapter without it.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// How the Redis adapter talks: `classic` (PUBLISH/SUBSCRIBE, Node's createAdapter) or
    /// `sharded` (SPUBLISH/SSUBSCRIBE, createShardedAdapter, dynamic subscriptions).
    /// [default: classic]
    #[arg(long, value_name = "MODE", value_parser = ["classic", "sharded"], requires = "redis")]
    redis_mode: Option<String>,
    /// Key prefix of the Redis adapter's channels. [default: socket.io]
    #[arg(long, value_name = "KEY", requires = "redis")]
    redis_key: Option<String>,
    /// Address other nodes reach this one at (`HOST:PORT`), announced in Redis with
    /// `--redis`. [default: 127.0.0.1 (or --host) and the bound port]
    #[arg(long, value_name = "HOST:PORT", requires = "redis")]
    advertise: Option<String>,
    /// Node id (4 characters of [A-Za-z0-9_-], or a name hashed to 4). [default: random]
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
}

/// A `"burst"` request.
#[derive(Debug, Deserialize)]
struct Burst {
    n: u64,
    #[serde(default)]
    payload: Value,
}

/// A `"to"` request.
#[derive(Debug, Deserialize)]
struct To {
    room: String,
    event: String,
    #[serde(default)]
    payload: Value,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.threads == 0 {
        eprintln!("bench_server: --threads must be at least 1");
        return ExitCode::from(2);
    }
    if args.workers.is_some() && (args.advertise.is_some() || args.node_id.is_some()) {
        eprintln!("bench_server: --advertise and --node-id name one node; a cluster's workers get their own");
        return ExitCode::from(2);
    }
    if args.workers == Some(0) {
        eprintln!("bench_server: --workers must be at least 1");
        return ExitCode::from(2);
    }
    let filter = match tracing_subscriber::EnvFilter::builder().parse(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("bench_server: invalid --log {:?}: {e}", args.log);
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();

    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.threads).enable_all().build()
    };
    let result = match runtime {
        Ok(rt) if args.workers.is_some() => rt.block_on(cluster(&args)),
        Ok(rt) => rt.block_on(run(&args)),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_server: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The Redis adapter's settings of `--redis`, `--redis-mode` and `--redis-key`.
fn redis_config(args: &Args) -> Option<RedisAdapterConfig> {
    let url = args.redis.as_deref()?;
    let mut config = RedisAdapterConfig::new(url);
    if args.redis_mode.as_deref() == Some("sharded") {
        config = config.mode(RedisMode::Sharded { subscription: SubscriptionMode::Dynamic });
    }
    if let Some(key) = &args.redis_key {
        config = config.key(key.as_str());
    }
    Some(config)
}

/// Cluster mode: the primary balances, each worker runs [`bench_handlers`].
async fn cluster(args: &Args) -> std::io::Result<()> {
    let mut builder = Cluster::builder()
        .workers(args.workers.unwrap_or(1))
        .host(args.host.as_str())
        .port(args.port)
        // the harness waits for this line (stdout is line-buffered: it goes out at once)
        .on_ready(|addr| println!("bench_server listening on http://{addr}"));
    if let Some(config) = redis_config(args) {
        builder = builder.redis(config);
    }
    let cluster = builder.build().map_err(std::io::Error::other)?;
    cluster
        .run(|mut ctx| async move {
            let io = ctx.socketio_builder().build().map_err(std::io::Error::other)?;
            bench_handlers(&io);
            let listener = ctx.take_listener().ok_or_else(|| std::io::Error::other("listener taken"))?;
            shoal::serve(listener, io, ctx.shutdown()).await
        })
        .await
        .map_err(std::io::Error::other)
}

/// Namespace `/` of the benchmark contract.
fn bench_handlers(io: &SocketIo) {
    let ns = io.of("/");
    let handle = ns.clone();
    ns.on_connect(move |socket: Socket| {
        let ns = handle.clone();
        async move { on_connect(&ns, &socket) }
    });
}

async fn run(args: &Args) -> std::io::Result<()> {
    let mut builder = SocketIo::builder();
    if let Some(id) = &args.node_id {
        builder = builder.node_id(NodeId::from_name(id));
    }
    let mut membership = None;
    if let Some(config) = redis_config(args) {
        let (joined, members) = redis_node::join(builder, config).await?;
        builder = joined;
        membership = Some(members);
    }
    let io = builder.build().map_err(std::io::Error::other)?;
    bench_handlers(&io);

    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    let bound = listener.local_addr()?;
    let announcer = match &membership {
        Some(members) => Some(redis_node::announce(members, &io, args.advertise.as_deref(), bound).await?),
        None => None,
    };
    // the harness waits for this line (stdout is line-buffered: it goes out at once)
    println!("bench_server listening on http://{bound}");

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let served = shoal::serve(listener, io, async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
    .await;
    if let Some(a) = &announcer {
        a.leave().await;
    }
    if let Some(m) = membership {
        m.close().await;
    }
    served
}

fn on_connect(ns: &Namespace, socket: &Socket) {
    socket.join(ROOM);

    socket.on("echo", |_socket: Socket, mut ev: Event| async move {
        if let Some(ack) = ev.take_ack() {
            let _ = ack.send_args(ev.into_args());
        }
    });

    let bench = ns.clone();
    socket.on("broadcast", move |_socket: Socket, ev: Event| {
        let ns = bench.clone();
        async move {
            let _ = ns.to(ROOM).emit_args("msg", ev.into_args());
        }
    });

    let bench = ns.clone();
    socket.on("burst", move |_socket: Socket, mut ev: Event| {
        let ns = bench.clone();
        async move {
            let Ok(burst) = ev.data::<Burst>() else { return };
            let Ok(args) = EventArgs::single(&burst.payload) else { return };
            let room = ns.to(ROOM);
            let mut sent = 0u64;
            for i in 0..burst.n {
                if room.emit_args("msg", args.clone()).is_err() {
                    break;
                }
                sent += 1;
                // An emit only queues the packet on each recipient; their writer tasks
                // send it. This loop never waits, so without yielding it would keep the
                // thread (the only one with --threads 1) until the whole burst is queued:
                // no writer would run meanwhile, every queue would grow by n, and past
                // max_buffered_packets (8192) the clients would be dropped as slow
                // consumers. Yielding now and then lets the writers drain the queues
                // while the burst goes on, as a real producer would. The first yield
                // comes right after the first message, so that it reaches every client
                // at once rather than after a whole batch.
                if i == 0 || i % BURST_YIELD_EVERY == BURST_YIELD_EVERY - 1 {
                    tokio::task::yield_now().await;
                }
            }
            let _ = ev.ack(&sent);
        }
    });

    let bench = ns.clone();
    socket.on("count", move |_socket: Socket, mut ev: Event| {
        let ns = bench.clone();
        async move {
            // this node's sockets (the whole of `/` with the in-memory adapter)
            let _ = ev.ack(&ns.socket_count());
        }
    });

    let bench = ns.clone();
    socket.on("to", move |_socket: Socket, ev: Event| {
        let ns = bench.clone();
        async move {
            if let Ok(to) = ev.data::<To>() {
                let _ = ns.to(to.room).emit(&to.event, &to.payload);
            }
        }
    });
}
