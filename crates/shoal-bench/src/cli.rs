//! The command line of the load generator (also `shoal bench`).

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::scenarios::{self, Target};

/// Load generator for Socket.IO servers (Engine.IO v4 / Socket.IO v5).
#[derive(Parser, Debug)]
#[command(version)]
pub struct Cli {
    /// Address of the server under test.
    #[arg(long, default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    /// Process id of the server, to report its CPU time and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Label of the server in the report.
    #[arg(long, default_value = "server")]
    pub label: String,
    /// Number of loopback source addresses to spread connections over (127.0.0.2 …).
    #[arg(long, default_value_t = 8)]
    pub sources: usize,
    /// Worker threads of the load generator (1 = a single-threaded runtime, for pinning
    /// the load generator to one core).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Connections opened at once when connecting many clients.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
    /// No progress on stderr.
    #[arg(long)]
    pub quiet: bool,
    /// The scenario to run.
    #[command(subcommand)]
    pub scenario: Scenario,
}

/// The scenarios.
#[derive(Subcommand, Debug)]
pub enum Scenario {
    /// Memory per connected idle client and connect rate.
    Idle {
        /// Clients (capped by the open-file limit).
        #[arg(long, default_value_t = 10_000)]
        clients: usize,
        /// Seconds to hold the clients before measuring.
        #[arg(long, default_value_t = 5)]
        settle: u64,
    },
    /// A burst of messages to every client of room "bench".
    Fanout {
        /// Clients in the room.
        #[arg(long, default_value_t = 1000)]
        clients: usize,
        /// Messages in the burst.
        #[arg(long, default_value_t = 1000)]
        messages: usize,
        /// Payload bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Seconds before giving up on missing messages.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Closed-loop echo with acknowledgements.
    Echo {
        /// Clients.
        #[arg(long, default_value_t = 100)]
        clients: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Payload bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
    },
    /// Closed-loop echo over HTTP long-polling only (POST the event, GET its ack). With
    /// `--via`, every request after the handshake goes to that node, which forwards it to
    /// the session's owner (`--addr`): the cost of the forwarding hop.
    Poll {
        /// Clients.
        #[arg(long, default_value_t = 50)]
        clients: usize,
        /// Measured seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Warm-up seconds.
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Payload bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Another node to send the session's requests to (it forwards them to the owner).
        #[arg(long, value_name = "HOST:PORT")]
        via: Option<std::net::SocketAddr>,
        /// Process id of the `--via` node, to report its CPU time per ack.
        #[arg(long, value_name = "PID", requires = "via")]
        via_pid: Option<u32>,
    },
    /// Polling handshake + upgrade + namespace connect, as fast as possible.
    Handshake {
        /// Concurrent loops.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
    },
    /// Clients connected under steady broadcasts; the server's memory must stay flat.
    Soak {
        /// Clients (capped by the open-file limit).
        #[arg(long, default_value_t = 19_000)]
        clients: usize,
        /// Seconds.
        #[arg(long, default_value_t = 600)]
        duration: u64,
        /// Broadcasts per second.
        #[arg(long, default_value_t = 5)]
        rate: u32,
        /// Payload bytes.
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Seconds between memory samples.
        #[arg(long, default_value_t = 10)]
        sample_every: u64,
    },
    /// Several nodes sharing a Redis: clients spread over them, one sender on the first
    /// node broadcasting at a steady rate; delivery rate and latency from emit to delivery.
    Cluster {
        /// The nodes (`HOST:PORT,HOST:PORT,…`); the sender connects to the first one.
        #[arg(long, value_delimiter = ',', required = true)]
        addrs: Vec<SocketAddr>,
        /// Process ids of the nodes, in the order of --addrs (CPU time and memory of each).
        #[arg(long, value_delimiter = ',')]
        server_pids: Vec<u32>,
        /// Process id of Redis (its CPU time during the window).
        #[arg(long)]
        redis_pid: Option<u32>,
        /// Clients in room "bench", spread round-robin over the nodes (the sender is one).
        #[arg(long, default_value_t = 3000)]
        clients: usize,
        /// Broadcasts per second (0: as fast as --max-in-flight allows).
        #[arg(long, default_value_t = 20)]
        rate: u32,
        /// At most this many broadcasts not yet delivered to every client (0: no limit).
        #[arg(long, default_value_t = 0)]
        max_in_flight: u64,
        /// Payload bytes (the send time is inside).
        #[arg(long, default_value_t = 100)]
        payload: usize,
        /// Quiet seconds before sending, to read each node's idle CPU.
        #[arg(long, default_value_t = 0)]
        idle: u64,
        /// Warm-up seconds (sending, not counted).
        #[arg(long, default_value_t = 1)]
        warmup: u64,
        /// Measured seconds.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Longest wait in seconds for the measured messages after the window.
        #[arg(long, default_value_t = 5)]
        drain: u64,
        /// Every client on the first node: room "bench" has no member on the others.
        #[arg(long)]
        room_clients_only_on_first: bool,
    },
}

/// Runs the scenario the command line names and prints its JSON line. Returns the
/// process exit code.
pub fn run(cli: Cli) -> i32 {
    let rt = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(cli.threads).enable_all().build()
    };
    let rt = match rt {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return 1;
        }
    };
    let mut target = Target::new(cli.addr, cli.server_pid, &cli.label, cli.sources);
    target.progress = !cli.quiet;
    target.connect_concurrency = cli.connect_concurrency;
    let result = rt.block_on(async {
        match cli.scenario {
            Scenario::Idle { clients, settle } => {
                scenarios::idle::run(&target, scenarios::idle::Idle { clients, settle: Duration::from_secs(settle) })
                    .await
            }
            Scenario::Fanout { clients, messages, payload, timeout } => {
                let cfg =
                    scenarios::fanout::Fanout { clients, messages, payload, timeout: Duration::from_secs(timeout) };
                scenarios::fanout::run(&target, cfg).await
            }
            Scenario::Echo { clients, duration, warmup, payload } => {
                let cfg = scenarios::echo::Echo {
                    clients,
                    duration: Duration::from_secs(duration),
                    warmup: Duration::from_secs(warmup),
                    payload,
                };
                scenarios::echo::run(&target, cfg).await
            }
            Scenario::Poll { clients, duration, warmup, payload, via, via_pid } => {
                let cfg = scenarios::poll::Poll {
                    clients,
                    duration: Duration::from_secs(duration),
                    warmup: Duration::from_secs(warmup),
                    payload,
                    via,
                    via_pid,
                };
                scenarios::poll::run(&target, cfg).await
            }
            Scenario::Handshake { concurrency, duration } => {
                let cfg = scenarios::handshake::Handshake { concurrency, duration: Duration::from_secs(duration) };
                scenarios::handshake::run(&target, cfg).await
            }
            Scenario::Soak { clients, duration, rate, payload, sample_every } => {
                let cfg = scenarios::soak::Soak {
                    clients,
                    duration: Duration::from_secs(duration),
                    rate,
                    payload,
                    sample_every: Duration::from_secs(sample_every),
                };
                scenarios::soak::run(&target, cfg).await
            }
            Scenario::Cluster {
                addrs,
                server_pids,
                redis_pid,
                clients,
                rate,
                max_in_flight,
                payload,
                idle,
                warmup,
                duration,
                drain,
                room_clients_only_on_first,
            } => {
                let cfg = scenarios::cluster::Cluster {
                    addrs,
                    server_pids,
                    redis_pid,
                    clients,
                    rate,
                    max_in_flight,
                    payload,
                    idle: Duration::from_secs(idle),
                    warmup: Duration::from_secs(warmup),
                    duration: Duration::from_secs(duration),
                    drain: Duration::from_secs(drain),
                    room_only_on_first: room_clients_only_on_first,
                };
                scenarios::cluster::run(&target, cfg).await
            }
        }
    });
    match result {
        Ok(v) => {
            println!("{v}");
            0
        }
        Err(e) => {
            eprintln!("scenario failed: {e}");
            1
        }
    }
}
