//! Socket.IO server settings.

use std::time::Duration;

use shoal_engineio::EngineConfig;

/// Socket.IO settings (the Engine.IO ones are in [`SocketIoConfig::engine`]).
#[derive(Debug, Clone)]
pub struct SocketIoConfig {
    /// Transport settings. Its `path` defaults to `/socket.io/` here.
    pub engine: EngineConfig,
    /// How long a new connection may stay without joining any namespace. Default 45 s.
    pub connect_timeout: Duration,
    /// Default timeout of `emit_with_ack` when none is given. Default 10 s.
    pub ack_timeout: Duration,
    /// Most binary attachments in one packet. Default 10.
    pub max_attachments: usize,
    /// Most bytes of attachments in one packet. Default 10 MB.
    pub max_attachment_bytes: usize,
    /// How long the binary attachments of one packet may take to arrive after its text
    /// part; past it the connection is closed. Default 10 s.
    pub attachments_timeout: Duration,
    /// Most acknowledgements a socket may owe the server at once; further
    /// `emit_with_ack` calls fail. Default 1024.
    pub max_pending_acks: usize,
    /// Most handlers of one connection that may be waiting at once (handlers that finish
    /// without waiting do not count). Past it, the connection stops reading until some
    /// finish, so one client cannot pile up unbounded work. Default 512.
    pub max_pending_handlers: usize,
    /// Remove a dynamic child namespace when its last socket leaves. Default false.
    pub cleanup_empty_child_namespaces: bool,
}

impl Default for SocketIoConfig {
    fn default() -> Self {
        let engine = EngineConfig { path: "/socket.io/".into(), ..EngineConfig::default() };
        SocketIoConfig {
            engine,
            connect_timeout: Duration::from_secs(45),
            ack_timeout: Duration::from_secs(10),
            max_attachments: 10,
            max_attachment_bytes: 10_000_000,
            attachments_timeout: Duration::from_secs(10),
            max_pending_acks: 1024,
            max_pending_handlers: 512,
            cleanup_empty_child_namespaces: false,
        }
    }
}

impl SocketIoConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// A description of the first invalid setting.
    pub fn validate(&self) -> Result<(), String> {
        self.engine.validate()?;
        if self.connect_timeout.is_zero() {
            return Err("connect_timeout must be positive".into());
        }
        if self.max_pending_handlers == 0 {
            return Err("max_pending_handlers must be positive".into());
        }
        if self.max_pending_acks == 0 {
            return Err("max_pending_acks must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn limits(&self) -> shoal_socketio_proto::Limits {
        shoal_socketio_proto::Limits {
            max_attachments: self.max_attachments,
            max_attachment_bytes: self.max_attachment_bytes,
        }
    }
}
