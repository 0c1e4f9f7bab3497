//! Protocol errors: the HTTP error codes and malformed packets.

/// The error codes an Engine.IO server answers HTTP requests with, as Node's engine.io does.
///
/// The body is JSON `{"code":<n>,"message":"<text>"}`; the status is 400, except 403 for
/// [`ErrorCode::Forbidden`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 0: the `transport` query parameter is missing, unknown or disabled.
    TransportUnknown,
    /// 1: the `sid` is not (or no longer) known to this server.
    UnknownSid,
    /// 2: a handshake (a request without `sid`) that is not a `GET`.
    BadHandshakeMethod,
    /// 3: anything else that is wrong with the request (transport mismatch, bad upgrade...).
    BadRequest,
    /// 4: the `allow_request` hook refused the handshake (HTTP 403).
    Forbidden,
    /// 5: `EIO` is missing or is not `4`.
    UnsupportedProtocolVersion,
}

impl ErrorCode {
    /// The numeric code.
    pub fn code(self) -> u8 {
        match self {
            Self::TransportUnknown => 0,
            Self::UnknownSid => 1,
            Self::BadHandshakeMethod => 2,
            Self::BadRequest => 3,
            Self::Forbidden => 4,
            Self::UnsupportedProtocolVersion => 5,
        }
    }

    /// The message Node sends for this code.
    pub fn message(self) -> &'static str {
        match self {
            Self::TransportUnknown => "Transport unknown",
            Self::UnknownSid => "Session ID unknown",
            Self::BadHandshakeMethod => "Bad handshake method",
            Self::BadRequest => "Bad request",
            Self::Forbidden => "Forbidden",
            Self::UnsupportedProtocolVersion => "Unsupported protocol version",
        }
    }

    /// The HTTP status: 403 for `Forbidden`, 400 otherwise.
    pub fn status(self) -> u16 {
        match self {
            Self::Forbidden => 403,
            _ => 400,
        }
    }

    /// The JSON body, with the default message.
    pub fn json(self) -> String {
        self.json_with_message(self.message())
    }

    /// The JSON body with a custom message (used for `allow_request` refusals).
    pub fn json_with_message(self, message: &str) -> String {
        let mut out = String::with_capacity(32 + message.len());
        out.push_str("{\"code\":");
        out.push_str(itoa::Buffer::new().format(self.code()));
        out.push_str(",\"message\":");
        push_json_string(&mut out, message);
        out.push('}');
        out
    }
}

/// Appends `s` to `out` as a JSON string literal.
pub(crate) fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                out.push_str("\\u00");
                let b = c as u8;
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A packet (or polling payload) that does not follow the protocol. The session that sent
/// it is closed with the reason "parse error".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PacketError {
    /// The packet is empty.
    #[error("empty packet")]
    Empty,
    /// The first character is not a packet type (`0`-`6`) nor `b`.
    #[error("unknown packet type {0:#04x}")]
    UnknownType(u8),
    /// A `b` packet whose payload is not valid base64.
    #[error("invalid base64 in binary packet")]
    InvalidBase64,
    /// The payload is not valid UTF-8.
    #[error("invalid UTF-8")]
    InvalidUtf8,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_match_node() {
        let table = [
            (ErrorCode::TransportUnknown, 400, r#"{"code":0,"message":"Transport unknown"}"#),
            (ErrorCode::UnknownSid, 400, r#"{"code":1,"message":"Session ID unknown"}"#),
            (ErrorCode::BadHandshakeMethod, 400, r#"{"code":2,"message":"Bad handshake method"}"#),
            (ErrorCode::BadRequest, 400, r#"{"code":3,"message":"Bad request"}"#),
            (ErrorCode::Forbidden, 403, r#"{"code":4,"message":"Forbidden"}"#),
            (ErrorCode::UnsupportedProtocolVersion, 400, r#"{"code":5,"message":"Unsupported protocol version"}"#),
        ];
        for (code, status, body) in table {
            assert_eq!(code.status(), status);
            assert_eq!(code.json(), body);
        }
    }

    #[test]
    fn custom_message_is_escaped() {
        assert_eq!(
            ErrorCode::Forbidden.json_with_message("no \"way\"\n\u{1}"),
            r#"{"code":4,"message":"no \"way\"\n\u0001"}"#
        );
    }
}
