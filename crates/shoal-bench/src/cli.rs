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
