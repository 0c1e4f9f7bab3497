//! The little of the protocols the load generator needs.

/// What an incoming text frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// Engine.IO open packet (`0{…}`).
    Open,
    /// Engine.IO ping (`2`): answer with a pong.
    Ping,
    /// `3probe` during an upgrade.
    PongProbe,
    /// Socket.IO CONNECT answer on `/` (`40{…}`).
    Connected,
    /// Socket.IO CONNECT_ERROR.
    ConnectError,
    /// An event on `/` named `name` (`42["name",…`).
    Event {
        /// The event name.
        name: &'a [u8],
        /// The whole frame.
        raw: &'a [u8],
    },
    /// An ack on `/` (`43<id>[…]`).
    Ack {
        /// The ack id.
        id: u64,
        /// The arguments' JSON.
        raw: &'a [u8],
    },
    /// Anything else (noop, close, other namespaces).
    Other,
}

/// Classifies an incoming text frame.
pub fn classify(frame: &[u8]) -> Incoming<'_> {
    match frame {
        [b'0', ..] => Incoming::Open,
        [b'2'] => Incoming::Ping,
        b"3probe" => Incoming::PongProbe,
        [b'4', b'0', ..] => Incoming::Connected,
        [b'4', b'4', ..] => Incoming::ConnectError,
        [b'4', b'2', b'[', b'"', rest @ ..] => {
            let end = rest.iter().position(|&c| c == b'"').unwrap_or(rest.len());
            Incoming::Event { name: &rest[..end], raw: frame }
        }
        [b'4', b'3', rest @ ..] => {
            let digits = rest.iter().take_while(|c| c.is_ascii_digit()).count();
            let id = rest[..digits].iter().fold(0u64, |acc, &d| acc.wrapping_mul(10).wrapping_add(u64::from(d - b'0')));
            Incoming::Ack { id, raw: &rest[digits..] }
        }
        _ => Incoming::Other,
    }
}

/// `42<id>["event",<json>]` (an event on `/` with an ack id when `id` is given).
pub fn event(out: &mut Vec<u8>, event: &str, json_arg: &str, id: Option<u64>) {
    out.clear();
    out.extend_from_slice(b"42");
    if let Some(id) = id {
        out.extend_from_slice(id.to_string().as_bytes());
    }
    out.extend_from_slice(b"[\"");
    out.extend_from_slice(event.as_bytes());
    out.extend_from_slice(b"\"");
    if !json_arg.is_empty() {
        out.push(b',');
        out.extend_from_slice(json_arg.as_bytes());
    }
    out.push(b']');
}

/// A JSON string of `len` bytes (ASCII), for payloads.
pub fn payload_string(len: usize) -> String {
    let body: String = (0..len.saturating_sub(2)).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
    format!("\"{body}\"")
}

/// Extracts the `sid` of an Engine.IO open packet.
pub fn open_sid(frame: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(frame.strip_prefix(b"0")?).ok()?;
    let v: serde_json::Value = serde_json::from_str(s).ok()?;
    v.get("sid")?.as_str().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_table() {
        assert_eq!(classify(b"0{\"sid\":\"x\"}"), Incoming::Open);
        assert_eq!(classify(b"2"), Incoming::Ping);
        assert_eq!(classify(b"3probe"), Incoming::PongProbe);
        assert_eq!(classify(b"40{\"sid\":\"abc\"}"), Incoming::Connected);
        assert_eq!(classify(b"44{\"message\":\"no\"}"), Incoming::ConnectError);
        assert_eq!(classify(b"42[\"msg\",\"x\"]"), Incoming::Event { name: b"msg", raw: b"42[\"msg\",\"x\"]" });
        assert_eq!(classify(b"4312[\"x\"]"), Incoming::Ack { id: 12, raw: b"[\"x\"]" });
        assert_eq!(classify(b"43[1]"), Incoming::Ack { id: 0, raw: b"[1]" });
        assert_eq!(classify(b"6"), Incoming::Other);
        assert_eq!(classify(b"42/chat,[\"msg\"]"), Incoming::Other);
        assert_eq!(classify(b""), Incoming::Other);
    }

    #[test]
    fn building() {
        let mut out = Vec::new();
        event(&mut out, "echo", "\"x\"", Some(7));
        assert_eq!(out, b"427[\"echo\",\"x\"]");
        event(&mut out, "count", "", Some(0));
        assert_eq!(out, b"420[\"count\"]");
        event(&mut out, "burst", "{\"n\":3}", None);
        assert_eq!(out, b"42[\"burst\",{\"n\":3}]");
        let p = payload_string(100);
        assert_eq!(p.len(), 100);
        assert_eq!(open_sid(b"0{\"sid\":\"abc\",\"upgrades\":[]}").as_deref(), Some("abc"));
        assert_eq!(open_sid(b"4x"), None);
    }
}
