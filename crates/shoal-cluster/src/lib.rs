//! # Cluster mode for Shoal: one machine, many processes, one server
//!
//! `shoal serve --workers N`, and the same as a library call: a **primary** process
//! listens on the public port and spawns N **worker** processes (the same program, with
//! `SHOAL_WORKER=<index>` in their environment). The primary balances between them by
//! session id, restarts a worker that dies, and runs an **embedded pub/sub broker**
//! through which the workers' adapters share broadcasts, rooms, acknowledgements and
//! fetch-sockets — no Redis needed. With [`ClusterBuilder::redis`] the workers use Redis
//! instead, and several machines' clusters act as one.
//!
//! ```no_run
//! use shoal_cluster::Cluster;
//!
//! #[tokio::main]
//! async fn main() -> Result<(), shoal_cluster::ClusterError> {
//!     let cluster = Cluster::builder().workers(4).port(3000).build()?;
//!     // in the primary: listens on :3000, runs the workers until SIGTERM/SIGINT;
//!     // in each worker: runs this function
//!     cluster
//!         .run(|mut ctx| async move {
//!             let io = ctx.socketio_builder().build().map_err(std::io::Error::other)?;
//!             io.of("/").on_connect(|socket: shoal::Socket| async move {
//!                 let _ = socket.emit("hello", "from a worker");
//!             });
//!             let listener = ctx.take_listener().expect("the listener is taken once");
//!             shoal::serve(listener, io, ctx.shutdown()).await
//!         })
//!         .await
//! }
//! ```
//!
//! The code before `run` executes in every process, so keep it cheap (parse settings,
//! set up logging) and leave the server to the function given to `run`. A complete
//! program: `examples/cluster_chat.rs`.
//!
//! # How it works
//! - **Primary.** Binds the public address, starts the [`Broker`] on `127.0.0.1:0`, and
//!   spawns the workers with `SHOAL_WORKER=<i>`, `SHOAL_CLUSTER_BROKER=<addr>` and
//!   `SHOAL_CLUSTER_NODE_ID=<id>` (the primary's node id with its last character
//!   replaced by one per index, so every worker's session ids name it) and
//!   `SHOAL_CLUSTER_TOKEN=<secret>` (a random [`AuthToken`] every broker connection
//!   must present first, so other local processes cannot use the broker). The
//!   workers' stdin is a pipe the primary never writes to.
//! - **Workers.** Bind `127.0.0.1:0`, connect to the broker with an [`EmbeddedDriver`],
//!   register (index, pid, node id, address; [`broker::Registration`]) and run the
//!   user's function with a [`WorkerContext`]. A worker stops gracefully when its stdin
//!   reaches its end — the primary closed it, or the primary died, so no orphans
//!   remain — or on SIGTERM/SIGINT.
//! - **Balancing.** The primary runs a `shoal-balance` proxy: a request with a `sid`
//!   goes to the worker its first 4 characters name (polling works without any
//!   stickiness), new sessions by least-connections (default), round-robin or random,
//!   as `@socket.io/sticky` does. WebSocket upgrades are spliced.
//! - **Supervision.** A worker that exits leaves the rotation at once and is restarted
//!   after a delay that starts at 100 ms and doubles up to 10 s while it keeps dying
//!   young; a worker that lived 30 s restarts after 100 ms again. A worker that has not
//!   registered within 30 s is killed and restarted. The primary logs `worker ready`
//!   (index, pid, node, addr) for each registration and `cluster ready` once every
//!   worker served once.
//! - **Shutdown.** On SIGTERM/SIGINT (or the future of [`Cluster::run_until`]) the
//!   primary closes every worker's stdin, waits up to 15 s for them to exit (then kills
//!   them), stops accepting, lets the balancer drain, and returns.
//! - **Drain.** SIGUSR1 on the primary asks every worker to drain: the future of
//!   [`WorkerContext::drain_requested`] completes (also in a worker restarted while
//!   the cluster drains); what draining means is up to the worker (`shoal serve`
//!   refuses new sessions and closes the others after its grace period).
//! - **Embedded adapter.** The workers' adapter is the classic Redis adapter
//!   ([`shoal_redis::ClassicAdapter`], channels `socket.io#<nsp>#…`) over the
//!   [`EmbeddedDriver`]: every cross-worker feature of the Redis adapter works, with
//!   the same semantics (at-most-once delivery, nothing replayed after a reconnection).
//!   The broker's protocol is in [`frame`]; its limits (frame size, per-subscriber
//!   queue: a slow worker is disconnected rather than buffered without bound) in
//!   [`BrokerConfig`].
//!
//! # Limits
//! - One machine per embedded cluster: the broker listens on loopback only. Use
//!   [`ClusterBuilder::redis`] to span machines.
//! - The primary is a single process in front of every connection; it only forwards
//!   bytes, but it is one more hop.
//! - Messages published while a worker's broker connection is down are lost for it
//!   (as with Redis pub/sub).

mod auth;
pub mod broker;
mod cluster;
pub mod driver;
mod errors;
pub mod frame;
mod front;
mod glob;
mod signals;
mod supervisor;
mod worker;

pub use auth::AuthToken;
pub use broker::{Broker, BrokerConfig, BrokerStats, Registration};
pub use cluster::{Cluster, ClusterBuilder, ClusterConfig, default_workers};
pub use driver::{EmbeddedDriver, EmbeddedDriverConfig};
pub use errors::{ClusterError, FrameError};
pub use shoal_balance::Strategy;
pub use signals::shutdown_signal;
pub use worker::{ENV_BROKER, ENV_NODE_ID, ENV_TOKEN, ENV_WORKER, Role, WorkerContext};

/// Completes once the flag is raised (or its sender is gone).
pub(crate) async fn raised(flag: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = flag.wait_for(|f| *f).await;
}
