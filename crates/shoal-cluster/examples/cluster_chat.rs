//! A Rust application running clustered: `cargo run -p shoal-cluster --example
//! cluster_chat -- 3000 4` serves on port 3000 with 4 worker processes. Every client
//! joins room `chat`; a `"say"` event goes to the whole room, whichever worker each
//! member is on (the embedded broker carries it), tagged with the worker that received
//! it.

use shoal::{Event, Socket};
use shoal_cluster::{Cluster, ClusterError};

#[tokio::main]
async fn main() -> Result<(), ClusterError> {
    // this part runs in every process (the primary and each worker): settings only
    let mut args = std::env::args().skip(1);
    let port = args.next().and_then(|p| p.parse().ok()).unwrap_or(3000);
    let workers = args.next().and_then(|n| n.parse().ok()).unwrap_or_else(shoal_cluster::default_workers);
    let cluster = Cluster::builder()
        .workers(workers)
        .host("127.0.0.1")
        .port(port)
        .on_ready(|addr| println!("cluster_chat on http://{addr}"))
        .build()?;
    // the primary balances and supervises; each worker runs this
    cluster
        .run(|mut ctx| async move {
            let io = ctx.socketio_builder().build().map_err(std::io::Error::other)?;
            let worker = ctx.index();
            let room = io.clone();
            io.of("/").on_connect(move |socket: Socket| {
                let io = room.clone();
                async move {
                    socket.join("chat");
                    socket.on("say", move |_socket: Socket, ev: Event| {
                        let io = io.clone();
                        async move {
                            let text = ev.data::<String>().unwrap_or_default();
                            let _ = io.to("chat").emit("said", &(text, worker));
                        }
                    });
                }
            });
            let listener = ctx.take_listener().ok_or_else(|| std::io::Error::other("listener taken"))?;
            shoal::serve(listener, io, ctx.shutdown()).await
        })
        .await
}
