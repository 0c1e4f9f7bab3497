//! The servers the official protocol test suites expect, on one port:
//! - `/engine.io/`: a raw Engine.IO echo server (every message sent back unchanged);
//! - `/socket.io/`: the Socket.IO test application (namespaces `/` and `/custom`).
//!
//! Both use pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1 000 000 and (Socket.IO)
//! connectTimeout 1000 ms, with CORS open to any origin.
//!
//! `--redis URL [--redis-mode classic|sharded] [--redis-key KEY]` puts the Socket.IO server
//! on the Redis adapter; nodes then announce themselves (`--advertise HOST:PORT`) and
//! forward the requests of each other's sessions. `--node-id ID` fixes the node id.
//!
//! `cargo run --release --example conformance -- --port 3000`

#[path = "support/redis_node.rs"]
mod redis_node;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser;
use shoal::{Event, Socket, SocketIo};
use shoal_engineio::{
    AllowedOrigins, CloseReason, Cors, Engine, EngineConfig, EngineHandler, EngineService, Message, OutPacket, Session,
};
use shoal_redis::{RedisAdapterConfig, RedisMode, SubscriptionMode};

#[derive(Parser, Debug)]
struct Args {
    /// Port to listen on.
    #[arg(long, default_value_t = 3000)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Redis URL: run the Socket.IO server on the Redis adapter (the suites must pass the
    /// same); in-memory adapter without it.
    #[arg(long, value_name = "URL")]
    redis: Option<String>,
    /// How the Redis adapter talks: `classic` or `sharded` (dynamic subscriptions).
    /// [default: classic]
    #[arg(long, value_name = "MODE", value_parser = ["classic", "sharded"], requires = "redis")]
    redis_mode: Option<String>,
    /// Key prefix of the Redis adapter's channels. [default: socket.io]
    #[arg(long, value_name = "KEY", requires = "redis")]
    redis_key: Option<String>,
    /// Address other nodes reach this one at (`HOST:PORT`), announced in Redis with
    /// `--redis` (nodes then forward the requests of each other's sessions).
    /// [default: 127.0.0.1 (or --host) and the port]
    #[arg(long, value_name = "HOST:PORT", requires = "redis")]
    advertise: Option<String>,
    /// Node id (4 characters of [A-Za-z0-9_-], or a name hashed to 4). [default: random]
    #[arg(long, value_name = "ID")]
    node_id: Option<String>,
}

/// Sends every message back as it came.
#[derive(Debug)]
struct Echo;

impl EngineHandler for Echo {
    type Data = ();
    fn on_open(&self, _session: &Arc<Session<()>>) {}
    fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let packet = match message {
            Message::Text(t) => {
                let mut b = Vec::with_capacity(t.len() + 1);
                b.push(b'4');
                b.extend_from_slice(&t);
                OutPacket::Text(Bytes::from(b))
            }
            Message::Binary(b) => OutPacket::Binary(b),
        };
        let _ = session.send(packet);
    }
    fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
}

fn auth_then_handlers(socket: &Socket, with_messages: bool) {
    let _ = socket.emit("auth", socket.handshake().auth());
    if with_messages {
        socket.on("message", |socket: Socket, ev: Event| async move {
            let _ = socket.emit_args("message-back", ev.into_args());
        });
        socket.on("message-with-ack", |_socket: Socket, mut ev: Event| async move {
            let args = ev.args().clone();
            let _ = ev.ack_args(args);
        });
    }
}

// One thread, like the Node servers the suites were written against: requests on
// different connections are handled in the order they arrive. (The Engine.IO suite's
// "forcefully closes the session" test sends a GET and a POST "close" at once and expects
// the GET, sent first, to be answered before the session closes; with several threads the
// POST can win the race, and the GET then gets 400, as it would on Node had it come second.)
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let args = Args::parse();

    let ping_interval = Duration::from_millis(300);
    let ping_timeout = Duration::from_millis(200);

    let mut builder = SocketIo::builder();
    if let Some(id) = &args.node_id {
        builder = builder.node_id(shoal::NodeId::from_name(id));
    }
    let mut membership = None;
    if let Some(url) = &args.redis {
        let mut config = RedisAdapterConfig::new(url.as_str());
        if args.redis_mode.as_deref() == Some("sharded") {
            config = config.mode(RedisMode::Sharded { subscription: SubscriptionMode::Dynamic });
        }
        if let Some(key) = &args.redis_key {
            config = config.key(key.as_str());
        }
        let (joined, members) = redis_node::join(builder, config).await?;
        builder = joined;
        membership = Some(members);
    }
    let io = builder
        .ping_interval(ping_interval)
        .ping_timeout(ping_timeout)
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors_origins(["*"])
        .build()
        .map_err(std::io::Error::other)?;
    io.of("/").on_connect(|socket: Socket| async move { auth_then_handlers(&socket, true) });
    io.of("/custom").on_connect(|socket: Socket| async move { auth_then_handlers(&socket, false) });

    let echo_config = EngineConfig::builder()
        .path("/engine.io/")
        .ping_interval(ping_interval)
        .ping_timeout(ping_timeout)
        .max_payload(1_000_000)
        .cors(Cors::new(AllowedOrigins::Any))
        .build()
        .map_err(std::io::Error::other)?;
    let echo = EngineService::new(Engine::new(echo_config, Arc::new(Echo)), shoal_engineio::NotFound);

    let addr: SocketAddr = format!("{}:{}", args.host, args.port).parse().map_err(std::io::Error::other)?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let announcer = match &membership {
        Some(members) => Some(redis_node::announce(members, &io, args.advertise.as_deref(), bound).await?),
        None => None,
    };
    eprintln!("conformance server listening on {bound}");
    let served = shoal::serve_with(listener, io, echo, shoal::ServerConfig::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    if let Some(a) = &announcer {
        a.leave().await;
    }
    served
}
