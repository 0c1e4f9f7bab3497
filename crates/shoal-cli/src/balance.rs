//! `shoal balance`: the sticky HTTP/WebSocket reverse proxy of `shoal-balance`, with
//! upstreams from `--upstream` or from the nodes' membership in Redis (`--redis`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use shoal_balance::{Balancer, BalancerConfig, HealthConfig, NodeId, OnMissing, Strategy, Upstreams};
use shoal_redis::membership::{Membership, MembershipConfig, NodeInfo};

/// Strategies for new sessions, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum StrategyName {
    /// Fewest open client connections (tunnels and requests in flight).
    #[default]
    LeastConnections,
    /// Each upstream in turn.
    RoundRobin,
    /// At random.
    Random,
    /// Consistent hash of the client's IP address (the TCP peer).
    IpHash,
    /// Consistent hash of one hop of --header.
    HeaderHash,
    /// Consistent hash of --cookie (a cookie holding a sid sends the client back to its
    /// node).
    Cookie,
}

/// What to do when the hashed header or cookie is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum OnMissingName {
    /// Answer 400 with a message naming the missing header or cookie.
    Refuse,
    /// Use least-connections.
    #[default]
    Fallback,
}

/// Flags of `shoal balance`.
#[derive(Debug, clap::Args)]
pub(crate) struct BalanceArgs {
    /// TCP port to listen on; 0 picks a free port (the bound address is logged).
    #[arg(long, short = 'p', value_name = "PORT", default_value_t = 8080)]
    pub(crate) port: u16,

    /// Address to listen on.
    #[arg(long, value_name = "HOST", default_value = "0.0.0.0")]
    pub(crate) host: String,

    /// An upstream node: `HOST:PORT`, or `ID@HOST:PORT` with its 4-character node id
    /// (otherwise learned from its /health or a probe handshake). Repeat for each node.
    #[arg(long, value_name = "[ID@]HOST:PORT")]
    pub(crate) upstream: Vec<String>,

    /// How new sessions (requests without sid) pick a node.
    #[arg(long, value_enum, default_value_t = StrategyName::LeastConnections)]
    pub(crate) strategy: StrategyName,

    /// Header hashed by `--strategy header-hash`.
    #[arg(long, value_name = "NAME", default_value = "x-forwarded-for")]
    pub(crate) header: String,

    /// Which comma-separated element of --header: 0 = first (in X-Forwarded-For, the
    /// original client), 1 = second, -1 = last (the peer of the nearest proxy).
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = shoal_balance::key::parse_hop)]
    pub(crate) header_hop: i32,

    /// Cookie hashed by `--strategy cookie`.
    #[arg(long, value_name = "NAME", default_value = "io")]
    pub(crate) cookie: String,

    /// With header-hash or cookie, when the header or cookie is missing: `refuse` (400)
    /// or `fallback` (least-connections).
    #[arg(long, value_enum, default_value_t = OnMissingName::Fallback)]
    pub(crate) on_missing: OnMissingName,

    /// Path prefix of the Engine.IO requests, routed by their sid.
    #[arg(long, value_name = "PATH", default_value = "/socket.io/")]
    pub(crate) path: String,

    /// Redis URL of the nodes' membership: with no --upstream, the upstreams are the
    /// nodes announced there (added and removed as they come and go).
    #[arg(long, value_name = "URL", env = "SHOAL_REDIS_URL", hide_env_values = true)]
    pub(crate) redis: Option<String>,

    /// Key prefix of the membership in Redis (the nodes' --redis-key).
    #[arg(long, value_name = "KEY", default_value = "socket.io")]
    pub(crate) redis_key: String,

    /// Time between two health checks of a node (GET /health), in milliseconds; 0 turns
    /// active checks off.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub(crate) health_interval: u64,

    /// Time allowed for one health check, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 1500)]
    pub(crate) health_timeout: u64,

    /// Largest request head (request line and headers) from a client, in bytes (at
    /// least 8192); larger ones get 431.
    #[arg(long, value_name = "BYTES", default_value_t = 16384)]
    pub(crate) max_header_bytes: usize,

    /// A client connection with no request in flight and no traffic for this long is
    /// closed, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 120_000)]
    pub(crate) client_idle_timeout: u64,

    /// Time allowed for a request head once its first byte arrived (slow clients), in
    /// milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub(crate) header_read_timeout: u64,

    /// Most client connections and WebSocket tunnels open at once (more wait in the
    /// listen backlog).
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub(crate) max_connections: usize,

    /// On SIGTERM/SIGINT, how long requests in flight and WebSocket tunnels may go on
    /// before exiting, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    pub(crate) drain_timeout: u64,

    /// Time allowed to connect to a node, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 2000)]
    pub(crate) connect_timeout: u64,

    /// Time allowed for a node's response headers, in milliseconds (keep it above the
    /// nodes' ping interval: a polling GET waits that long).
    #[arg(long, value_name = "MS", default_value_t = 60_000)]
    pub(crate) response_timeout: u64,

    /// Listen with SO_REUSEPORT, so that a new `shoal balance --reuse-port` can start on
    /// the same port while this one drains after SIGTERM (a restart without refusing
    /// clients).
    #[arg(long)]
    pub(crate) reuse_port: bool,

    /// Log filter, in tracing's EnvFilter syntax.
    #[arg(long, value_name = "FILTER", default_value = "info")]
    pub(crate) log: String,
}

/// `[ID@]HOST:PORT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UpstreamSpec {
    pub(crate) id: Option<NodeId>,
    pub(crate) host_port: String,
}

/// Parses one `--upstream`.
pub(crate) fn parse_upstream(s: &str) -> Result<UpstreamSpec, String> {
    let (id, rest) = match s.split_once('@') {
        Some((id, rest)) => {
            let id = id.parse::<NodeId>().map_err(|_| {
                format!("--upstream {s:?}: the node id before '@' must be 4 characters of [A-Za-z0-9_-]")
            })?;
            (Some(id), rest)
        }
        None => (None, s),
    };
    let Some((host, port)) = rest.rsplit_once(':') else {
        return Err(format!("--upstream {s:?}: expected HOST:PORT"));
    };
    if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(format!("--upstream {s:?}: expected HOST:PORT with a port from 1 to 65535"));
    }
    Ok(UpstreamSpec { id, host_port: rest.to_owned() })
}

impl BalanceArgs {
    /// The library configuration.
    pub(crate) fn config(&self) -> Result<BalancerConfig, String> {
        let strategy = match self.strategy {
            StrategyName::LeastConnections => Strategy::LeastConnections,
            StrategyName::RoundRobin => Strategy::RoundRobin,
            StrategyName::Random => Strategy::Random,
            StrategyName::IpHash => Strategy::IpHash,
            StrategyName::HeaderHash => Strategy::HeaderHash {
                header: HeaderName::from_bytes(self.header.as_bytes())
                    .map_err(|_| format!("--header {:?} is not a valid header name", self.header))?,
                hop: self.header_hop,
            },
            StrategyName::Cookie => Strategy::Cookie { name: self.cookie.clone() },
        };
        let ms = Duration::from_millis;
        let mut config = BalancerConfig::default();
        config.strategy = strategy;
        config.on_missing = match self.on_missing {
            OnMissingName::Refuse => OnMissing::Refuse,
            OnMissingName::Fallback => OnMissing::Fallback,
        };
        config.path = self.path.clone();
        config.max_header_bytes = self.max_header_bytes;
        config.client_idle_timeout = ms(self.client_idle_timeout);
        config.header_read_timeout = ms(self.header_read_timeout);
        config.max_connections = self.max_connections;
        config.drain_timeout = ms(self.drain_timeout);
        config.health = HealthConfig::default().interval(ms(self.health_interval)).timeout(ms(self.health_timeout));
        config.proxy =
            config.proxy.clone().connect_timeout(ms(self.connect_timeout)).response_timeout(ms(self.response_timeout));
        config.validate().map_err(|e| e.to_string())?;
        if self.upstream.is_empty() && self.redis.is_none() {
            return Err("give the nodes with --upstream HOST:PORT (repeatable), or --redis URL to discover them".into());
        }
        for u in &self.upstream {
            parse_upstream(u)?;
        }
        Ok(config)
    }
}

/// Runs `shoal balance` to the end; the process's exit status.
pub(crate) fn run(args: &BalanceArgs) -> ExitCode {
    let config = match args.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("shoal balance: {e}");
            return ExitCode::FAILURE;
        }
    };
    let filter = match tracing_subscriber::EnvFilter::builder().parse(&args.log) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("shoal balance: log filter {:?}: {e}", args.log);
            return ExitCode::FAILURE;
        }
    };
    crate::run_logged(filter, serve(args, config))
}

async fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    let mut addrs =
        tokio::net::lookup_host(host_port).await.map_err(|e| format!("cannot resolve upstream {host_port}: {e}"))?;
    addrs.next().ok_or_else(|| format!("upstream {host_port} resolves to no address"))
}

async fn serve(args: &BalanceArgs, config: BalancerConfig) -> Result<(), String> {
    let mut builder = Balancer::builder().config(config);
    for u in &args.upstream {
        let spec = parse_upstream(u)?;
        let addr = resolve(&spec.host_port).await?;
        builder = match spec.id {
            Some(id) => builder.upstream_with_id(id, addr),
            None => builder.upstream(addr),
        };
    }
    let balancer = builder.build().map_err(|e| e.to_string())?;
    let discovery = match &args.redis {
        Some(url) if args.upstream.is_empty() => {
            Some(discover(url, &args.redis_key, balancer.upstreams().clone()).await?)
        }
        Some(_) => {
            tracing::warn!("--redis ignored: the upstreams are the --upstream ones");
            None
        }
        None => None,
    };
    let listener = listen(&args.host, args.port, args.reuse_port)
        .await
        .map_err(|e| format!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the bound address: {e}"))?;
    let shutdown =
        shoal_cluster::shutdown_signal("draining").map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let run = balancer.serve(listener, shutdown);
    // scripts and tests wait for this line
    tracing::info!("shoal balance listening on http://{addr}");
    let result = run.await.map_err(|e| e.to_string());
    if let Some(d) = discovery {
        d.close().await;
    }
    result
}

/// Binds the listening socket (with SO_REUSEADDR, and SO_REUSEPORT when asked).
async fn listen(host: &str, port: u16, reuse_port: bool) -> std::io::Result<tokio::net::TcpListener> {
    let addr = tokio::net::lookup_host((host, port))
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "the host resolves to no address"))?;
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Keeps the upstreams in step with the nodes' membership in Redis.
async fn discover(url: &str, key: &str, upstreams: Upstreams) -> Result<Discovery, String> {
    let shown = crate::config::redact_url(url);
    let conn = shoal_redis::RedisConnection::new(url);
    let members = Membership::connect(&conn, MembershipConfig::default().prefix(key))
        .await
        .map_err(|e| format!("cannot follow the membership in Redis ({shown}): {e}"))?;
    let mut changes = members.subscribe();
    let first = changes.borrow_and_update().clone();
    apply_membership(&upstreams, &first);
    tracing::info!(redis = %shown, prefix = %key, nodes = first.len(), "following the nodes' membership");
    let task = tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            let nodes = changes.borrow_and_update().clone();
            apply_membership(&upstreams, &nodes);
        }
    });
    Ok(Discovery { members, task })
}

/// Makes `upstreams` the announced `nodes`: adds and updates them (address, load,
/// draining), removes the others.
pub(crate) fn apply_membership(upstreams: &Upstreams, nodes: &[NodeInfo]) {
    let known: HashMap<NodeId, SocketAddr> =
        upstreams.list().into_iter().filter_map(|u| u.id.map(|id| (id, u.addr))).collect();
    for n in nodes {
        if known.get(&n.id) != Some(&n.addr) {
            tracing::info!(node = %n.id, addr = %n.addr, "node joined");
            upstreams.add(n.id, n.addr);
        }
        upstreams.set_load(n.id, n.load);
        let draining = upstreams.list().iter().any(|u| u.id == Some(n.id) && u.draining);
        if draining != n.draining {
            upstreams.set_draining(n.id, n.draining);
        }
    }
    for (id, addr) in known {
        if !nodes.iter().any(|n| n.id == id) {
            tracing::info!(node = %id, %addr, "node left");
            upstreams.remove(id);
        }
    }
}

/// The running membership watch.
#[derive(Debug)]
struct Discovery {
    members: Arc<Membership>,
    task: tokio::task::JoinHandle<()>,
}

impl Discovery {
    async fn close(self) {
        self.task.abort();
        self.members.close().await;
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::{Cli, Command};

    #[test]
    fn upstream_specs() {
        assert_eq!(
            parse_upstream("127.0.0.1:3001").unwrap(),
            UpstreamSpec { id: None, host_port: "127.0.0.1:3001".into() }
        );
        let s = parse_upstream("ab_-@localhost:80").unwrap();
        assert_eq!(s.id.unwrap().as_str(), "ab_-");
        assert_eq!(s.host_port, "localhost:80");
        assert_eq!(parse_upstream("[::1]:3000").unwrap().host_port, "[::1]:3000");
        for bad in ["127.0.0.1", "abc@127.0.0.1:1", ":3000", "host:0", "host:x", "host:70000"] {
            assert!(parse_upstream(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn balance_flags_parse() {
        let cli = Cli::try_parse_from([
            "shoal",
            "balance",
            "--port",
            "0",
            "--upstream",
            "127.0.0.1:3001",
            "--upstream",
            "node@127.0.0.1:3002",
            "--strategy",
            "header-hash",
            "--header",
            "X-Real-IP",
            "--header-hop",
            "-1",
            "--on-missing",
            "refuse",
        ])
        .unwrap();
        let Command::Balance(args) = cli.command else { panic!("expected balance") };
        assert_eq!(args.port, 0);
        assert_eq!(args.upstream.len(), 2);
        let config = args.config().unwrap();
        assert_eq!(config.strategy, Strategy::HeaderHash { header: HeaderName::from_static("x-real-ip"), hop: -1 });
        assert_eq!(config.on_missing, OnMissing::Refuse);
        for s in ["least-connections", "round-robin", "random", "ip-hash", "header-hash", "cookie"] {
            assert!(Cli::try_parse_from(["shoal", "balance", "--upstream", "h:1", "--strategy", s]).is_ok(), "{s}");
        }
        assert!(Cli::try_parse_from(["shoal", "balance", "--strategy", "sticky"]).is_err());
        // nothing to balance to
        let cli = Cli::try_parse_from(["shoal", "balance"]).unwrap();
        let Command::Balance(args) = cli.command else { panic!("expected balance") };
        assert!(args.config().is_err());
        // limits are checked
        let cli = Cli::try_parse_from(["shoal", "balance", "--upstream", "h:1", "--max-header-bytes", "100"]).unwrap();
        let Command::Balance(args) = cli.command else { panic!("expected balance") };
        assert!(args.config().is_err());
    }
}
