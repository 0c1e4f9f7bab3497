//! Helpers shared by the emitter's integration tests: running the commands of
//! `tests/js-redis/emitter.mjs` with the Rust emitter, and capturing what is published.

#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{Value, json};
use shoal_emitter::{Args, Emitter};
use shoal_testkit::{RedisServer, RespConnection, RespValue};

/// Converts the `{"$bin": base64}` convention of the Node scripts into arguments with
/// attachments.
pub fn wire_args(values: &[Value]) -> Args {
    fn walk(v: &Value, attachments: &mut Vec<Bytes>) -> Value {
        match v {
            Value::Array(a) => Value::Array(a.iter().map(|v| walk(v, attachments)).collect()),
            Value::Object(m) => {
                if let (1, Some(Value::String(b64))) = (m.len(), m.get("$bin")) {
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
                    attachments.push(Bytes::from(bytes));
                    return json!({"_placeholder": true, "num": attachments.len() - 1});
                }
                Value::Object(m.iter().map(|(k, v)| (k.clone(), walk(v, attachments))).collect())
            }
            other => other.clone(),
        }
    }
    let mut attachments = Vec::new();
    let values = values.iter().map(|v| walk(v, &mut attachments)).collect();
    Args { values, attachments }
}

fn list(v: Option<&Value>) -> Vec<String> {
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().map(|r| r.as_str().expect("room").to_owned()).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(other) => panic!("not a list: {other}"),
    }
}

/// The emitter a command targets, the way `emitter.mjs` builds it: namespace, rooms,
/// exceptions, volatile, then compress.
pub fn target(base: &Emitter, cmd: &Value) -> Emitter {
    let mut e = base.clone().of(cmd.get("nsp").and_then(Value::as_str).unwrap_or("/"));
    for r in list(cmd.get("rooms")) {
        e = e.to(r);
    }
    for r in list(cmd.get("except")) {
        e = e.except(r);
    }
    if cmd.get("volatile").and_then(Value::as_bool) == Some(true) {
        e = e.volatile();
    }
    if let Some(c) = cmd.get("compress") {
        e = e.compress(c.as_bool().unwrap_or(false));
    }
    e
}

/// Runs one `emitter.mjs` command with the Rust emitter.
pub async fn run(base: &Emitter, cmd: &Value) {
    let e = target(base, cmd);
    let args = || {
        let values = cmd.get("args").and_then(Value::as_array).cloned().unwrap_or_default();
        wire_args(&values)
    };
    let event = || cmd.get("event").and_then(Value::as_str).expect("event").to_owned();
    let r = match cmd.get("cmd").and_then(Value::as_str).expect("cmd") {
        "emit" => e.emit_args(&event(), args()).await,
        "socketsJoin" => e.sockets_join(list(cmd.get("join"))).await,
        "socketsLeave" => e.sockets_leave(list(cmd.get("leave"))).await,
        "disconnectSockets" => e.disconnect_sockets(cmd.get("close").and_then(Value::as_bool) == Some(true)).await,
        "serverSideEmit" => base.clone().of(e.namespace()).server_side_emit_args(&event(), args()).await,
        other => panic!("unknown command {other}"),
    };
    r.unwrap_or_else(|e| panic!("{cmd}: {e}"));
}

/// Lower-case hex with spaces, for failure messages.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

/// A connection that sees what is published: `PSUBSCRIBE *` (classic) or `SSUBSCRIBE`
/// of given channels (sharded pub/sub has no patterns).
pub struct Capture {
    conn: RespConnection,
}

impl Capture {
    /// Everything published with `PUBLISH`.
    pub async fn classic(redis: &RedisServer) -> Capture {
        let mut conn = redis.connect().await.unwrap();
        let r = conn.cmd(&["PSUBSCRIBE", "*"]).await.unwrap();
        assert!(!r.is_error(), "{r}");
        Capture { conn }
    }

    /// What is published with `SPUBLISH` on `channels`.
    pub async fn sharded(redis: &RedisServer, channels: &[&str]) -> Capture {
        let mut conn = redis.connect().await.unwrap();
        for c in channels {
            let r = conn.cmd(&["SSUBSCRIBE", c]).await.unwrap();
            assert!(!r.is_error(), "{r}");
        }
        Capture { conn }
    }

    /// The next message: `(channel, payload)`, within 5 s.
    pub async fn next(&mut self) -> (String, Vec<u8>) {
        match self.conn.read_timeout(Duration::from_secs(5)).await.unwrap() {
            Some(v) => Self::message(&v).unwrap_or_else(|| panic!("not a message: {v}")),
            None => panic!("nothing published within 5 s"),
        }
    }

    /// Every message arriving within `quiet` (stops at the first silence).
    pub async fn drain(&mut self, quiet: Duration) -> Vec<(String, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(v) = self.conn.read_timeout(quiet).await.unwrap() {
            out.push(Self::message(&v).unwrap_or_else(|| panic!("not a message: {v}")));
        }
        out
    }

    fn message(v: &RespValue) -> Option<(String, Vec<u8>)> {
        let a = v.as_array()?;
        match a.first()?.as_str()? {
            "pmessage" => Some((a.get(2)?.as_str()?.to_owned(), a.get(3)?.as_bytes()?.to_vec())),
            "message" | "smessage" => Some((a.get(1)?.as_str()?.to_owned(), a.get(2)?.as_bytes()?.to_vec())),
            _ => None,
        }
    }
}
