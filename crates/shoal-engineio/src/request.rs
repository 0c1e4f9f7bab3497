//! What the server keeps of the request that opened a session.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::SystemTime;

use http::{HeaderMap, Method, Uri};

/// The peer address of a connection. The standalone server adds it to every request's
/// extensions; when Shoal is mounted in another server, add it the same way (for example
/// from axum's `ConnectInfo`) so that handshakes report the client's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr(pub SocketAddr);

/// The handshake request of a session: method, path and query, headers, peer address
/// and time.
///
/// It lives as long as the session, so it is stored compactly: the headers are kept as
/// one block of bytes and turned into a [`HeaderMap`] only when someone asks for it.
#[derive(Debug)]
pub struct RequestInfo {
    method: Method,
    path_and_query: Box<str>,
    /// `name:value\n` for every header (names are lowercase; values never contain `\n`).
    raw_headers: Box<[u8]>,
    headers: OnceLock<Box<HeaderMap>>,
    remote_addr: Option<SocketAddr>,
    time: SystemTime,
}

impl Clone for RequestInfo {
    fn clone(&self) -> Self {
        RequestInfo {
            method: self.method.clone(),
            path_and_query: self.path_and_query.clone(),
            raw_headers: self.raw_headers.clone(),
            headers: OnceLock::new(),
            remote_addr: self.remote_addr,
            time: self.time,
        }
    }
}

impl RequestInfo {
    /// A request description (for tests, or to build one from another server's request).
    pub fn new(method: Method, uri: &Uri, headers: &HeaderMap, remote_addr: Option<SocketAddr>) -> RequestInfo {
        // The WebSocket handshake's own headers are of no use later.
        let keep = |name: &http::HeaderName| !name.as_str().starts_with("sec-websocket-");
        let mut raw = Vec::with_capacity(headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 2).sum());
        for (k, v) in headers.iter().filter(|(k, _)| keep(k)) {
            raw.extend_from_slice(k.as_str().as_bytes());
            raw.push(b':');
            raw.extend_from_slice(v.as_bytes());
            raw.push(b'\n');
        }
        RequestInfo {
            method,
            path_and_query: uri.path_and_query().map_or("/", |p| p.as_str()).into(),
            raw_headers: raw.into_boxed_slice(),
            headers: OnceLock::new(),
            remote_addr,
            time: SystemTime::now(),
        }
    }

    pub(crate) fn from_parts(parts: &http::request::Parts) -> RequestInfo {
        // hyper's URI and header values are views into its connection read buffer: this
        // copies them, so the session does not keep that buffer alive.
        Self::new(parts.method.clone(), &parts.uri, &parts.headers, parts.extensions.get::<RemoteAddr>().map(|r| r.0))
    }

    /// The method (`GET`).
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path and query (`/socket.io/?EIO=4&transport=polling`).
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The path.
    pub fn path(&self) -> &str {
        self.path_and_query.split('?').next().unwrap_or("/")
    }

    /// The request URI (origin form: path and query).
    pub fn uri(&self) -> Uri {
        Uri::try_from(&*self.path_and_query).unwrap_or_else(|_| Uri::from_static("/"))
    }

    /// The headers (built on first use).
    pub fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| {
            let mut map = HeaderMap::new();
            for (k, v) in self.raw_header_pairs() {
                if let (Ok(k), Ok(v)) = (http::HeaderName::from_bytes(k), http::HeaderValue::from_bytes(v)) {
                    map.append(k, v);
                }
            }
            Box::new(map)
        })
    }

    /// The first value of header `name` (lowercase), without building the header map.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.raw_header_pairs().find(|(k, _)| *k == name.as_bytes()).map(|(_, v)| v)
    }

    fn raw_header_pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.raw_headers.split(|&b| b == b'\n').filter(|l| !l.is_empty()).filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            Some((&line[..colon], &line[colon + 1..]))
        })
    }

    /// The peer address, when known (see [`RemoteAddr`]).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// When the handshake was received.
    pub fn time(&self) -> SystemTime {
        self.time
    }

    /// The value of query parameter `name` (percent-decoded), if present.
    pub fn query(&self, name: &str) -> Option<String> {
        query_param(self.query_string(), name)
    }

    /// Every query parameter, percent-decoded, in order.
    pub fn query_pairs(&self) -> Vec<(String, String)> {
        query_pairs(self.query_string())
    }

    fn query_string(&self) -> &str {
        self.path_and_query.split_once('?').map_or("", |(_, q)| q)
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
    fn compact_request_keeps_what_matters() {
        let mut h = HeaderMap::new();
        h.insert("host", "example.com".parse().unwrap());
        h.append("x-multi", "a".parse().unwrap());
        h.append("x-multi", "b".parse().unwrap());
        h.insert("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap());
        h.insert("x-bin", http::HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let uri: Uri = "/socket.io/?EIO=4&transport=websocket&t=a%20b".parse().unwrap();
        let r = RequestInfo::new(Method::GET, &uri, &h, None);
        assert_eq!(r.path(), "/socket.io/");
        assert_eq!(r.query("t").as_deref(), Some("a b"));
        assert_eq!(r.uri(), uri);
        assert_eq!(r.header("host"), Some(&b"example.com"[..]));
        assert_eq!(r.header("sec-websocket-key"), None);
        let all: Vec<_> = r.headers().get_all("x-multi").iter().collect();
        assert_eq!(all, ["a", "b"]);
        assert_eq!(r.headers()["x-bin"].as_bytes(), b"caf\xe9");
        assert_eq!(r.headers().len(), 4);
        assert_eq!(r.clone().headers().len(), 4);
    }

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
