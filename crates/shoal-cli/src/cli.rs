//! The command line: subcommands and their flags.
//!
//! Flags that configure the node are `Option`s without a clap default, so that a flag
//! that was not given does not override the configuration file (defaults < file < flags).
//! Their defaults live in [`crate::config::ServeConfig::default`] and are quoted in the
//! help text.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{ClusterStrategyName, RedisModeName, SubscriptionModeName};

/// `shoal emit` (declared here, a file of its own next to this one).
#[path = "emit.rs"]
pub(crate) mod emit;

/// Run and operate Shoal Socket.IO nodes.
#[derive(Debug, Parser)]
#[command(name = "shoal", version, propagate_version = true)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a node: Socket.IO on /socket.io/, the demo chat page on /, health on /health.
    ///
    /// Settings come from the defaults, then the `--config` file, then the flags (each
    /// overriding the previous). Stops gracefully on SIGINT or SIGTERM; SIGUSR1 drains
    /// the node (see --drain-grace). With --redis, nodes announce themselves (see
    /// --advertise) and forward requests for other nodes' sessions to them.
    Serve(ServeArgs),
    /// Load-test a Socket.IO server that implements the benchmark contract (see the
    /// `bench_server` example) and print one JSON line of figures; same as `shoal-bench`.
    Bench(shoal_bench::cli::Cli),
    /// Publish on Redis for the Socket.IO servers of a cluster to carry out (Shoal or
    /// Node.js, Redis adapter): an event to their clients, a room join or leave, a
    /// disconnection, or an event to the servers themselves. Exits 0 once Redis accepted
    /// it.
    ///
    /// `shoal emit --redis URL EVENT [JSON_ARG]...` emits EVENT with the arguments (each
    /// one JSON value: quote strings, `'"text"'`) to every client of the namespace;
    /// `--to`/`--except`/`--volatile`/`--compress` narrow it down. Instead of an event:
    /// `--join ROOM`, `--leave ROOM`, `--disconnect [--close]` apply to the targeted
    /// sockets; `--server-side EVENT [JSON_ARG]...` goes to the servers' listeners.
    #[command(allow_negative_numbers = true)]
    Emit(emit::EmitArgs),
    /// Run a sticky HTTP/WebSocket reverse proxy in front of Socket.IO nodes: requests
    /// with a sid go to the node named in it, new sessions by --strategy.
    ///
    /// `shoal balance --port P --upstream HOST:PORT [--upstream …]` (or `--redis URL` to
    /// take the nodes from their membership). Health checks on each node's /health;
    /// WebSocket upgrades passed through. Drains on SIGINT or SIGTERM.
    #[command(allow_negative_numbers = true)]
    Balance(crate::balance::BalanceArgs),
}

/// Flags of `shoal serve`.
#[derive(Debug, Default, Args)]
pub(crate) struct ServeArgs {
    /// TCP port to listen on; 0 picks a free port (the bound address is logged).
    /// [default: 3000]
    #[arg(long, short = 'p', value_name = "PORT")]
    pub(crate) port: Option<u16>,

    /// Address to listen on (an IP address or a host name). [default: 0.0.0.0]
    #[arg(long, value_name = "HOST")]
    pub(crate) host: Option<String>,

    /// Origin allowed to use the HTTP long-polling transport from a browser page served
    /// elsewhere (CORS). Repeat for several; `*` allows any origin. [default: none, so
    /// only same-origin pages]
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub(crate) cors_origin: Vec<String>,

    /// Interval between two heartbeats, in milliseconds. [default: 25000]
    #[arg(long, value_name = "MS")]
    pub(crate) ping_interval: Option<u64>,

    /// How long to wait for the answer to a heartbeat before dropping the connection, in
    /// milliseconds. [default: 20000]
    #[arg(long, value_name = "MS")]
    pub(crate) ping_timeout: Option<u64>,

    /// Largest message (WebSocket) or HTTP body (polling) accepted from a client, in
    /// bytes. [default: 1000000]
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_payload: Option<usize>,

    /// How long a new connection may stay without joining a namespace, in milliseconds.
    /// [default: 45000]
    #[arg(long, value_name = "MS")]
    pub(crate) connect_timeout: Option<u64>,

    /// Most packets queued for sending to one client; past it a regular packet
    /// disconnects the client as a slow consumer. [default: 8192]
    #[arg(long, value_name = "N")]
    pub(crate) max_buffered_packets: Option<usize>,

    /// Most bytes queued for sending to one client (same policy as
    /// --max-buffered-packets). [default: 8388608]
    #[arg(long, value_name = "BYTES")]
    pub(crate) max_buffered_bytes: Option<usize>,

    /// Id of this node, embedded in every session and socket id: 4 characters of
    /// [A-Za-z0-9_-] are used as is, any other name is hashed to 4. [default: random]
    #[arg(long, value_name = "ID")]
    pub(crate) node_id: Option<String>,

    /// Send the `io` affinity cookie with handshakes, for load balancers that stick
    /// sessions by cookie. [default: off]
    #[arg(long)]
    pub(crate) cookie: bool,

    /// Turn the demo chat off: neither its page nor its event handlers (clients can still
    /// connect to namespace `/`; /health stays). In the file: `demo = false`. [default:
    /// the demo is on]
    #[arg(long)]
    pub(crate) no_demo: bool,

    /// Directory of the demo's static files (index.html, and the socket.io-client bundle
    /// in node_modules/socket.io-client/dist/). [default: `web/` in the current
    /// directory, else `web/` next to the binary or in one of its parent directories]
    #[arg(long, value_name = "DIR")]
    pub(crate) demo_dir: Option<PathBuf>,

    /// Log filter, in tracing's EnvFilter syntax (`info`, `debug`,
    /// `warn,shoal=debug`...). [default: info]
    #[arg(long, value_name = "FILTER")]
    pub(crate) log: Option<String>,

    /// TOML configuration file; its keys are the flags' names in snake_case
    /// (`ping_interval = 10000`, `cors_origin = ["*"]`), times in milliseconds, except
    /// --no-demo which is `demo = false`. Unknown keys are an error. Flags override it.
    #[arg(long, short = 'c', value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    /// Validate the merged configuration (defaults, file, flags), print it as TOML and
    /// exit: status 0 if valid, 1 if not.
    #[arg(long)]
    pub(crate) check_config: bool,

    /// Redis URL of the adapter that makes several nodes (Shoal or Node.js) one
    /// (`redis://[user:pass@]host:6379[/db]`, `rediss://…`,
    /// `redis-cluster://host:port?node=host:port`). [default: none, in-memory adapter]
    #[arg(long, value_name = "URL")]
    pub(crate) redis: Option<String>,

    /// Which of Node's Redis adapters to be compatible with: `classic` (createAdapter)
    /// or `sharded` (createShardedAdapter, Redis >= 7). [default: classic]
    #[arg(long, value_name = "MODE", value_enum)]
    pub(crate) redis_mode: Option<RedisModeName>,

    /// Channel prefix of the Redis adapter (Node's `key` / `channelPrefix`). [default:
    /// socket.io]
    #[arg(long, value_name = "KEY")]
    pub(crate) redis_key: Option<String>,

    /// Sharded mode only, the same on every node: which rooms get their own channel
    /// (Node's `subscriptionMode`). [default: dynamic]
    #[arg(long, value_name = "MODE", value_enum)]
    pub(crate) redis_subscription_mode: Option<SubscriptionModeName>,

    /// Internal address other nodes and proxies reach this node at (`HOST:PORT`),
    /// announced in Redis with `--redis`: nodes forward the requests of this node's
    /// sessions there. [default: the bound address, 127.0.0.1 when listening on all
    /// addresses, and the bound port]
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) advertise: Option<String>,

    /// After SIGUSR1 (drain: new connections refused, /health answers 503), how long the
    /// current connections may go on before they are closed (clients reconnect, to
    /// another node), in milliseconds. [default: 30000]
    #[arg(long, value_name = "MS")]
    pub(crate) drain_grace: Option<u64>,
    /// Cluster mode: this process listens on --port and balances between N worker
    /// processes it starts and restarts (sessions routed by sid; broadcasts shared
    /// through an embedded broker, or through Redis with --redis). 0 or 1 runs a single
    /// process. --node-id is then the primary's id, from which the workers' ids are
    /// derived. [default: the number of cores; 1 with --redis or --node-id, a node of a
    /// multi-node deployment]
    #[arg(long, value_name = "N")]
    pub(crate) workers: Option<usize>,

    /// Cluster mode: how new sessions are spread over the workers. [default:
    /// least-connections]
    #[arg(long, value_name = "STRATEGY", value_enum)]
    pub(crate) cluster_strategy: Option<ClusterStrategyName>,
}

/// Runs the command line.
pub(crate) fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Serve(args) => crate::node::run(&args),
        Command::Bench(args) => ExitCode::from(u8::try_from(shoal_bench::cli::run(args)).unwrap_or(1)),
        Command::Emit(args) => emit::run(&args),
        Command::Balance(args) => crate::balance::run(&args),
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_flags_parse() {
        let cli = Cli::try_parse_from([
            "shoal",
            "serve",
            "--port",
            "0",
            "--cors-origin",
            "https://a.example",
            "--cors-origin",
            "*",
            "--cookie",
            "--no-demo",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("expected serve") };
        assert_eq!(args.port, Some(0));
        assert_eq!(args.cors_origin, ["https://a.example", "*"]);
        assert!(args.cookie && args.no_demo && !args.check_config);
        assert_eq!(args.host, None);
        assert_eq!(args.redis, None);
    }

    #[test]
    fn serve_redis_flags_parse() {
        let cli = Cli::try_parse_from([
            "shoal",
            "serve",
            "--redis",
            "redis://127.0.0.1:6379",
            "--redis-mode",
            "sharded",
            "--redis-key",
            "app",
            "--redis-subscription-mode",
            "dynamic-private",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else { panic!("expected serve") };
        assert_eq!(args.redis.as_deref(), Some("redis://127.0.0.1:6379"));
        assert_eq!(args.redis_mode, Some(RedisModeName::Sharded));
        assert_eq!(args.redis_key.as_deref(), Some("app"));
        assert_eq!(args.redis_subscription_mode, Some(SubscriptionModeName::DynamicPrivate));
        assert!(Cli::try_parse_from(["shoal", "serve", "--redis-mode", "streams"]).is_err());
    }

    #[test]
    fn serve_cluster_flags_parse() {
        let cli =
            Cli::try_parse_from(["shoal", "serve", "--advertise", "10.0.0.5:3000", "--drain-grace", "5000"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("expected serve") };
        assert_eq!(args.advertise.as_deref(), Some("10.0.0.5:3000"));
        assert_eq!(args.drain_grace, Some(5000));
        let cli =
            Cli::try_parse_from(["shoal", "serve", "--workers", "3", "--cluster-strategy", "round-robin"]).unwrap();
        let Command::Serve(args) = cli.command else { panic!("expected serve") };
        assert_eq!(args.workers, Some(3));
        assert_eq!(args.cluster_strategy, Some(ClusterStrategyName::RoundRobin));
        assert!(Cli::try_parse_from(["shoal", "serve", "--cluster-strategy", "ip-hash"]).is_err());
        assert!(Cli::try_parse_from(["shoal", "serve", "--workers", "-1"]).is_err());
    }
}
