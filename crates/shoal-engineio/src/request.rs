//! What the server keeps of the request that opened a session.

use std::net::SocketAddr;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};

/// The peer address of a connection. The standalone server adds it to every request's
/// extensions; when Shoal is mounted in another server, add it the same way (for example
/// from axum's `ConnectInfo`) so that handshakes report the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The handshake request of a session: headers, URL, peer address and time.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// Method (`GET`).
    pub method: Method,
    /// The full request URI (path and query).
    pub uri: Uri,
    /// The request headers.
    pub headers: HeaderMap,
    /// The peer address, when known (see [`RemoteAddr`]).
    pub remote_addr: Option<SocketAddr>,
    /// When the handshake was received.
    pub time: SystemTime,
}

impl RequestInfo {
    pub(crate) fn from_parts(parts: &http::request::Parts) -> RequestInfo {
        // Kept for the whole session (as Node keeps `socket.request`). hyper's URI and
        // header values are views into its connection read buffer (8 KiB and more): copy
        // them, so that a session does not keep that buffer alive. Skip the WebSocket
        // handshake's own headers.
        let skip = |name: &http::HeaderName| name.as_str().starts_with("sec-websocket-");
        let n = parts.headers.iter().filter(|(k, _)| !skip(k)).count();
        let mut headers = HeaderMap::with_capacity(n);
        for (k, v) in parts.headers.iter().filter(|(k, _)| !skip(k)) {
            let name = http::HeaderName::from_bytes(k.as_str().as_bytes()).unwrap_or_else(|_| k.clone());
            let value = http::HeaderValue::from_bytes(v.as_bytes()).unwrap_or_else(|_| v.clone());
            headers.append(name, value);
        }
        let uri = Uri::try_from(parts.uri.to_string()).unwrap_or_else(|_| parts.uri.clone());
        RequestInfo {
            method: parts.method.clone(),
            uri,
            headers,
            remote_addr: parts.extensions.get::<RemoteAddr>().map(|r| r.0),
            time: SystemTime::now(),
        }
    }

    /// The value of query parameter `name` (percent-decoded), if present.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.uri.query().unwrap_or(""), name)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.uri.query().unwrap_or(""))
    }
}

/// All `key=value` pairs of a query string, percent-decoded (`+` is a space).
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(pair), String::new()),
        })
        .collect()
}

/// The first value of `name` in a query string, percent-decoded.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+`; invalid escapes are kept as they are, invalid UTF-8 is
/// replaced.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    if !b.iter().any(|&c| c == b'%' || c == b'+') {
        return s.to_owned();
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                }
                _ => {
                    out.push(b'%');
                    i += 1;
                }
            },
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parsing() {
        let q = "EIO=4&transport=polling&t=N8hyd6w&sid=ab%2Dc&x=a+b&flag&e=%zz&p=%E2%82%AC";
        assert_eq!(query_param(q, "EIO").as_deref(), Some("4"));
        assert_eq!(query_param(q, "transport").as_deref(), Some("polling"));
        assert_eq!(query_param(q, "sid").as_deref(), Some("ab-c"));
        assert_eq!(query_param(q, "x").as_deref(), Some("a b"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        assert_eq!(query_param(q, "e").as_deref(), Some("%zz"));
        assert_eq!(query_param(q, "p").as_deref(), Some("€"));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%4"), "%4");
        assert_eq!(percent_decode("%41"), "A");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
        assert_eq!(query_pairs("a=1&&b").len(), 2);
    }
}
