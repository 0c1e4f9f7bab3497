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
//! the in-memory adapter.
//!
//! `--workers 1` (the default) runs everything on one thread, so that pinning the process
//! to one core (`taskset -c 0`) measures one core. It prints
//! `bench_server listening on http://HOST:PORT` on stdout once bound, and stops on
//! SIGINT or SIGTERM.
//!
//! `cargo run --release --example bench_server -- --port 3000`

use std::process::ExitCode;

use clap::Parser;
use serde::Deserialize;
use serde_json::Value;
use shoal::{Args as EventArgs, Event, Namespace, Socket, SocketIo};
use shoal_redis::{RedisAdapterConfig, RedisAdapterFactory, RedisMode, SubscriptionMode};
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
    /// Tokio worker threads. 1 runs a current-thread runtime: the whole server on one
    /// thread, so on one core when pinned with taskset.
    #[arg(long, default_value_t = 1)]
    workers: usize,
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
    /// Address other nodes reach this one at. Not yet supported.
    #[arg(long, value_name = "ADDR")]
    advertise: Option<String>,
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
    if args.advertise.is_some() {
        eprintln!("bench_server: --advertise is not yet supported");
        return ExitCode::from(2);
    }
    if args.workers == 0 {
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

    let runtime = if args.workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.workers).enable_all().build()
    };
    let result = match runtime {
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

async fn run(args: &Args) -> std::io::Result<()> {
    let mut builder = SocketIo::builder();
    if let Some(config) = redis_config(args) {
        let factory = RedisAdapterFactory::connect(config)
            .await
            .map_err(|e| std::io::Error::other(format!("cannot start the Redis adapter: {e}")))?;
        builder = builder.adapter(factory);
    }
    let io = builder.build().map_err(std::io::Error::other)?;
    let ns = io.of("/");
    let handle = ns.clone();
    ns.on_connect(move |socket: Socket| {
        let ns = handle.clone();
        async move { on_connect(&ns, &socket) }
    });

    let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port)).await?;
    // the harness waits for this line (stdout is line-buffered: it goes out at once)
    println!("bench_server listening on http://{}", listener.local_addr()?);

    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    shoal::serve(listener, io, async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
    .await
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
                // thread (the only one with --workers 1) until the whole burst is queued:
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
