//! Collecting the acknowledgements of a broadcast, from every node.

use std::time::Duration;

use shoal_socketio_proto::Args;
use tokio::sync::mpsc;

/// One client's answer to a broadcast.
#[derive(Debug, Clone, PartialEq)]
pub struct AckResponse {
    /// The id of the socket that answered (when known).
    pub socket: Option<String>,
    /// The arguments of its acknowledgement.
    pub args: Args,
}

/// What nodes report to an [`AckCollector`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AckEvent {
    /// A node reports how many of its clients received the broadcast (once per node).
    Expect(usize),
    /// A client answered.
    Response(AckResponse),
}

/// Where acknowledgements are sent. Cheap to clone; dropping every clone does not end
/// the collection (the timeout does, or all expected answers).
#[derive(Debug, Clone)]
pub struct AckSink(mpsc::UnboundedSender<AckEvent>);

impl AckSink {
    /// A sink and the receiving end of its events (for adapters that forward answers
    /// to other nodes instead of collecting them).
    pub fn channel() -> (AckSink, mpsc::UnboundedReceiver<AckEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (AckSink(tx), rx)
    }

    /// Reports the number of answers a node expects.
    pub fn expect(&self, count: usize) {
        let _ = self.0.send(AckEvent::Expect(count));
    }

    /// Forwards an answer.
    pub fn respond(&self, socket: Option<String>, args: Args) {
        let _ = self.0.send(AckEvent::Response(AckResponse { socket, args }));
    }

    /// True once the collector is gone (finished or timed out): answers are useless.
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Completes once the collector is gone.
    pub async fn closed(&self) {
        self.0.closed().await;
    }
}

/// The collection ended before every expected answer arrived.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("acknowledgement timeout: {} of {expected} answers ({servers_reported} of {servers} nodes reported)", responses.len())]
pub struct AckTimeout {
    /// The answers received in time.
    pub responses: Vec<AckResponse>,
    /// How many answers the nodes that reported expected.
    pub expected: usize,
    /// Nodes that reported.
    pub servers_reported: usize,
    /// Nodes expected to report.
    pub servers: usize,
}

/// Waits for the answers to a broadcast: complete when `servers` nodes have reported
/// their count and that many answers arrived.
#[derive(Debug)]
pub struct AckCollector {
    rx: mpsc::UnboundedReceiver<AckEvent>,
    servers: usize,
    timeout: Duration,
}

impl AckCollector {
    /// A collector expecting `servers` nodes to report, waiting at most `timeout`.
    pub fn new(servers: usize, timeout: Duration) -> (AckSink, AckCollector) {
        let (tx, rx) = mpsc::unbounded_channel();
        (AckSink(tx), AckCollector { rx, servers, timeout })
    }

    /// Changes the number of nodes expected to report (once the adapter knows it).
    pub fn set_servers(&mut self, servers: usize) {
        self.servers = servers;
    }

    /// Waits for every answer or the timeout.
    ///
    /// # Errors
    /// [`AckTimeout`] with the answers received in time.
    pub async fn collect(mut self) -> Result<Vec<AckResponse>, AckTimeout> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut reported = 0usize;
        let mut expected = 0usize;
        let mut responses = Vec::new();
        loop {
            if reported >= self.servers && responses.len() >= expected {
                return Ok(responses);
            }
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Some(AckEvent::Expect(n))) => {
                    reported += 1;
                    expected += n;
                }
                Ok(Some(AckEvent::Response(r))) => responses.push(r),
                Ok(None) | Err(_) => {
                    return Err(AckTimeout { responses, expected, servers_reported: reported, servers: self.servers });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn completes_when_every_server_and_answer_is_in() {
        let (sink, collector) = AckCollector::new(2, Duration::from_secs(5));
        let task = tokio::spawn(collector.collect());
        sink.expect(1);
        sink.respond(Some("a".into()), Args::default());
        sink.expect(0);
        let r = task.await.unwrap().unwrap();
        assert_eq!(r.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_partial_answers() {
        let (sink, collector) = AckCollector::new(1, Duration::from_secs(5));
        sink.expect(3);
        sink.respond(None, Args::default());
        let err = collector.collect().await.unwrap_err();
        assert_eq!(err.responses.len(), 1);
        assert_eq!(err.expected, 3);
        assert!(sink.is_closed());
    }

    #[tokio::test(start_paused = true)]
    async fn zero_clients_complete_at_once() {
        let (sink, collector) = AckCollector::new(1, Duration::from_secs(5));
        sink.expect(0);
        assert!(collector.collect().await.unwrap().is_empty());
    }
}
