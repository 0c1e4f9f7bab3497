//! A raw Engine.IO echo server (every message sent back unchanged), as the official
//! Engine.IO protocol test suite expects it: `cargo run --example engine_echo -- 3000`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use shoal_engineio::{
    AllowedOrigins, CloseReason, Cors, Engine, EngineConfig, EngineHandler, EngineService, Message, NotFound,
    OutPacket, Session, server,
};

#[derive(Debug)]
struct Echo;

impl EngineHandler for Echo {
    type Data = ();
    fn on_open(&self, _session: &Arc<Session<()>>) {}
    fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let packet = match message {
            Message::Text(t) => {
                let mut b = Vec::with_capacity(t.len() + 1);
                b.push(b'4');
                b.extend_from_slice(&t);
                OutPacket::Text(Bytes::from(b))
            }
            Message::Binary(b) => OutPacket::Binary(b),
        };
        let _ = session.send(packet);
    }
    fn on_close(&self, _session: &Arc<Session<()>>, _reason: CloseReason) {}
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args().nth(1).and_then(|p| p.parse().ok()).unwrap_or(3000);
    let config = EngineConfig::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .cors(Cors::new(AllowedOrigins::Any))
        .build()
        .map_err(std::io::Error::other)?;
    let engine = Engine::new(config, Arc::new(Echo));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    server::serve(listener, EngineService::new(engine, NotFound), server::ServerConfig::default(), async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}
