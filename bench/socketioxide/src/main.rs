//! `sx-bench`: the socketioxide side of the Shoal benchmark.
//!
//! It implements the same small contract as Shoal's and Node's bench servers
//! (see `bench/socketioxide/README.md`): on namespace `/` every socket joins the
//! room `bench` (and a room named by its id, as in Node), and the events
//! `echo`, `broadcast`, `burst`, `count` and `to` are handled as described there.
//!
//! With `--redis URL` it uses the `socketioxide-redis` adapter (its own protocol over
//! Redis pub/sub, not `@socket.io/redis-adapter`'s: it can only share rooms with other
//! socketioxide servers), so that several of them act as one server.
//!
//! Usage: `sx-bench --port P [--workers N] [--buffer N] [--redis URL [--redis-buffer N]]`

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::{fmt, io::Write};

use axum::serve::ListenerExt;
use serde::de::{Deserializer, SeqAccess, Visitor};
use serde::ser::{SerializeTuple, Serializer};
use serde::{Deserialize, Serialize};
use socketioxide::adapter::{Adapter, LocalAdapter};
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::{BroadcastError, SocketIo};
use socketioxide_redis::{RedisAdapter, RedisAdapterConfig, RedisAdapterCtr};

/// Value type for payloads. `rmpv::Value` (socketioxide's recommendation for
/// untyped data) keeps binary attachments as binary, unlike `serde_json::Value`.
type Payload = rmpv::Value;

/// Engine.IO per-socket packet buffer; socketioxide's default is 128.
const DEFAULT_BUFFER: usize = 8192;
/// Largest accepted polling payload in bytes (Node's and Shoal's default).
const MAX_PAYLOAD: u64 = 1_000_000;
/// Messages from Redis the adapter queues before dropping (socketioxide-redis's default
/// is 1024; a full queue drops what Redis delivers, with only a log line).
const DEFAULT_REDIS_BUFFER: usize = 8192;
/// Burst handler yields to the runtime after this many emits.
const BURST_YIELD_EVERY: u64 = 64;

/// Packets that socketioxide refused to queue (per target socket), reported on exit.
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Every argument of an event, in order, without the event name and the ack id.
///
/// socketioxide spreads tuple-like types over the argument list: deserializing
/// through `deserialize_tuple` yields all arguments, and serializing with
/// `serialize_tuple` sends each element as its own argument.
struct Args(Vec<Payload>);

impl<'de> Deserialize<'de> for Args {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct ArgsVisitor;
        impl<'de> Visitor<'de> for ArgsVisitor {
            type Value = Args;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of event arguments")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Args, S::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(1));
                while let Some(v) = seq.next_element::<Payload>()? {
                    out.push(v);
                }
                Ok(Args(out))
            }
        }
        // The length is ignored by the JSON deserializer; what matters is that
        // this is a tuple in the serde model.
        de.deserialize_tuple(usize::MAX, ArgsVisitor)
    }
}

impl Serialize for Args {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        let mut t = ser.serialize_tuple(self.0.len())?;
        for v in &self.0 {
            t.serialize_element(v)?;
        }
        t.end()
    }
}

#[derive(Deserialize)]
struct Burst {
    n: u64,
    payload: Payload,
}

#[derive(Deserialize)]
struct To {
    room: String,
    event: String,
    payload: Payload,
}

fn note_result(res: Result<(), BroadcastError>) {
    match res {
        Ok(()) => {}
        Err(BroadcastError::Socket(errs)) => {
            DROPPED.fetch_add(errs.len() as u64, Ordering::Relaxed);
        }
        Err(e) => eprintln!("sx-bench: emit failed: {e}"),
    }
}

async fn on_connect<A: Adapter>(socket: SocketRef<A>) {
    socket.join("bench");
    // Node's adapter puts every socket in a room named by its id, so that
    // `to` can target one socket; socketioxide does not, so do it here.
    socket.join(socket.id);

    socket.on("echo", async |Data::<Args>(args), ack: AckSender<A>| {
        // Without an ack id the send is a no-op, as in Node.
        let _ = ack.send(&args);
    });

    socket.on("broadcast", async |Data::<Payload>(payload), io: SocketIo<A>| {
        note_result(io.to("bench").emit("msg", &payload).await);
    });

    socket.on("burst", async |Data::<Burst>(b), io: SocketIo<A>, ack: AckSender<A>| {
        for i in 1..=b.n {
            note_result(io.to("bench").emit("msg", &b.payload).await);
            // Let the socket writers drain their queues during the burst, first right
            // after the first message (Shoal's bench server does the same).
            if i == 1 || i % BURST_YIELD_EVERY == 0 {
                tokio::task::yield_now().await;
            }
        }
        // Optional: ack with the number of emits once all are queued.
        let _ = ack.send(&b.n);
    });

    socket.on("count", async |ack: AckSender<A>, io: SocketIo<A>| {
        // this node's sockets (the whole of `/` without --redis)
        let _ = ack.send(&io.sockets().len());
    });

    socket.on("to", async |Data::<To>(t), io: SocketIo<A>| {
        note_result(io.to(t.room).emit(t.event, &t.payload).await);
    });
}

struct Opts {
    port: u16,
    workers: usize,
    buffer: usize,
    redis: Option<String>,
    redis_buffer: usize,
}

const USAGE: &str = concat!(
    "usage: sx-bench --port P [--workers N] [--buffer N] [--redis URL [--redis-buffer N]]\n",
    "  --port P          listen on 127.0.0.1:P (required)\n",
    "  --workers N       tokio worker threads; 1 (default) uses the current-thread runtime\n",
    "  --buffer N        engine.io per-socket packet buffer in packets (default 8192)\n",
    "  --redis URL       socketioxide-redis adapter on this Redis (redis://host:port[/db]);\n",
    "                    RESP3 is required and added to the URL (?protocol=resp3)\n",
    "  --redis-buffer N  messages from Redis queued in the adapter before it drops them\n",
    "                    (socketioxide-redis's stream_buffer; default 8192, its own is 1024)",
);

fn parse_args() -> Result<Opts, String> {
    let mut port = None;
    let mut workers = 1usize;
    let mut buffer = DEFAULT_BUFFER;
    let mut redis = None;
    let mut redis_buffer = DEFAULT_REDIS_BUFFER;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        let mut value =
            |what: &str| inline.clone().or_else(|| it.next()).ok_or_else(|| format!("{what} needs a value"));
        match name.as_str() {
            "--port" => port = Some(parse_num::<u16>("--port", &value("--port")?)?),
            "--workers" => workers = parse_num("--workers", &value("--workers")?)?,
            "--buffer" => buffer = parse_num("--buffer", &value("--buffer")?)?,
            "--redis" => redis = Some(value("--redis")?),
            "--redis-buffer" => redis_buffer = parse_num("--redis-buffer", &value("--redis-buffer")?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let port = port.ok_or("--port is required")?;
    if workers == 0 || buffer == 0 || redis_buffer == 0 {
        return Err("--workers, --buffer and --redis-buffer must be at least 1".into());
    }
    Ok(Opts { port, workers, buffer, redis, redis_buffer })
}

fn parse_num<T: std::str::FromStr>(name: &str, s: &str) -> Result<T, String> {
    s.parse().map_err(|_| format!("{name}: invalid number {s:?}"))
}

/// The URL with `protocol=resp3` added if it names no protocol: socketioxide-redis's
/// `redis` driver receives pub/sub messages as RESP3 pushes on a multiplexed connection.
fn resp3_url(url: &str) -> String {
    if url.contains("protocol=") {
        url.to_owned()
    } else if url.contains('?') {
        format!("{url}&protocol=resp3")
    } else {
        format!("{url}?protocol=resp3")
    }
}

async fn run(opts: Opts) -> std::io::Result<()> {
    let builder = SocketIo::builder().max_buffer_size(opts.buffer).max_payload(MAX_PAYLOAD);
    let app = match &opts.redis {
        None => {
            let (layer, io) = builder.build_layer();
            io.ns("/", on_connect::<LocalAdapter>);
            axum::Router::new().layer(layer)
        }
        Some(url) => {
            let client = redis::Client::open(resp3_url(url))
                .map_err(|e| std::io::Error::other(format!("--redis {url:?}: {e}")))?;
            let config = RedisAdapterConfig::new().with_stream_buffer(opts.redis_buffer);
            let adapter = RedisAdapterCtr::new_with_redis_config(&client, config)
                .await
                .map_err(|e| std::io::Error::other(format!("cannot connect to Redis at {url}: {e}")))?;
            let (layer, io) = builder.with_adapter::<RedisAdapter<_>>(adapter).build_layer();
            io.ns("/", on_connect::<RedisAdapter<_>>)
                .await
                .map_err(|e| std::io::Error::other(format!("cannot start the Redis adapter: {e}")))?;
            axum::Router::new().layer(layer)
        }
    };

    let addr = SocketAddr::from(([127, 0, 0, 1], opts.port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let port = listener.local_addr()?.port();
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "bench_server listening on http://127.0.0.1:{port}")?;
        out.flush()?;
    }

    tokio::select! {
        res = axum::serve(listener, app) => res,
        () = shutdown_signal() => Ok(()),
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("sx-bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };

    let rt = if opts.workers == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(opts.workers).enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sx-bench: cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };

    let res = rt.block_on(run(opts));

    let dropped = DROPPED.load(Ordering::Relaxed);
    if dropped > 0 {
        eprintln!("sx-bench: {dropped} packets were dropped on full socket buffers");
    }
    // Exit without waiting for open connections: the harness wants a prompt stop.
    let code = match res {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("sx-bench: {e}");
            1
        }
    };
    std::process::exit(code);
}
