//! A tiny RESP2 client: enough to send commands to Redis and read replies and pub/sub
//! messages, for tests that inspect or poke Redis directly.

use std::fmt;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, ToSocketAddrs};

/// One RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RespValue {
    /// `+OK`
    Simple(String),
    /// `-ERR ...` (an error reply: the command failed, the connection is fine)
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo` (binary-safe)
    Bulk(Vec<u8>),
    /// `*2\r\n...`
    Array(Vec<RespValue>),
    /// `$-1` or `*-1`
    Null,
}

impl RespValue {
    /// The text of a simple string, or of a bulk string that is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            RespValue::Simple(s) => Some(s),
            RespValue::Bulk(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            RespValue::Simple(s) => Some(s.as_bytes()),
            RespValue::Bulk(b) => Some(b),
            _ => None,
        }
    }

    /// An integer reply (or a bulk/simple string holding a decimal integer, as `PUBSUB
    /// NUMSUB`-style replies never do but `GET` of a counter does).
    pub fn as_int(&self) -> Option<i64> {
        match self {
            RespValue::Integer(n) => Some(*n),
            RespValue::Simple(_) | RespValue::Bulk(_) => self.as_str()?.parse().ok(),
            _ => None,
        }
    }

    /// The elements of an array reply.
    pub fn as_array(&self) -> Option<&[RespValue]> {
        match self {
            RespValue::Array(v) => Some(v),
            _ => None,
        }
    }

    /// The elements of an array reply as strings (non-string elements are skipped).
    pub fn strings(&self) -> Vec<String> {
        self.as_array().unwrap_or_default().iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
    }

    /// The message of an error reply.
    pub fn error(&self) -> Option<&str> {
        match self {
            RespValue::Error(e) => Some(e),
            _ => None,
        }
    }

    /// Whether this is an error reply.
    pub fn is_error(&self) -> bool {
        matches!(self, RespValue::Error(_))
    }

    /// Whether this is a null bulk string or null array.
    pub fn is_null(&self) -> bool {
        matches!(self, RespValue::Null)
    }

    /// Whether this is the simple string `OK`.
    pub fn is_ok(&self) -> bool {
        matches!(self, RespValue::Simple(s) if s == "OK")
    }
}

impl fmt::Display for RespValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RespValue::Simple(s) => write!(f, "{s}"),
            RespValue::Error(e) => write!(f, "(error) {e}"),
            RespValue::Integer(n) => write!(f, "(integer) {n}"),
            RespValue::Bulk(b) => match std::str::from_utf8(b) {
                Ok(s) => write!(f, "{s:?}"),
                Err(_) => write!(f, "(binary) {b:02x?}"),
            },
            RespValue::Array(v) => {
                write!(f, "[")?;
                for (i, x) in v.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{x}")?;
                }
                write!(f, "]")
            }
            RespValue::Null => write!(f, "(nil)"),
        }
    }
}

/// One connection to Redis speaking RESP2.
///
/// [`RespConnection::cmd`] sends one command and reads its reply. For pub/sub, send
/// `SUBSCRIBE`/`PSUBSCRIBE`/`SSUBSCRIBE` with [`RespConnection::cmd`] (the reply is the
/// first confirmation), then read the pushed messages with [`RespConnection::read`] or
/// [`RespConnection::read_timeout`]: `["message", channel, payload]`,
/// `["pmessage", pattern, channel, payload]`, `["smessage", channel, payload]`.
#[derive(Debug)]
pub struct RespConnection {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl RespConnection {
    /// Connects to Redis at `addr` (5 s at most).
    pub async fn connect(addr: impl ToSocketAddrs) -> io::Result<RespConnection> {
        let stream = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "connecting to Redis took more than 5 s"))??;
        stream.set_nodelay(true)?;
        Ok(RespConnection { stream, buf: Vec::new() })
    }

    /// Sends one command (an array of bulk strings) without reading anything.
    pub async fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<()> {
        self.stream.write_all(&encode_command(args)).await
    }

    /// Reads the next reply or pushed message (waits as long as it takes).
    pub async fn read(&mut self) -> io::Result<RespValue> {
        loop {
            match parse(&self.buf) {
                Ok(Some((value, used))) => {
                    self.buf.drain(..used);
                    return Ok(value);
                }
                Ok(None) => {}
                Err(why) => return Err(io::Error::new(io::ErrorKind::InvalidData, why)),
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "Redis closed the connection"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// As [`RespConnection::read`], but `Ok(None)` when nothing complete arrives within `timeout`.
    pub async fn read_timeout(&mut self, timeout: Duration) -> io::Result<Option<RespValue>> {
        match tokio::time::timeout(timeout, self.read()).await {
            Ok(r) => r.map(Some),
            Err(_) => Ok(None),
        }
    }

    /// Sends one command and reads its reply. A Redis error reply is `Ok(RespValue::Error)`;
    /// `Err` means the connection failed.
    pub async fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> io::Result<RespValue> {
        self.send(args).await?;
        self.read().await
    }
}

/// Opens a connection to `addr`, sends one command and returns its reply (30 s at most).
pub async fn resp_cmd<A: AsRef<[u8]>>(addr: impl ToSocketAddrs, args: &[A]) -> io::Result<RespValue> {
    let run = async {
        let mut conn = RespConnection::connect(addr).await?;
        conn.cmd(args).await
    };
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "no Redis reply within 30 s"))?
}

fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses one value from the start of `buf`: `Ok(None)` if it is incomplete.
fn parse(buf: &[u8]) -> Result<Option<(RespValue, usize)>, String> {
    let Some(line_end) = find_crlf(buf) else { return Ok(None) };
    if line_end == 0 {
        return Err("empty RESP line".to_owned());
    }
    let line = std::str::from_utf8(&buf[1..line_end]).map_err(|_| "RESP header is not UTF-8".to_owned())?;
    let after = line_end + 2;
    let int = || line.parse::<i64>().map_err(|_| format!("bad RESP length/integer {line:?}"));
    match buf[0] {
        b'+' => Ok(Some((RespValue::Simple(line.to_owned()), after))),
        b'-' => Ok(Some((RespValue::Error(line.to_owned()), after))),
        b':' => Ok(Some((RespValue::Integer(int()?), after))),
        b'$' => {
            let len = int()?;
            if len < 0 {
                return Ok(Some((RespValue::Null, after)));
            }
            let end = after + len as usize;
            if buf.len() < end + 2 {
                return Ok(None);
            }
            if &buf[end..end + 2] != b"\r\n" {
                return Err("bulk string not followed by CRLF".to_owned());
            }
            Ok(Some((RespValue::Bulk(buf[after..end].to_vec()), end + 2)))
        }
        b'*' => {
            let len = int()?;
            if len < 0 {
                return Ok(Some((RespValue::Null, after)));
            }
            let mut items = Vec::with_capacity(len.min(1024) as usize);
            let mut pos = after;
            for _ in 0..len {
                match parse(&buf[pos..])? {
                    Some((v, used)) => {
                        items.push(v);
                        pos += used;
                    }
                    None => return Ok(None),
                }
            }
            Ok(Some((RespValue::Array(items), pos)))
        }
        other => Err(format!("unexpected RESP type byte {other:#04x} (RESP3 is not supported)")),
    }
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_reply_type() {
        let wire = b"+OK\r\n-ERR no\r\n:-7\r\n$3\r\na\r\n\r\n$-1\r\n*2\r\n$1\r\nx\r\n*1\r\n:1\r\n*-1\r\n";
        let mut pos = 0;
        let mut got = Vec::new();
        while pos < wire.len() {
            let (v, used) = parse(&wire[pos..]).unwrap().unwrap();
            got.push(v);
            pos += used;
        }
        assert_eq!(
            got,
            vec![
                RespValue::Simple("OK".into()),
                RespValue::Error("ERR no".into()),
                RespValue::Integer(-7),
                RespValue::Bulk(b"a\r\n".to_vec()),
                RespValue::Null,
                RespValue::Array(vec![RespValue::Bulk(b"x".to_vec()), RespValue::Array(vec![RespValue::Integer(1)])]),
                RespValue::Null,
            ]
        );
    }

    #[test]
    fn incomplete_input_waits_for_more() {
        for wire in [&b"+OK"[..], b"$5\r\nab", b"*2\r\n:1\r\n", b"$2\r\nab\r"] {
            assert_eq!(parse(wire).unwrap(), None, "{wire:?}");
        }
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        assert_eq!(encode_command(&["SET", "k", ""]), b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n".to_vec());
    }
}
