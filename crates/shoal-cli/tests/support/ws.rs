//! Raw WebSocket clients ([`WsClient`]).

use std::time::Duration;

use shoal_bench::conn::WsClient;

/// The next text frame of `ws` that is not a heartbeat (pings are answered), waiting at
/// most `within` for each frame.
pub async fn next_packet(ws: &mut WsClient, within: Duration) -> String {
    loop {
        let f = tokio::time::timeout(within, ws.next_text()).await.expect("a frame in time").expect("connection");
        if &f[..] == b"2" {
            ws.queue_text(b"3");
            ws.flush().await.unwrap();
            continue;
        }
        return String::from_utf8_lossy(&f).into_owned();
    }
}
