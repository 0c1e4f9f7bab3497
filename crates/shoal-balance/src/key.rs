//! Sticky-key extraction: pure functions over a request's URI and headers.
//!
//! - [`sid_param`]: the `sid` of an Engine.IO request (`?EIO=4&transport=polling&sid=…`);
//! - [`header_hop`]: one hop of a list header such as `X-Forwarded-For`;
//! - [`cookie_value`]: one cookie of the `Cookie` header(s).

use http::HeaderMap;
use http::header::{COOKIE, HeaderName};
use shoal_engineio_proto::Sid;

/// What the `sid` query parameter of a request says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SidParam {
    /// No `sid` parameter: a handshake (or not an Engine.IO request).
    Absent,
    /// A well-formed sid.
    Valid(Sid),
    /// A `sid` parameter that is not 20 characters of `[A-Za-z0-9_-]`.
    Malformed,
}

/// Reads the `sid` parameter of `query` (the part of the URI after `?`). The first `sid`
/// wins, as in Node's query parser; a parameter without `=` counts as an empty value.
pub fn sid_param(query: Option<&str>) -> SidParam {
    let Some(q) = query else { return SidParam::Absent };
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if k == "sid" {
            return match v.parse::<Sid>() {
                Ok(sid) => SidParam::Valid(sid),
                Err(_) => SidParam::Malformed,
            };
        }
    }
    SidParam::Absent
}

/// The `hop`-th element of the comma-separated list formed by every `name` header line,
/// trimmed: `0` is the first (leftmost: in `X-Forwarded-For`, the original client), `1`
/// the second, and `-1` the last (the peer of the nearest proxy), `-2` the one before.
///
/// `None` when the header is missing, a line is not visible ASCII, the hop is out of
/// range, or the element is empty.
pub fn header_hop<'a>(headers: &'a HeaderMap, name: &HeaderName, hop: i32) -> Option<&'a str> {
    let mut items: Vec<&'a str> = Vec::new();
    for line in headers.get_all(name) {
        let line = line.to_str().ok()?;
        items.extend(line.split(',').map(str::trim));
    }
    let index = if hop >= 0 {
        usize::try_from(hop).ok()?
    } else {
        let back = usize::try_from(hop.unsigned_abs()).ok()?;
        items.len().checked_sub(back)?
    };
    items.get(index).copied().filter(|s| !s.is_empty())
}

/// Parses a `--header-hop` value: an integer, negative counting from the end.
///
/// # Errors
/// A message for anything that is not an `i32`.
pub fn parse_hop(s: &str) -> Result<i32, String> {
    s.trim()
        .parse::<i32>()
        .map_err(|_| format!("invalid hop {s:?}: expected an integer such as 0 (first) or -1 (last)"))
}

/// The value of cookie `name` in the `Cookie` header(s), if any (the first one wins;
/// surrounding double quotes are removed).
pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for line in headers.get_all(COOKIE) {
        let Ok(line) = line.to_str() else { continue };
        for pair in line.split(';') {
            let Some((k, v)) = pair.split_once('=') else { continue };
            if k.trim() == name {
                let v = v.trim();
                let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
                return (!v.is_empty()).then_some(v);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn sid_routing_param() {
        let sid = "AbCdEFGHIJKLMNOPQRST";
        assert_eq!(sid_param(None), SidParam::Absent);
        assert_eq!(sid_param(Some("EIO=4&transport=polling")), SidParam::Absent);
        let q = format!("EIO=4&transport=polling&sid={sid}");
        let SidParam::Valid(parsed) = sid_param(Some(&q)) else { panic!("valid sid expected") };
        assert_eq!(parsed.node().as_str(), "AbCd");
        let q = format!("sid={sid}&EIO=4");
        assert!(matches!(sid_param(Some(&q)), SidParam::Valid(_)));
        // first one wins
        let q = format!("sid={sid}&sid=bad");
        assert!(matches!(sid_param(Some(&q)), SidParam::Valid(_)));
        for bad in [
            "sid=",
            "sid",
            "sid=short",
            "sid=AbCdEFGHIJKLMNOPQRS%2F",
            "sid=AbCdEFGHIJKLMNOPQRSTU",
            "sid=AbCd/FGHIJKLMNOPQRST",
        ] {
            assert_eq!(sid_param(Some(bad)), SidParam::Malformed, "{bad}");
        }
        // a parameter merely ending in sid is another parameter
        assert_eq!(sid_param(Some("xsid=AbCdEFGHIJKLMNOPQRST")), SidParam::Absent);
    }

    #[test]
    fn header_hop_parsing() {
        let xff = HeaderName::from_static("x-forwarded-for");
        let h = map(&[("x-forwarded-for", "1.1.1.1, 2.2.2.2"), ("x-forwarded-for", " 3.3.3.3 ")]);
        assert_eq!(header_hop(&h, &xff, 0), Some("1.1.1.1"));
        assert_eq!(header_hop(&h, &xff, 1), Some("2.2.2.2"));
        assert_eq!(header_hop(&h, &xff, 2), Some("3.3.3.3"));
        assert_eq!(header_hop(&h, &xff, 3), None);
        assert_eq!(header_hop(&h, &xff, -1), Some("3.3.3.3"));
        assert_eq!(header_hop(&h, &xff, -3), Some("1.1.1.1"));
        assert_eq!(header_hop(&h, &xff, -4), None);
        assert_eq!(header_hop(&h, &xff, i32::MIN), None);
        assert_eq!(header_hop(&map(&[]), &xff, 0), None);
        assert_eq!(header_hop(&map(&[("x-forwarded-for", "")]), &xff, 0), None);
        assert_eq!(header_hop(&map(&[("x-forwarded-for", " , 4.4.4.4")]), &xff, 0), None);
        let user = HeaderName::from_static("x-user");
        assert_eq!(header_hop(&map(&[("x-user", "alice")]), &user, 0), Some("alice"));
        assert_eq!(header_hop(&map(&[("x-user", "alice")]), &user, -1), Some("alice"));
        assert_eq!(parse_hop("-1"), Ok(-1));
        assert_eq!(parse_hop(" 2 "), Ok(2));
        assert!(parse_hop("last").is_err());
    }

    #[test]
    fn cookies() {
        let h = map(&[("cookie", "a=1; io=AbCdEFGHIJKLMNOPQRST"), ("cookie", "b=\"q\"")]);
        assert_eq!(cookie_value(&h, "io"), Some("AbCdEFGHIJKLMNOPQRST"));
        assert_eq!(cookie_value(&h, "a"), Some("1"));
        assert_eq!(cookie_value(&h, "b"), Some("q"));
        assert_eq!(cookie_value(&h, "c"), None);
        assert_eq!(cookie_value(&map(&[("cookie", "io=")]), "io"), None);
        assert_eq!(cookie_value(&map(&[("cookie", "garbage")]), "io"), None);
    }
}
