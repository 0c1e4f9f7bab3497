//! Raw HTTP/1.1 over fresh TCP connections: requests, and the reading of responses.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long [`request`] and [`get`] wait for the whole response.
pub const REQUEST_WITHIN: Duration = Duration::from_secs(40);

/// An HTTP response.
pub struct Answer {
    pub status: u16,
    /// The status line and the header lines.
    pub head: String,
    /// The body (a chunked body decoded).
    pub body: Vec<u8>,
}

impl Answer {
    /// Parses a whole response (a chunked body is decoded); `None` without a complete,
    /// UTF-8 head and a status code.
    pub fn parse(raw: &[u8]) -> Option<Answer> {
        let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
        let head = String::from_utf8(raw[..split].to_vec()).ok()?;
        let status = head.split(' ').nth(1)?.parse().ok()?;
        let mut body = raw[split + 4..].to_vec();
        if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
            body = dechunk(&body);
        }
        Some(Answer { status, head, body })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    /// The value of the (first) header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("head", &self.head)
            .field("body", &self.text())
            .finish()
    }
}

/// Decodes a chunked body.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") else { return out };
        let size = usize::from_str_radix(String::from_utf8_lossy(&raw[..eol]).trim(), 16).unwrap_or(0);
        if size == 0 {
            return out;
        }
        let start = eol + 2;
        out.extend_from_slice(&raw[start..(start + size).min(raw.len())]);
        raw = &raw[(start + size + 2).min(raw.len())..];
    }
}

/// The text of a request `method path` to `addr` that closes its connection
/// (`Connection: close`), with the extra header lines `headers` (`"name: value"`) and, for
/// a POST, the text `body` (`Content-Type: text/plain;charset=UTF-8` and its length).
pub fn request_text(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> String {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    if method == "POST" {
        req.push_str(&format!("Content-Type: text/plain;charset=UTF-8\r\nContent-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req
}

/// Connects to `addr` and writes `request`; the connection.
pub async fn send(addr: SocketAddr, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write request");
    stream
}

/// Reads `stream` to its end (the peer closes it), at most `within`.
pub async fn read_to_end(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut raw = Vec::new();
    tokio::time::timeout(within, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("response within {within:?}"))
        .expect("read response");
    raw
}

/// Sends `request` over a fresh connection and reads the whole response, at most
/// `within`; `None` if it has no complete head and status code.
pub async fn try_exchange(addr: SocketAddr, request: &str, within: Duration) -> Option<Answer> {
    let mut stream = send(addr, request).await;
    Answer::parse(&read_to_end(&mut stream, within).await)
}

/// One request (see [`request_text`]) over a fresh connection, its whole response read
/// within `within`.
pub async fn request_within(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[&str],
    body: &str,
    within: Duration,
) -> Answer {
    let request = request_text(addr, method, path, headers, body);
    try_exchange(addr, &request, within).await.expect("a response head with a status code")
}

/// One request (see [`request_text`]) over a fresh connection, its whole response read
/// within [`REQUEST_WITHIN`].
pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[&str], body: &str) -> Answer {
    request_within(addr, method, path, headers, body, REQUEST_WITHIN).await
}

/// `GET path` over a fresh connection, its response read within [`REQUEST_WITHIN`].
pub async fn get(addr: SocketAddr, path: &str) -> Answer {
    request(addr, "GET", path, &[], "").await
}

/// `GET path` over a fresh connection, its response read within `within`.
pub async fn get_within(addr: SocketAddr, path: &str, within: Duration) -> Answer {
    request_within(addr, "GET", path, &[], "", within).await
}

/// Reads one response from `s`: its body by its Content-Length, or else up to the end of
/// the stream; `None` if the stream ends (or fails) first or the head has no status code.
pub async fn read_response(s: &mut TcpStream) -> Option<Answer> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]);
            head.split(' ').nth(1)?.parse::<u16>().ok()?;
            let len = head.lines().find_map(|l| {
                let l = l.to_ascii_lowercase();
                l.strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap())
            });
            match len {
                Some(len) => {
                    while buf.len() < end + 4 + len {
                        let n = s.read(&mut chunk).await.ok()?;
                        if n == 0 {
                            return None;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    return Answer::parse(&buf[..end + 4 + len]);
                }
                None => {
                    let _ = s.read_to_end(&mut buf).await;
                    return Answer::parse(&buf);
                }
            }
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
