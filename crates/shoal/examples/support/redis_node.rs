//! What the `bench_server` and `conformance` examples share to run as one node of many
//! over Redis: the adapter, forwarding through the membership, and the announcement.
//! Included with `#[path = "support/redis_node.rs"] mod redis_node;` (a subdirectory, so
//! cargo does not build it as an example of its own).

use std::net::SocketAddr;
use std::sync::Arc;

use shoal::{SocketIo, SocketIoBuilder};
use shoal_redis::RedisAdapterFactory;
use shoal_redis::membership::{Announcer, Membership, MembershipConfig, NodeStatus};

/// Puts the Redis adapter of `config` on `builder`, and forwarding of other nodes'
/// sessions to the addresses the membership (same key prefix) gives; returns the
/// membership, to announce the node in once it listens ([`announce`]).
pub(crate) async fn join(
    builder: SocketIoBuilder,
    config: shoal_redis::RedisAdapterConfig,
) -> std::io::Result<(SocketIoBuilder, Arc<Membership>)> {
    let (connection, key) = (config.connection.clone(), config.key.clone());
    let factory = RedisAdapterFactory::connect(config)
        .await
        .map_err(|e| std::io::Error::other(format!("cannot start the Redis adapter: {e}")))?;
    let members = Membership::connect(&connection, MembershipConfig::default().prefix(key))
        .await
        .map_err(|e| std::io::Error::other(format!("cannot start the membership: {e}")))?;
    let directory = members.clone();
    let builder = builder.adapter(factory).node_directory(Arc::new(move |id: shoal::NodeId| directory.address(id)));
    Ok((builder, members))
}

/// Announces `io`'s node, listening on `bound`, at `advertise` (default: the bound
/// address, 127.0.0.1 for "any"), with its session count and draining state.
pub(crate) async fn announce(
    members: &Membership,
    io: &SocketIo,
    advertise: Option<&str>,
    bound: SocketAddr,
) -> std::io::Result<Announcer> {
    let status = io.clone();
    let status =
        Arc::new(move || NodeStatus { load: status.connection_count() as u64, draining: status.is_draining() });
    members.announce_at(io.node_id(), advertise, bound, status).await
}
