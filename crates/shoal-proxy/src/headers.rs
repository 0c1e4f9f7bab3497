//! Header rewriting for a reverse proxy: pure functions over [`HeaderMap`].

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{CONNECTION, HeaderName, HeaderValue, UPGRADE};

/// `X-Forwarded-For`.
pub const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`.
pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// Marks a request forwarded to the Shoal node that owns its session (value `1`), by
/// another node or by a balancer that found the owner in the membership: a node never
/// forwards such a request again.
pub const X_SHOAL_FORWARDED: HeaderName = HeaderName::from_static("x-shoal-forwarded");

/// Hop-by-hop headers (RFC 9110 §7.6.1 and the historical ones), never forwarded as is.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authenticate",
];

/// True when `value` (a comma-separated header) lists `token`, ignoring case.
fn lists_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True for a protocol upgrade request (`Connection: upgrade` with an `Upgrade` header),
/// such as a WebSocket handshake.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(UPGRADE) && lists_token(headers, &CONNECTION, "upgrade")
}

/// Removes the hop-by-hop headers, including every header that `Connection` names. With
/// `keep_upgrade`, `Upgrade` is kept and `Connection: upgrade` put back, so that an upgrade
/// goes through.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let upgrade = if keep_upgrade { headers.get(UPGRADE).cloned() } else { None };
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    if let Some(u) = upgrade {
        headers.insert(UPGRADE, u);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Appends `client` to `X-Forwarded-For` (joining several header lines into one).
pub fn append_forwarded_for(headers: &mut HeaderMap, client: IpAddr) {
    let mut v = String::new();
    for line in headers.get_all(&X_FORWARDED_FOR).iter() {
        if let Ok(s) = line.to_str() {
            let s = s.trim();
            if !s.is_empty() {
                v.push_str(s);
                v.push_str(", ");
            }
        }
    }
    v.push_str(&client.to_string());
    if let Ok(value) = HeaderValue::from_str(&v) {
        headers.insert(X_FORWARDED_FOR, value);
    }
}

/// Sets `X-Forwarded-Proto` to `proto` unless a previous proxy did.
pub fn set_forwarded_proto(headers: &mut HeaderMap, proto: &'static str) {
    if !headers.contains_key(&X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(proto));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn upgrade_detection() {
        assert!(is_upgrade(&map(&[("connection", "keep-alive, Upgrade"), ("upgrade", "websocket")])));
        assert!(is_upgrade(&map(&[("connection", "keep-alive"), ("connection", "upgrade"), ("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "keep-alive"), ("upgrade", "websocket")])));
        assert!(!is_upgrade(&map(&[("connection", "upgrade")])));
        assert!(!is_upgrade(&map(&[("connection", "upgraded"), ("upgrade", "websocket")])));
    }

    #[test]
    fn hop_by_hop_removed_and_upgrade_kept_on_demand() {
        let base = [
            ("connection", "keep-alive, Upgrade, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "secret"),
            ("upgrade", "websocket"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("host", "example"),
            ("sec-websocket-key", "k"),
        ];
        let mut h = map(&base);
        strip_hop_by_hop(&mut h, false);
        let mut names: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["host", "sec-websocket-key"]);

        let mut h = map(&base);
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h.get("upgrade").unwrap(), "websocket");
        assert_eq!(h.get("connection").unwrap(), "upgrade");
        assert!(h.get("x-private").is_none());
        assert!(h.get("keep-alive").is_none());
        assert_eq!(h.len(), 4);
    }

    #[test]
    fn forwarded_for_is_appended_and_lines_joined() {
        let mut h = HeaderMap::new();
        append_forwarded_for(&mut h, "10.0.0.1".parse().unwrap());
        assert_eq!(h.get("x-forwarded-for").unwrap(), "10.0.0.1");
        let mut h = map(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2"), ("x-forwarded-for", "3.3.3.3")]);
        append_forwarded_for(&mut h, "::1".parse().unwrap());
        assert_eq!(h.get_all("x-forwarded-for").iter().count(), 1);
        assert_eq!(h.get("x-forwarded-for").unwrap(), "1.1.1.1, 2.2.2.2, 3.3.3.3, ::1");
    }

    #[test]
    fn forwarded_proto_kept_when_set() {
        let mut h = HeaderMap::new();
        set_forwarded_proto(&mut h, "http");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "http");
        let mut h = map(&[("x-forwarded-proto", "https")]);
        set_forwarded_proto(&mut h, "http");
        assert_eq!(h.get("x-forwarded-proto").unwrap(), "https");
    }
}
