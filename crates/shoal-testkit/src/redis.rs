//! Throw-away `redis-server` processes and clusters on loopback ports.

use std::fs::OpenOptions;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::resp::{RespConnection, RespValue, resp_cmd};
use crate::{free_port, unique_temp_dir};

/// How long a starting `redis-server` may take to answer `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How many ports [`RedisServer::start`] tries when the one it picked was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

const MISSING: &str = "redis-server is not installed (the Redis tests start their own servers): run `scripts/deps` \
                       from the repository root";

/// A `redis-server` on 127.0.0.1 and a free port, with its own temporary directory,
/// persistence off (`--save "" --appendonly no`). Killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    /// The complete argument list (reused by [`RedisServer::restart`]).
    args: Vec<String>,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts a standalone server and waits until it answers `PING`.
    ///
    /// Panics if `redis-server` is not installed (run `scripts/deps`) or does not come up.
    pub async fn start() -> RedisServer {
        RedisServer::start_with_args(&[]).await
    }

    /// As [`RedisServer::start`], with extra `redis-server` arguments (`["--maxclients",
    /// "20"]`, `["--notify-keyspace-events", "KEA"]`, ...).
    pub async fn start_with_args(extra: &[&str]) -> RedisServer {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        RedisServer::start_inner("server", move |_port| extra.clone()).await
    }

    /// Starts a server whose extra arguments depend on its port; retries on a port taken
    /// between [`free_port`] and the server's bind.
    async fn start_inner(what: &str, extra: impl Fn(u16) -> Vec<String>) -> RedisServer {
        let mut last_log = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port();
            let dir = unique_temp_dir(&format!("redis-{what}-{port}"));
            let mut args = vec![
                "--port".to_owned(),
                port.to_string(),
                "--bind".to_owned(),
                "127.0.0.1".to_owned(),
                "--save".to_owned(),
                String::new(),
                "--appendonly".to_owned(),
                "no".to_owned(),
                "--dir".to_owned(),
                dir.display().to_string(),
                "--daemonize".to_owned(),
                "no".to_owned(),
            ];
            args.extend(extra(port));
            let mut server = RedisServer { port, dir, args, child: None };
            server.spawn();
            match server.wait_ready().await {
                Ok(()) => return server,
                Err(log) if log.contains("Address already in use") => {
                    last_log = log;
                    continue; // dropping `server` kills it and removes its directory
                }
                Err(log) => panic!("redis-server on port {port} did not start:\n{log}"),
            }
        }
        panic!("redis-server could not bind a free port in {PORT_ATTEMPTS} attempts; last log:\n{last_log}")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("redis.log")
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "redis-server on port {} is already running", self.port);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", self.log_path().display()));
        let log_err = log.try_clone().expect("clone the log file handle");
        let child = Command::new("redis-server")
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn();
        match child {
            Ok(child) => self.child = Some(child),
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{MISSING}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        }
    }

    /// Waits until the server answers `PING`; `Err(log)` if it exited or timed out.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server exited with {status}; its log:\n{}", self.log()));
            }
            let ping = tokio::time::timeout(Duration::from_millis(500), async {
                let mut conn = RespConnection::connect(self.addr()).await?;
                conn.cmd(&["PING"]).await
            })
            .await;
            if let Ok(Ok(RespValue::Simple(pong))) = ping
                && pong == "PONG"
            {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                let log = self.log();
                self.kill();
                return Err(format!("redis-server did not answer PING within {READY_TIMEOUT:?}; its log:\n{log}"));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The server's log so far (stdout and stderr of every run).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// `redis://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:PORT`
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The server's working directory (`--dir`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (started and not killed).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the server with SIGKILL (a crash, for outage tests) and waits for it to exit.
    /// Connections to it break at once. Does nothing if it is not running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments (after
    /// [`RedisServer::kill`]; a running server is killed first) and waits until it answers.
    /// Its data is gone (persistence is off), as after a real crash without persistence.
    pub async fn restart(&mut self) {
        self.kill();
        // the port was just released by our own process: retry a few times in case the
        // kernel has not let it go yet
        for attempt in 0..20 {
            self.spawn();
            match self.wait_ready().await {
                Ok(()) => return,
                Err(log) if log.contains("Address already in use") && attempt < 19 => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(log) => panic!("redis-server did not restart on port {}:\n{log}", self.port),
            }
        }
    }

    /// Stops the process with SIGSTOP: it keeps its connections but answers nothing until
    /// [`RedisServer::resume`] (an unresponsive Redis, unlike [`RedisServer::kill`]).
    pub fn pause(&self) {
        self.signal("STOP");
    }

    /// Continues a process stopped by [`RedisServer::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.signal("CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().unwrap_or_else(|| panic!("redis-server on port {} is not running", self.port));
        let ok = Command::new("kill").arg(format!("-{sig}")).arg(pid.to_string()).status().is_ok_and(|s| s.success());
        assert!(ok, "kill -{sig} {pid} failed");
    }

    /// Opens a new connection to the server.
    pub async fn connect(&self) -> io::Result<RespConnection> {
        RespConnection::connect(self.addr()).await
    }

    /// Sends one command on a new connection and returns the reply (30 s at most). A Redis
    /// error reply is `Ok(RespValue::Error(..))`; `Err` means Redis could not be reached.
    ///
    /// ```no_run
    /// # async fn demo(redis: &shoal_testkit::RedisServer) {
    /// let subs = redis.cmd(&["PUBSUB", "NUMSUB", "socket.io-request#/#"]).await.unwrap();
    /// # }
    /// ```
    pub async fn cmd<A: AsRef<[u8]>>(&self, args: &[A]) -> io::Result<RespValue> {
        resp_cmd(self.addr(), args).await
    }

    /// `PUBSUB NUMSUB channel`: the subscribers of a classic channel on this server.
    pub async fn numsub(&self, channel: &str) -> i64 {
        numsub_reply(&self.cmd(&["PUBSUB", "NUMSUB", channel]).await.expect("PUBSUB NUMSUB"))
    }

    /// `PUBSUB SHARDNUMSUB channel`: the subscribers of a shard channel on this server.
    pub async fn shardnumsub(&self, channel: &str) -> i64 {
        numsub_reply(&self.cmd(&["PUBSUB", "SHARDNUMSUB", channel]).await.expect("PUBSUB SHARDNUMSUB"))
    }

    /// `PUBSUB CHANNELS pattern` (classic channels with at least one subscriber), sorted.
    pub async fn channels(&self, pattern: &str) -> Vec<String> {
        let mut v = self.cmd(&["PUBSUB", "CHANNELS", pattern]).await.expect("PUBSUB CHANNELS").strings();
        v.sort();
        v
    }

    /// `PUBSUB SHARDCHANNELS pattern` (shard channels with at least one subscriber), sorted.
    pub async fn shard_channels(&self, pattern: &str) -> Vec<String> {
        let mut v = self.cmd(&["PUBSUB", "SHARDCHANNELS", pattern]).await.expect("PUBSUB SHARDCHANNELS").strings();
        v.sort();
        v
    }

    /// `PUBSUB NUMPAT`: the number of pattern subscriptions on this server.
    pub async fn numpat(&self) -> i64 {
        self.cmd(&["PUBSUB", "NUMPAT"]).await.expect("PUBSUB NUMPAT").as_int().expect("integer reply")
    }
}

fn numsub_reply(reply: &RespValue) -> i64 {
    reply
        .as_array()
        .and_then(|a| a.get(1))
        .and_then(RespValue::as_int)
        .unwrap_or_else(|| panic!("unexpected NUMSUB reply {reply}"))
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A Redis Cluster of N masters (no replicas) on loopback ports, created with
/// `redis-cli --cluster create`, every node killed on drop.
///
/// Node-level state (classic pub/sub subscriptions, shard channels) lives on individual
/// nodes: the `*numsub`/`*channels` helpers here add up or merge over every node, which is
/// what `@socket.io/redis-adapter` does for `serverCount()` in cluster mode.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts `masters` nodes (at least 3, Redis Cluster's minimum) with `--cluster-enabled
    /// yes --cluster-node-timeout 5000`, creates the cluster and waits until every node
    /// reports `cluster_state:ok` and knows every other node.
    pub async fn start(masters: usize) -> RedisCluster {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters, not {masters}");
        let mut nodes = Vec::with_capacity(masters);
        for _ in 0..masters {
            let node = RedisServer::start_inner("cluster", |port| {
                // the cluster bus gets its own free port (by default it is port + 10000,
                // which may be taken or above 65535)
                let bus = free_port();
                vec![
                    "--cluster-enabled".to_owned(),
                    "yes".to_owned(),
                    "--cluster-config-file".to_owned(),
                    format!("nodes-{port}.conf"),
                    "--cluster-node-timeout".to_owned(),
                    "5000".to_owned(),
                    "--cluster-port".to_owned(),
                    bus.to_string(),
                ]
            })
            .await;
            nodes.push(node);
        }
        let cluster = RedisCluster { nodes };
        cluster.create().await;
        cluster.wait_ok(Duration::from_secs(30)).await;
        cluster
    }

    async fn create(&self) {
        let mut cmd = tokio::process::Command::new("redis-cli");
        cmd.arg("--cluster").arg("create");
        for n in &self.nodes {
            cmd.arg(format!("127.0.0.1:{}", n.port()));
        }
        cmd.args(["--cluster-replicas", "0", "--cluster-yes"]).stdin(Stdio::null()).kill_on_drop(true);
        let output = match tokio::time::timeout(Duration::from_secs(60), cmd.output()).await {
            Ok(Ok(out)) => out,
            Ok(Err(e)) if e.kind() == io::ErrorKind::NotFound => {
                panic!("redis-cli is not installed: run `scripts/deps` from the repository root")
            }
            Ok(Err(e)) => panic!("cannot run redis-cli: {e}"),
            Err(_) => panic!("redis-cli --cluster create did not finish within 60 s"),
        };
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// Waits until every running node reports `cluster_state:ok` and
    /// `cluster_known_nodes:<all nodes>`.
    pub async fn wait_ok(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let want_known = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let mut last = String::new();
            let mut all_ok = true;
            for n in &self.nodes {
                let info = n.cmd(&["CLUSTER", "INFO"]).await.ok().and_then(|r| r.as_str().map(str::to_owned));
                let info = info.unwrap_or_default();
                let ok = info.lines().any(|l| l.trim() == "cluster_state:ok")
                    && info.lines().any(|l| l.trim() == want_known);
                if !ok {
                    all_ok = false;
                    last = format!("node {}:\n{info}", n.port());
                    break;
                }
            }
            if all_ok {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "the cluster is not ok after {timeout:?}; {last}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `redis://127.0.0.1:P` of every node (a seed list for cluster clients).
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, in creation order.
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }

    /// The nodes, to kill, pause or restart one.
    pub fn nodes_mut(&mut self) -> &mut [RedisServer] {
        &mut self.nodes
    }

    /// Sends one command to every node; the replies in node order.
    pub async fn cmd_all<A: AsRef<[u8]>>(&self, args: &[A]) -> Vec<io::Result<RespValue>> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for n in &self.nodes {
            out.push(n.cmd(args).await);
        }
        out
    }

    /// The node owning the hash slot of `key` (a key or a shard channel name), from
    /// `CLUSTER KEYSLOT` and `CLUSTER SLOTS`.
    pub async fn node_for_key(&self, key: &str) -> &RedisServer {
        let slot = self.nodes[0].cmd(&["CLUSTER", "KEYSLOT", key]).await.expect("CLUSTER KEYSLOT");
        let slot = slot.as_int().unwrap_or_else(|| panic!("CLUSTER KEYSLOT answered {slot}"));
        let slots = self.nodes[0].cmd(&["CLUSTER", "SLOTS"]).await.expect("CLUSTER SLOTS");
        for range in slots.as_array().unwrap_or_default() {
            let Some(r) = range.as_array() else { continue };
            let (Some(lo), Some(hi)) = (r.first().and_then(RespValue::as_int), r.get(1).and_then(RespValue::as_int))
            else {
                continue;
            };
            if (lo..=hi).contains(&slot) {
                let port = r.get(2).and_then(RespValue::as_array).and_then(|m| m.get(1)).and_then(RespValue::as_int);
                if let Some(node) = self.nodes.iter().find(|n| Some(i64::from(n.port())) == port) {
                    return node;
                }
            }
        }
        panic!("no node owns slot {slot} of {key:?}: {slots}")
    }

    /// `PUBSUB NUMSUB channel` added up over every node.
    pub async fn numsub(&self, channel: &str) -> i64 {
        let mut total = 0;
        for n in &self.nodes {
            total += n.numsub(channel).await;
        }
        total
    }

    /// `PUBSUB SHARDNUMSUB channel` added up over every node.
    pub async fn shardnumsub(&self, channel: &str) -> i64 {
        let mut total = 0;
        for n in &self.nodes {
            total += n.shardnumsub(channel).await;
        }
        total
    }

    /// `PUBSUB CHANNELS pattern` merged over every node (sorted, without duplicates).
    pub async fn channels(&self, pattern: &str) -> Vec<String> {
        let mut all = Vec::new();
        for n in &self.nodes {
            all.extend(n.channels(pattern).await);
        }
        all.sort();
        all.dedup();
        all
    }

    /// `PUBSUB SHARDCHANNELS pattern` merged over every node (sorted, without duplicates).
    pub async fn shard_channels(&self, pattern: &str) -> Vec<String> {
        let mut all = Vec::new();
        for n in &self.nodes {
            all.extend(n.shard_channels(pattern).await);
        }
        all.sort();
        all.dedup();
        all
    }
}
