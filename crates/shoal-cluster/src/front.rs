//! The primary's public side: the `shoal-balance` proxy, fed with the workers as they
//! register and leave.

use std::net::SocketAddr;
use std::sync::Arc;

use shoal::NodeId;
use shoal_balance::{Balancer, BalancerConfig, Upstreams};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::errors::ClusterError;
use crate::supervisor::Rotation;

/// The balancer's upstream set as the supervisor's rotation.
struct BalancerRotation(Upstreams);

impl Rotation for BalancerRotation {
    fn add(&self, node: NodeId, addr: SocketAddr) {
        self.0.add(node, addr);
    }

    fn remove(&self, node: NodeId) {
        self.0.remove(node);
    }
}

/// The balancer's task: its error, if it failed.
pub(crate) type FrontTask = JoinHandle<Result<(), String>>;

/// Starts the balancer on `listener`; it stops accepting when `stop` is raised and
/// returns once its connections are drained (up to its drain timeout).
pub(crate) fn start(
    listener: TcpListener,
    config: BalancerConfig,
    mut stop: watch::Receiver<bool>,
) -> Result<(Arc<dyn Rotation>, FrontTask), ClusterError> {
    let balancer =
        Balancer::builder().config(config).build().map_err(|e| ClusterError::Config(format!("balancer: {e}")))?;
    let rotation: Arc<dyn Rotation> = Arc::new(BalancerRotation(balancer.upstreams().clone()));
    let task = tokio::spawn(async move {
        let shutdown = async move { crate::raised(&mut stop).await };
        balancer.serve(listener, shutdown).await.map_err(|e| e.to_string())
    });
    Ok((rotation, task))
}
