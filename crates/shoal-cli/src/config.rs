//! The configuration of `shoal serve`: defaults, then a TOML file, then flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shoal::{AllowedOrigins, CookieConfig, Cors, NodeId, SocketIoConfig};

use crate::cli::ServeArgs;

/// Everything `shoal serve` needs, as merged from the defaults, the TOML file and the
/// flags. Also the TOML file's schema: the same keys as the flags, in snake_case, times
/// in milliseconds; absent keys keep their default, unknown keys are an error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct ServeConfig {
    /// TCP port (0: any free port).
    pub(crate) port: u16,
    /// Address to listen on.
    pub(crate) host: String,
    /// Origins allowed by CORS (`*`: any); empty: no CORS headers.
    pub(crate) cors_origin: Vec<String>,
    /// Heartbeat interval, ms.
    pub(crate) ping_interval: u64,
    /// Heartbeat timeout, ms.
    pub(crate) ping_timeout: u64,
    /// Largest incoming message or polling body, bytes.
    pub(crate) max_payload: usize,
    /// Time allowed to join a namespace after connecting, ms.
    pub(crate) connect_timeout: u64,
    /// Per-client send queue limit, packets.
    pub(crate) max_buffered_packets: usize,
    /// Per-client send queue limit, bytes.
    pub(crate) max_buffered_bytes: usize,
    /// Node id (or a name hashed to one); random when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) node_id: Option<String>,
    /// Send the `io` affinity cookie.
    pub(crate) cookie: bool,
    /// Serve the demo chat page (`--no-demo` sets it to false).
    pub(crate) demo: bool,
    /// Where the demo's files are; searched for when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) demo_dir: Option<PathBuf>,
    /// Log filter (tracing EnvFilter syntax).
    pub(crate) log: String,
    /// Redis URL of the adapter that makes several nodes one; in-memory when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis: Option<String>,
    /// Which of Node's Redis adapters to be compatible with.
    pub(crate) redis_mode: RedisModeName,
    /// Channel prefix of the Redis adapter (Node's `key` / `channelPrefix`).
    pub(crate) redis_key: String,
    /// Sharded mode only: which rooms get their own channel; `dynamic` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) redis_subscription_mode: Option<SubscriptionModeName>,
    /// Internal `host:port` announced to the other nodes; derived from the bound address
    /// when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) advertise: Option<String>,
    /// Grace period of a drain (SIGUSR1) before the remaining connections are closed, ms.
    pub(crate) drain_grace: u64,
    /// Cluster mode's worker processes (0 or 1: a single process); when absent, the
    /// number of cores, or 1 with `redis` or `node_id` (see [`ServeConfig::worker_count`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) workers: Option<usize>,
    /// Cluster mode: how new sessions are spread over the workers.
    pub(crate) cluster_strategy: ClusterStrategyName,
}

/// `--cluster-strategy` / `cluster_strategy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum ClusterStrategyName {
    /// The worker with the fewest open connections.
    #[default]
    LeastConnections,
    /// Each worker in turn.
    RoundRobin,
    /// A random worker.
    Random,
}

impl ClusterStrategyName {
    /// The library's value.
    pub(crate) fn strategy(self) -> shoal_cluster::Strategy {
        match self {
            ClusterStrategyName::LeastConnections => shoal_cluster::Strategy::LeastConnections,
            ClusterStrategyName::RoundRobin => shoal_cluster::Strategy::RoundRobin,
            ClusterStrategyName::Random => shoal_cluster::Strategy::Random,
        }
    }
}

/// Most worker processes accepted.
pub(crate) const MAX_WORKERS: usize = 1024;

/// `--redis-mode` / `redis_mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RedisModeName {
    /// Node's `createAdapter` (PUBLISH/SUBSCRIBE).
    #[default]
    Classic,
    /// Node's `createShardedAdapter` (SPUBLISH/SSUBSCRIBE, Redis >= 7).
    Sharded,
}

/// `--redis-subscription-mode` / `redis_subscription_mode` (Node's `subscriptionMode`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum SubscriptionModeName {
    /// One channel per namespace.
    Static,
    /// Plus one channel per public room.
    #[default]
    Dynamic,
    /// Plus one channel per room, socket ids included.
    DynamicPrivate,
}

impl SubscriptionModeName {
    /// The library's value.
    pub(crate) fn mode(self) -> shoal_redis::SubscriptionMode {
        match self {
            SubscriptionModeName::Static => shoal_redis::SubscriptionMode::Static,
            SubscriptionModeName::Dynamic => shoal_redis::SubscriptionMode::Dynamic,
            SubscriptionModeName::DynamicPrivate => shoal_redis::SubscriptionMode::DynamicPrivate,
        }
    }
}

/// Checks the Redis settings shared by `serve` and `emit`: a URL with a scheme, a
/// non-empty key, and a subscription mode only with the sharded mode.
pub(crate) fn check_redis(
    url: &str,
    mode: RedisModeName,
    key: &str,
    subscription: Option<SubscriptionModeName>,
) -> Result<(), ConfigError> {
    if url.trim().is_empty() || !url.contains("://") {
        return Err(ConfigError::Invalid(format!(
            "redis {:?}: expected a URL such as redis://host:6379, rediss://…, redis-cluster://host:port?node=host:port",
            redact_url(url)
        )));
    }
    if key.is_empty() {
        return Err(ConfigError::Invalid("redis_key must not be empty".into()));
    }
    if subscription.is_some() && mode != RedisModeName::Sharded {
        return Err(ConfigError::Invalid("redis_subscription_mode only applies to redis_mode = \"sharded\"".into()));
    }
    Ok(())
}

/// `url` without its password (for messages and logs).
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let Some(at) = rest[..authority_end].rfind('@') else { return url.to_owned() };
    match rest[..at].split_once(':') {
        Some(("", _)) => format!("{scheme}://***{}", &rest[at..]),
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[at..]),
        // a user name alone is no secret
        None => url.to_owned(),
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            port: 3000,
            host: "0.0.0.0".into(),
            cors_origin: Vec::new(),
            ping_interval: 25_000,
            ping_timeout: 20_000,
            max_payload: 1_000_000,
            connect_timeout: 45_000,
            max_buffered_packets: 8192,
            max_buffered_bytes: 8 * 1024 * 1024,
            node_id: None,
            cookie: false,
            demo: true,
            demo_dir: None,
            log: "info".into(),
            redis: None,
            redis_mode: RedisModeName::Classic,
            redis_key: "socket.io".into(),
            redis_subscription_mode: None,
            advertise: None,
            drain_grace: 30_000,
            workers: None,
            cluster_strategy: ClusterStrategyName::LeastConnections,
        }
    }
}

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("invalid configuration file {}:\n{source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Where and why (toml's message quotes the line).
        source: Box<toml::de::Error>,
    },
    /// A setting is out of range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ServeConfig {
    /// Parses a TOML document over the defaults.
    pub(crate) fn from_toml(text: &str) -> Result<ServeConfig, toml::de::Error> {
        toml::from_str(text)
    }

    /// Reads a TOML file over the defaults.
    pub(crate) fn from_file(path: &Path) -> Result<ServeConfig, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), source: Box::new(e) })
    }

    /// The defaults, overridden by the file of `--config` if any, overridden by the
    /// flags that were given. Not validated yet.
    pub(crate) fn load(args: &ServeArgs) -> Result<ServeConfig, ConfigError> {
        let mut config = match &args.config {
            Some(path) => Self::from_file(path)?,
            None => ServeConfig::default(),
        };
        config.apply_flags(args);
        Ok(config)
    }

    /// Overrides the settings whose flag was given.
    pub(crate) fn apply_flags(&mut self, args: &ServeArgs) {
        fn set<T: Clone>(slot: &mut T, flag: Option<&T>) {
            if let Some(v) = flag {
                slot.clone_from(v);
            }
        }
        set(&mut self.port, args.port.as_ref());
        set(&mut self.host, args.host.as_ref());
        set(&mut self.ping_interval, args.ping_interval.as_ref());
        set(&mut self.ping_timeout, args.ping_timeout.as_ref());
        set(&mut self.max_payload, args.max_payload.as_ref());
        set(&mut self.connect_timeout, args.connect_timeout.as_ref());
        set(&mut self.max_buffered_packets, args.max_buffered_packets.as_ref());
        set(&mut self.max_buffered_bytes, args.max_buffered_bytes.as_ref());
        set(&mut self.log, args.log.as_ref());
        if let Some(id) = &args.node_id {
            self.node_id = Some(id.clone());
        }
        if let Some(dir) = &args.demo_dir {
            self.demo_dir = Some(dir.clone());
        }
        // a list given on the command line replaces the file's, it does not extend it
        if !args.cors_origin.is_empty() {
            self.cors_origin.clone_from(&args.cors_origin);
        }
        if args.cookie {
            self.cookie = true;
        }
        if args.no_demo {
            self.demo = false;
        }
        if let Some(url) = &args.redis {
            self.redis = Some(url.clone());
        }
        set(&mut self.redis_mode, args.redis_mode.as_ref());
        set(&mut self.redis_key, args.redis_key.as_ref());
        if let Some(m) = args.redis_subscription_mode {
            self.redis_subscription_mode = Some(m);
        }
        if let Some(a) = &args.advertise {
            self.advertise = Some(a.clone());
        }
        set(&mut self.drain_grace, args.drain_grace.as_ref());
        if let Some(n) = args.workers {
            self.workers = Some(n);
        }
        set(&mut self.cluster_strategy, args.cluster_strategy.as_ref());
    }

    /// The number of worker processes (0 and 1 both mean a single process, no cluster):
    /// `workers` when set; else the number of cores for a standalone server, but 1 for a
    /// node of a multi-node deployment (`redis` or `node_id` set), because other nodes,
    /// `shoal balance` and forwarding address each node by its node id and address,
    /// which a cluster's workers do not share.
    pub(crate) fn worker_count(&self) -> usize {
        match self.workers {
            Some(n) => n,
            None if self.redis.is_some() || self.node_id.is_some() => 1,
            None => shoal_cluster::default_workers(),
        }
    }

    /// The Redis adapter's settings, when `redis` is set.
    pub(crate) fn redis_adapter_config(&self) -> Option<shoal_redis::RedisAdapterConfig> {
        let url = self.redis.as_ref()?;
        let mode = match self.redis_mode {
            RedisModeName::Classic => shoal_redis::RedisMode::Classic,
            RedisModeName::Sharded => shoal_redis::RedisMode::Sharded {
                subscription: self.redis_subscription_mode.unwrap_or_default().mode(),
            },
        };
        Some(shoal_redis::RedisAdapterConfig::new(url.as_str()).key(self.redis_key.as_str()).mode(mode))
    }

    /// The Socket.IO settings, validated.
    pub(crate) fn socketio_config(&self) -> Result<SocketIoConfig, ConfigError> {
        let mut c = SocketIoConfig::default();
        c.engine.ping_interval = Duration::from_millis(self.ping_interval);
        c.engine.ping_timeout = Duration::from_millis(self.ping_timeout);
        c.engine.max_payload = self.max_payload;
        c.engine.max_buffered_packets = self.max_buffered_packets;
        c.engine.max_buffered_bytes = self.max_buffered_bytes;
        c.connect_timeout = Duration::from_millis(self.connect_timeout);
        if let Some(id) = &self.node_id {
            if id.trim().is_empty() {
                return Err(ConfigError::Invalid("node_id must not be empty".into()));
            }
            c.engine.node_id = NodeId::from_name(id);
        }
        c.engine.cors = self.cors()?;
        c.engine.cookie = self.cookie.then(CookieConfig::default);
        c.validate().map_err(ConfigError::Invalid)?;
        Ok(c)
    }

    fn cors(&self) -> Result<Option<Cors>, ConfigError> {
        if self.cors_origin.is_empty() {
            return Ok(None);
        }
        for origin in &self.cors_origin {
            if origin.trim().is_empty() {
                return Err(ConfigError::Invalid("cors_origin: an origin must not be empty".into()));
            }
            if origin != "*" && origin.ends_with('/') {
                return Err(ConfigError::Invalid(format!(
                    "cors_origin {origin:?}: an origin has no trailing '/' (browsers send `https://example.com`)"
                )));
            }
        }
        let origins = if self.cors_origin.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else {
            AllowedOrigins::List(self.cors_origin.clone())
        };
        Ok(Some(Cors::new(origins)))
    }

    /// Checks every setting: the Socket.IO limits, the address and the log filter.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if self.host.trim().is_empty() {
            return Err(ConfigError::Invalid("host must not be empty".into()));
        }
        if let Some(a) = &self.advertise {
            let port = a.rsplit_once(':').and_then(|(h, p)| (!h.is_empty()).then_some(p)).map(str::parse::<u16>);
            if !matches!(port, Some(Ok(p)) if p != 0) {
                return Err(ConfigError::Invalid(format!("advertise {a:?}: expected HOST:PORT (10.0.0.5:3000)")));
            }
        }
        self.socketio_config()?;
        self.log_filter()?;
        match &self.redis {
            Some(url) => check_redis(url, self.redis_mode, &self.redis_key, self.redis_subscription_mode)?,
            None if self.redis_mode != RedisModeName::Classic || self.redis_subscription_mode.is_some() => {
                return Err(ConfigError::Invalid("redis_mode and redis_subscription_mode need redis (a URL)".into()));
            }
            None => {}
        }
        if self.workers.is_some_and(|n| n > MAX_WORKERS) {
            return Err(ConfigError::Invalid(format!("workers must be at most {MAX_WORKERS}")));
        }
        Ok(())
    }

    /// The parsed log filter.
    pub(crate) fn log_filter(&self) -> Result<tracing_subscriber::EnvFilter, ConfigError> {
        tracing_subscriber::EnvFilter::builder()
            .parse(&self.log)
            .map_err(|e| ConfigError::Invalid(format!("log filter {:?}: {e}", self.log)))
    }

    /// The configuration as a TOML document (what `--check-config` prints), the Redis
    /// password hidden.
    pub(crate) fn to_toml(&self) -> String {
        let mut shown = self.clone();
        shown.redis = self.redis.as_deref().map(redact_url);
        // only strings, integers, booleans and arrays of strings: cannot fail
        toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot print the configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(f: impl FnOnce(&mut ServeArgs)) -> ServeArgs {
        let mut a = ServeArgs::default();
        f(&mut a);
        a
    }

    #[test]
    fn defaults_are_the_documented_ones() {
        let c = ServeConfig::default();
        assert_eq!((c.port, c.host.as_str()), (3000, "0.0.0.0"));
        assert_eq!((c.ping_interval, c.ping_timeout, c.max_payload), (25_000, 20_000, 1_000_000));
        assert_eq!(c.log, "info");
        assert!(c.demo && !c.cookie && c.cors_origin.is_empty());
        c.validate().unwrap();
        // the library's own defaults agree with ours
        let lib = SocketIoConfig::default();
        let ours = c.socketio_config().unwrap();
        assert_eq!(ours.engine.ping_interval, lib.engine.ping_interval);
        assert_eq!(ours.engine.max_buffered_packets, lib.engine.max_buffered_packets);
        assert_eq!(ours.engine.max_buffered_bytes, lib.engine.max_buffered_bytes);
        assert_eq!(ours.connect_timeout, lib.connect_timeout);
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(ServeConfig::from_toml("").unwrap(), ServeConfig::default());
    }

    #[test]
    fn precedence_defaults_then_file_then_flags() {
        let file = ServeConfig::from_toml(
            r#"
            port = 4000
            host = "127.0.0.1"
            ping_interval = 1000
            cors_origin = ["https://a.example"]
            log = "debug"
            "#,
        )
        .unwrap();
        // the file overrides the defaults, and only where it says something
        assert_eq!((file.port, file.host.as_str(), file.ping_interval), (4000, "127.0.0.1", 1000));
        assert_eq!(file.ping_timeout, 20_000);
        assert!(file.demo);

        let mut merged = file.clone();
        merged.apply_flags(&args(|a| {
            a.port = Some(5000);
            a.ping_timeout = Some(700);
            a.cors_origin = vec!["https://b.example".into()];
            a.no_demo = true;
            a.cookie = true;
        }));
        // flags override the file...
        assert_eq!((merged.port, merged.ping_timeout), (5000, 700));
        assert_eq!(merged.cors_origin, ["https://b.example"]);
        assert!(!merged.demo && merged.cookie);
        // ...and flags not given leave it alone
        assert_eq!((merged.host.as_str(), merged.ping_interval, merged.log.as_str()), ("127.0.0.1", 1000, "debug"));

        // no flags at all: the file as is
        let mut same = file.clone();
        same.apply_flags(&ServeArgs::default());
        assert_eq!(same, file);
    }

    #[test]
    fn load_reads_the_file_then_applies_flags() {
        let path = std::env::temp_dir().join(format!("shoal-cli-load-{}.toml", std::process::id()));
        std::fs::write(&path, "port = 4100\nmax_payload = 2048\n").unwrap();
        let c = ServeConfig::load(&args(|a| {
            a.config = Some(path.clone());
            a.max_payload = Some(4096);
        }))
        .unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!((c.port, c.max_payload), (4100, 4096));
    }

    #[test]
    fn missing_file_is_a_clear_error() {
        let e = ServeConfig::from_file(Path::new("/nonexistent/shoal.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("cannot read configuration file /nonexistent/shoal.toml"), "{msg}");
    }

    #[test]
    fn unknown_key_is_an_error() {
        let e = ServeConfig::from_toml("port = 1\nping_intervall = 5\n").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("unknown field `ping_intervall`"), "{msg}");
        assert!(ServeConfig::from_toml("[server]\nport = 1\n").is_err());
    }

    #[test]
    fn mistyped_value_is_an_error() {
        let e = ServeConfig::from_toml("port = \"3000\"\n").unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
        assert!(ServeConfig::from_toml("port = 70000\n").is_err());
        assert!(ServeConfig::from_toml("ping_interval = -1\n").is_err());
    }

    #[test]
    fn invalid_limits_are_rejected() {
        let cases: [(&str, &str); 7] = [
            ("max_payload = 0", "max_payload must be positive"),
            ("ping_interval = 0", "ping interval and timeout must be positive"),
            ("ping_timeout = 0", "ping interval and timeout must be positive"),
            ("ping_interval = 5000000000", "32 bits"),
            ("connect_timeout = 0", "connect_timeout must be positive"),
            ("max_buffered_packets = 0", "buffer limits must be positive"),
            ("max_buffered_bytes = 0", "buffer limits must be positive"),
        ];
        for (toml, expected) in cases {
            let c = ServeConfig::from_toml(toml).unwrap();
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.starts_with("invalid configuration: ") && msg.contains(expected), "{toml}: {msg}");
        }
    }

    #[test]
    fn other_invalid_settings_are_rejected() {
        for toml in [
            "host = \"\"",
            "node_id = \" \"",
            "cors_origin = [\"\"]",
            "cors_origin = [\"https://a.example/\"]",
            "log = \"info,=[\"",
            "advertise = \"nohost\"",
            "advertise = \":3000\"",
            "advertise = \"h:0\"",
            "advertise = \"h:port\"",
        ] {
            let c = ServeConfig::from_toml(toml).unwrap();
            assert!(c.validate().is_err(), "{toml} should be invalid");
        }
        for toml in ["advertise = \"10.0.0.5:3000\"", "advertise = \"node-1.internal:80\"", "drain_grace = 0"] {
            ServeConfig::from_toml(toml).unwrap().validate().unwrap();
        }
    }

    #[test]
    fn settings_reach_the_library_config() {
        let c = ServeConfig::from_toml(
            r#"
            ping_interval = 1500
            ping_timeout = 700
            max_payload = 2048
            connect_timeout = 900
            max_buffered_packets = 16
            max_buffered_bytes = 4096
            node_id = "ab_-"
            cookie = true
            cors_origin = ["https://a.example", "*"]
            "#,
        )
        .unwrap();
        let s = c.socketio_config().unwrap();
        assert_eq!(s.engine.ping_interval, Duration::from_millis(1500));
        assert_eq!(s.engine.ping_timeout, Duration::from_millis(700));
        assert_eq!(s.engine.max_payload, 2048);
        assert_eq!(s.connect_timeout, Duration::from_millis(900));
        assert_eq!((s.engine.max_buffered_packets, s.engine.max_buffered_bytes), (16, 4096));
        assert_eq!(s.engine.node_id.as_str(), "ab_-");
        assert_eq!(s.engine.cookie.map(|c| c.name).as_deref(), Some("io"));
        assert!(matches!(s.engine.cors.map(|c| c.origins), Some(AllowedOrigins::Any)));

        // a longer name is hashed to a stable id
        let named = ServeConfig { node_id: Some("node-a".into()), ..ServeConfig::default() };
        let id = named.socketio_config().unwrap().engine.node_id;
        assert_eq!(id, NodeId::from_name("node-a"));
        assert_eq!(ServeConfig::default().socketio_config().unwrap().engine.cors.map(|_| ()), None);
    }

    #[test]
    fn redis_settings_from_file_and_flags() {
        let c = ServeConfig::from_toml(
            "redis = \"redis://127.0.0.1:6379\"\nredis_mode = \"sharded\"\nredis_key = \"app\"\n\
             redis_subscription_mode = \"dynamic-private\"\n",
        )
        .unwrap();
        c.validate().unwrap();
        let r = c.redis_adapter_config().unwrap();
        assert_eq!((r.connection.url.as_str(), r.key.as_str()), ("redis://127.0.0.1:6379", "app"));
        assert_eq!(
            r.mode,
            shoal_redis::RedisMode::Sharded { subscription: shoal_redis::SubscriptionMode::DynamicPrivate }
        );
        assert_eq!(ServeConfig::from_toml(&c.to_toml()).unwrap(), c);
        let secret = ServeConfig { redis: Some("redis://u:pw@h:1".into()), ..ServeConfig::default() };
        assert!(secret.to_toml().contains("redis = \"redis://u:***@h:1\""), "{}", secret.to_toml());

        // flags override; sharded without a subscription mode is dynamic
        let mut c = ServeConfig::default();
        assert!(c.redis_adapter_config().is_none());
        c.apply_flags(&args(|a| {
            a.redis = Some("redis://h:1".into());
            a.redis_mode = Some(RedisModeName::Sharded);
        }));
        c.validate().unwrap();
        let r = c.redis_adapter_config().unwrap();
        assert_eq!(r.mode, shoal_redis::RedisMode::Sharded { subscription: shoal_redis::SubscriptionMode::Dynamic });
        assert_eq!(r.key, "socket.io");
        let mut classic = ServeConfig::default();
        classic.apply_flags(&args(|a| a.redis = Some("redis://h:1".into())));
        assert_eq!(classic.redis_adapter_config().unwrap().mode, shoal_redis::RedisMode::Classic);
    }

    #[test]
    fn invalid_redis_settings_are_rejected() {
        for (toml, expected) in [
            ("redis = \"\"", "expected a URL"),
            ("redis = \"localhost:6379\"", "expected a URL"),
            ("redis = \"redis://h\"\nredis_key = \"\"", "redis_key must not be empty"),
            ("redis = \"redis://h\"\nredis_subscription_mode = \"static\"", "only applies to redis_mode"),
            ("redis_mode = \"sharded\"", "need redis"),
        ] {
            let c = ServeConfig::from_toml(toml).unwrap();
            let msg = c.validate().unwrap_err().to_string();
            assert!(msg.contains(expected), "{toml}: {msg}");
        }
        assert!(ServeConfig::from_toml("redis_mode = \"streams\"").is_err());
        assert!(ServeConfig::from_toml("redis_subscription_mode = \"dynamic_private\"").is_err());
    }

    #[test]
    fn cluster_settings_from_file_and_flags() {
        let c = ServeConfig::from_toml("workers = 3\ncluster_strategy = \"random\"\n").unwrap();
        c.validate().unwrap();
        assert_eq!((c.worker_count(), c.cluster_strategy), (3, ClusterStrategyName::Random));
        assert_eq!(ServeConfig::from_toml(&c.to_toml()).unwrap(), c);
        let mut c = c;
        c.apply_flags(&args(|a| {
            a.workers = Some(1);
            a.cluster_strategy = Some(ClusterStrategyName::RoundRobin);
        }));
        assert_eq!((c.worker_count(), c.cluster_strategy), (1, ClusterStrategyName::RoundRobin));
        // absent: the number of cores, or 1 for a node of a multi-node deployment
        assert_eq!(ServeConfig::default().worker_count(), shoal_cluster::default_workers());
        let node = ServeConfig { node_id: Some("n1".into()), ..ServeConfig::default() };
        assert_eq!(node.worker_count(), 1);
        let redis = ServeConfig { redis: Some("redis://h:1".into()), ..ServeConfig::default() };
        assert_eq!(redis.worker_count(), 1);
        assert_eq!(ServeConfig { workers: Some(4), ..redis }.worker_count(), 4);
        assert!(ServeConfig::from_toml("workers = 5000").unwrap().validate().is_err());
        assert!(ServeConfig::from_toml("cluster_strategy = \"ip-hash\"").is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact_url("redis://user:secret@h:6379/0"), "redis://user:***@h:6379/0");
        assert_eq!(redact_url("redis://:secret@h:6379"), "redis://***@h:6379");
        assert_eq!(redact_url("rediss://h:6379?x=a@b"), "rediss://h:6379?x=a@b");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        assert_eq!(redact_url("redis://user@h:6379"), "redis://user@h:6379");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn printed_config_reads_back_the_same() {
        let mut c = ServeConfig::default();
        c.apply_flags(&args(|a| {
            a.port = Some(1234);
            a.node_id = Some("n1".into());
            a.demo_dir = Some("/srv/web".into());
            a.cors_origin = vec!["*".into()];
        }));
        let text = c.to_toml();
        assert!(text.contains("port = 1234"), "{text}");
        assert_eq!(ServeConfig::from_toml(&text).unwrap(), c);
        assert_eq!(ServeConfig::from_toml(&ServeConfig::default().to_toml()).unwrap(), ServeConfig::default());
    }
}
