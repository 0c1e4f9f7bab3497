//! What a socket knows of its connection's handshake.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use http::HeaderMap;
use serde_json::{Map, Value};
use shoal_engineio::RequestInfo;

/// The handshake of a socket: the HTTP request that opened the connection and the `auth`
/// payload of the namespace CONNECT. The request part is shared by every namespace of a
/// connection.
#[derive(Debug, Clone)]
pub struct Handshake {
    request: Arc<RequestInfo>,
    auth: Value,
}

impl Handshake {
    pub(crate) fn new(request: Arc<RequestInfo>, auth: Value) -> Handshake {
        Handshake { request, auth }
    }

    /// The headers of the request.
    pub fn headers(&self) -> &HeaderMap {
        self.request.headers()
    }

    /// The query parameters, percent-decoded.
    pub fn query(&self) -> Vec<(String, String)> {
        self.request.query_pairs()
    }

    /// One query parameter.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.request.query(name)
    }

    /// The client's address, when known.
    pub fn address(&self) -> Option<SocketAddr> {
        self.request.remote_addr()
    }

    /// The `auth` payload sent with the namespace CONNECT (`{}` when none).
    pub fn auth(&self) -> &Value {
        &self.auth
    }

    /// The request path and query (`/socket.io/?EIO=4&transport=polling`).
    pub fn url(&self) -> String {
        self.request.path_and_query().to_owned()
    }

    /// When the connection was opened.
    pub fn time(&self) -> SystemTime {
        self.request.time()
    }

    /// Milliseconds since the Unix epoch at handshake (Node's `issued`).
    pub fn issued(&self) -> u64 {
        self.request.time().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    /// True if the request carried an `Origin` header (Node's `xdomain`).
    pub fn xdomain(&self) -> bool {
        self.request.header("origin").is_some()
    }

    /// True if the request came over TLS. Shoal serves plain HTTP (TLS ends at a proxy),
    /// so this is true only when the proxy says so with `X-Forwarded-Proto: https`.
    pub fn secure(&self) -> bool {
        self.request.header("x-forwarded-proto").is_some_and(|v| v.eq_ignore_ascii_case(b"https"))
    }

    /// The handshake in the JSON shape Node's adapters exchange: `headers`, `time`,
    /// `address`, `xdomain`, `secure`, `issued`, `url`, `query`, `auth`.
    pub fn to_json(&self) -> Value {
        let mut headers = Map::new();
        for (name, value) in self.request.headers().iter() {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            match headers.get_mut(name.as_str()) {
                Some(Value::String(prev)) => {
                    prev.push_str(", ");
                    prev.push_str(&v);
                }
                _ => {
                    headers.insert(name.as_str().to_owned(), Value::String(v));
                }
            }
        }
        let mut query = Map::new();
        for (k, v) in self.query() {
            query.entry(k).or_insert(Value::String(v));
        }
        let mut m = Map::new();
        m.insert("headers".into(), Value::Object(headers));
        m.insert("time".into(), Value::String(node_date(self.request.time())));
        m.insert("address".into(), Value::String(self.address().map_or_else(String::new, |a| a.ip().to_string())));
        m.insert("xdomain".into(), Value::Bool(self.xdomain()));
        m.insert("secure".into(), Value::Bool(self.secure()));
        m.insert("issued".into(), Value::from(self.issued()));
        m.insert("url".into(), Value::String(self.url()));
        m.insert("query".into(), Value::Object(query));
        m.insert("auth".into(), self.auth.clone());
        Value::Object(m)
    }
}

/// Formats a time as Node's `Date.prototype.toString()` does on a server whose time zone
/// is UTC (`Tue Nov 14 2023 22:13:20 GMT+0000 (Coordinated Universal Time)`): the shape
/// of `handshake.time` that Node servers exchange, which `new Date(…)` parses back.
fn node_date(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // civil-from-days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const WD: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MO: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{} {} {:02} {:04} {:02}:{:02}:{:02} GMT+0000 (Coordinated Universal Time)",
        WD[(days % 7) as usize],
        MO[(m - 1) as usize],
        d,
        y,
        h,
        mi,
        s
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates() {
        // the strings are what `TZ=UTC node -e 'console.log(new Date(ms).toString())'` prints
        let utc = "GMT+0000 (Coordinated Universal Time)";
        assert_eq!(node_date(UNIX_EPOCH), format!("Thu Jan 01 1970 00:00:00 {utc}"));
        assert_eq!(
            node_date(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            format!("Tue Nov 14 2023 22:13:20 {utc}")
        );
        assert_eq!(node_date(UNIX_EPOCH + Duration::from_secs(951_782_400)), format!("Tue Feb 29 2000 00:00:00 {utc}"));
    }
}
