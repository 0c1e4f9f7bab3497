//! The HTTP/1.1 upgrade handshake (RFC 6455 §4): request validation and the
//! `Sec-WebSocket-Accept` computation, plus the client-side key helpers.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::header::{CONNECTION, SEC_WEBSOCKET_KEY, SEC_WEBSOCKET_VERSION, UPGRADE};
use http::{HeaderMap, HeaderName, Method};
use sha1::{Digest as _, Sha1};

use crate::error::HandshakeError;

/// The GUID appended to the client key before hashing (RFC 6455 §1.3).
const WS_GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The value of the `Sec-WebSocket-Accept` response header for a validated
/// request: `base64(SHA-1(key + GUID))`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AcceptKey(String);

impl AcceptKey {
    /// The header value, a 28-character base64 string.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AcceptKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True if any value of header `name` contains `token` in its comma-separated
/// list, compared ASCII case-insensitively.
fn has_token(headers: &HeaderMap, name: &HeaderName, token: &[u8]) -> bool {
    headers
        .get_all(name)
        .iter()
        .any(|value| value.as_bytes().split(|&b| b == b',').any(|item| item.trim_ascii().eq_ignore_ascii_case(token)))
}

/// Cheap check that a request asks for a WebSocket upgrade: method `GET`, an
/// `Upgrade` header listing `websocket` and a `Connection` header listing
/// `upgrade` (both token lists, case-insensitive).
///
/// Use [`validate_upgrade`] to check the rest of the handshake.
#[must_use]
pub fn is_upgrade_request(method: &Method, headers: &HeaderMap) -> bool {
    method == Method::GET && has_token(headers, &UPGRADE, b"websocket") && has_token(headers, &CONNECTION, b"upgrade")
}

/// Whether `key` looks like the base64 encoding of exactly 16 bytes:
/// 22 base64 characters followed by `==`.
///
/// Like most servers this ignores the value of the 4 padding bits of the last
/// character instead of insisting on the canonical encoding.
fn is_valid_key(key: &[u8]) -> bool {
    match key.split_last_chunk::<2>() {
        Some((body, b"==")) => {
            body.len() == 22 && body.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
        }
        _ => false,
    }
}

/// Validates a WebSocket upgrade request (RFC 6455 §4.2.1) and computes the
/// `Sec-WebSocket-Accept` value.
///
/// Checks, in order: method `GET`, `Upgrade: websocket`, `Connection: upgrade`,
/// exactly one `Sec-WebSocket-Version: 13` (else
/// [`HandshakeError::UnsupportedVersion`]: answer 426 with
/// `Sec-WebSocket-Version: 13`), exactly one `Sec-WebSocket-Key` that is the
/// base64 encoding of 16 bytes.
///
/// # Errors
/// The first [`HandshakeError`] found; [`HandshakeError::status`] gives the
/// HTTP status to answer with.
pub fn validate_upgrade(method: &Method, headers: &HeaderMap) -> Result<AcceptKey, HandshakeError> {
    if method != Method::GET {
        return Err(HandshakeError::MethodNotGet);
    }
    if !has_token(headers, &UPGRADE, b"websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !has_token(headers, &CONNECTION, b"upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    let mut versions = headers.get_all(SEC_WEBSOCKET_VERSION).iter();
    match (versions.next(), versions.next()) {
        (Some(version), None) if version.as_bytes().trim_ascii() == b"13" => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    let mut keys = headers.get_all(SEC_WEBSOCKET_KEY).iter();
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) => key.as_bytes().trim_ascii(),
        (None, _) => return Err(HandshakeError::MissingKey),
        (Some(_), Some(_)) => return Err(HandshakeError::InvalidKey),
    };
    if !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    Ok(AcceptKey(accept_key(key)))
}

/// `base64(SHA-1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))`, the
/// `Sec-WebSocket-Accept` value for the `Sec-WebSocket-Key` `key`.
#[must_use]
pub fn accept_key(key: &[u8]) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(key);
    sha1.update(WS_GUID);
    STANDARD.encode(sha1.finalize())
}

/// Client side: the `Sec-WebSocket-Key` for 16 random bytes supplied by the
/// caller (this crate does no IO and has no random source).
#[must_use]
pub fn generate_key(random16: [u8; 16]) -> String {
    STANDARD.encode(random16)
}

/// Client side: whether the server's `Sec-WebSocket-Accept` value matches the
/// `Sec-WebSocket-Key` the client sent.
#[must_use]
pub fn verify_accept(key: &str, accept: &[u8]) -> bool {
    accept.trim_ascii() == accept_key(key.as_bytes()).as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
    /// RFC 6455 §1.3 gives the SHA-1 bytes `b3 7a 4f 2c ... c4 ea` and this
    /// base64 value for `KEY`.
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn request(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
        }
        map
    }

    fn valid_with(replace: &str, value: Option<&[u8]>) -> HeaderMap {
        let base: [(&str, &[u8]); 4] = [
            ("upgrade", b"websocket"),
            ("connection", b"Upgrade"),
            ("sec-websocket-version", b"13"),
            ("sec-websocket-key", KEY.as_bytes()),
        ];
        let pairs: Vec<(&str, &[u8])> = base
            .iter()
            .filter_map(|&(name, v)| if name == replace { value.map(|value| (name, value)) } else { Some((name, v)) })
            .collect();
        request(&pairs)
    }

    #[test]
    fn rfc6455_accept_key() {
        assert_eq!(accept_key(KEY.as_bytes()), ACCEPT);
        let accept = validate_upgrade(&Method::GET, &valid_with("", None)).unwrap();
        assert_eq!(accept.as_str(), ACCEPT);
        assert_eq!(accept.to_string(), ACCEPT);
        assert!(verify_accept(KEY, ACCEPT.as_bytes()));
        assert!(!verify_accept(KEY, b"s3pPLMBiTxaQ9kYGJRs+C5BbfOo="));
        assert!(verify_accept(KEY, b" s3pPLMBiTxaQ9kYGzzhZRbK+xOo= "));
    }

    #[test]
    fn header_spellings_are_accepted() {
        let cases: &[(&str, &str, &[u8])] = &[
            ("capitalised upgrade", "upgrade", b"WebSocket"),
            ("upper-case upgrade", "upgrade", b"WEBSOCKET"),
            ("upgrade token list", "upgrade", b"h2c, websocket"),
            ("connection list", "connection", b"keep-alive, Upgrade"),
            ("connection lower case", "connection", b"upgrade"),
            ("connection without spaces", "connection", b"keep-alive,upgrade"),
            ("version with spaces", "sec-websocket-version", b" 13 "),
            ("key with spaces", "sec-websocket-key", b" dGhlIHNhbXBsZSBub25jZQ== "),
        ];
        for (name, header, value) in cases {
            let headers = valid_with(header, Some(value));
            assert!(is_upgrade_request(&Method::GET, &headers), "{name}");
            assert_eq!(
                validate_upgrade(&Method::GET, &headers).map(|a| a.as_str().to_owned()),
                Ok(ACCEPT.to_owned()),
                "{name}"
            );
        }
        // Connection tokens split over several header lines.
        let mut headers = valid_with("connection", Some(b"keep-alive"));
        headers.append(CONNECTION, HeaderValue::from_static("Upgrade"));
        assert!(validate_upgrade(&Method::GET, &headers).is_ok());
    }

    /// Name, method, header to replace (or drop), its value, error, status.
    type BadCase<'a> = (&'a str, Method, &'a str, Option<&'a [u8]>, HandshakeError, u16);

    #[test]
    fn bad_requests_are_rejected() {
        let cases: &[BadCase<'_>] = &[
            ("POST", Method::POST, "", None, HandshakeError::MethodNotGet, 405),
            ("no upgrade", Method::GET, "upgrade", None, HandshakeError::MissingUpgrade, 400),
            ("upgrade h2c", Method::GET, "upgrade", Some(b"h2c"), HandshakeError::MissingUpgrade, 400),
            ("upgrade substring", Method::GET, "upgrade", Some(b"websockets"), HandshakeError::MissingUpgrade, 400),
            ("no connection", Method::GET, "connection", None, HandshakeError::MissingConnectionUpgrade, 400),
            (
                "connection keep-alive only",
                Method::GET,
                "connection",
                Some(b"keep-alive"),
                HandshakeError::MissingConnectionUpgrade,
                400,
            ),
            ("no version", Method::GET, "sec-websocket-version", None, HandshakeError::UnsupportedVersion, 426),
            ("version 8", Method::GET, "sec-websocket-version", Some(b"8"), HandshakeError::UnsupportedVersion, 426),
            (
                "version list",
                Method::GET,
                "sec-websocket-version",
                Some(b"13, 8"),
                HandshakeError::UnsupportedVersion,
                426,
            ),
            ("no key", Method::GET, "sec-websocket-key", None, HandshakeError::MissingKey, 400),
            ("empty key", Method::GET, "sec-websocket-key", Some(b""), HandshakeError::InvalidKey, 400),
            (
                "15-byte key",
                Method::GET,
                "sec-websocket-key",
                Some(b"AAAAAAAAAAAAAAAAAAAA"),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                "17-byte key",
                Method::GET,
                "sec-websocket-key",
                Some(b"AAAAAAAAAAAAAAAAAAAAAAA="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                "key without padding",
                Method::GET,
                "sec-websocket-key",
                Some(b"dGhlIHNhbXBsZSBub25jZQ"),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                "key with invalid characters",
                Method::GET,
                "sec-websocket-key",
                Some(b"dGhlIHNhbXBsZSBub25jZ*=="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                "url-safe alphabet key",
                Method::GET,
                "sec-websocket-key",
                Some(b"dGhlIHNhbXBsZSBub25jZ-=="),
                HandshakeError::InvalidKey,
                400,
            ),
            (
                "non-ASCII key",
                Method::GET,
                "sec-websocket-key",
                Some(b"dGhlIHNhbXBsZSBub25jZ\xc3=="),
                HandshakeError::InvalidKey,
                400,
            ),
        ];
        for (name, method, header, value, want, status) in cases {
            let headers = valid_with(header, *value);
            assert_eq!(validate_upgrade(method, &headers), Err(want.clone()), "{name}");
            assert_eq!(want.status().as_u16(), *status, "{name}");
        }
        // Two keys or two versions.
        let mut headers = valid_with("", None);
        headers.append(SEC_WEBSOCKET_KEY, HeaderValue::from_static(KEY));
        assert_eq!(validate_upgrade(&Method::GET, &headers), Err(HandshakeError::InvalidKey));
        let mut headers = valid_with("", None);
        headers.append(SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
        assert_eq!(validate_upgrade(&Method::GET, &headers), Err(HandshakeError::UnsupportedVersion));
        assert!(!is_upgrade_request(&Method::POST, &valid_with("", None)));
        assert!(!is_upgrade_request(&Method::GET, &HeaderMap::new()));
    }

    #[test]
    fn generated_keys_validate() {
        for seed in [[0u8; 16], [0xFF; 16], *b"0123456789abcdef"] {
            let key = generate_key(seed);
            assert_eq!(key.len(), 24);
            let headers = valid_with("sec-websocket-key", Some(key.as_bytes()));
            let accept = validate_upgrade(&Method::GET, &headers).unwrap();
            assert!(verify_accept(&key, accept.as_str().as_bytes()));
        }
        assert_eq!(generate_key(*b"the sample nonce"), KEY);
    }
}
