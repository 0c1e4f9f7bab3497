//! The embedded broker's wire format, without IO.
//!
//! Every frame is a 4-byte big-endian length followed by that many bytes of body; the
//! body starts with an opcode byte. Strings are a 4-byte big-endian length and UTF-8
//! bytes; a payload is whatever remains of the body.
//!
//! | opcode | direction | frame | fields |
//! |---|---|---|---|
//! | 1 | worker → broker | [`Frame::Subscribe`] | id u32, kind u8 (0 channel, 1 pattern), name str |
//! | 2 | worker → broker | [`Frame::Unsubscribe`] | id u32, kind u8, name str |
//! | 3 | worker → broker | [`Frame::Publish`] | id u32, channel str, payload |
//! | 4 | worker → broker | [`Frame::NumSub`] | id u32, channel str |
//! | 5 | worker → broker | [`Frame::Register`] | id u32, index u32, pid u32, node str, addr str |
//! | 6 | worker → broker | [`Frame::Hello`] | token str |
//! | 129 | broker → worker | [`Frame::Reply`] | id u32, value u64 |
//! | 130 | broker → worker | [`Frame::Message`] | channel str, payload |
//! | 131 | broker → worker | [`Frame::Error`] | id u32, message str |
//!
//! When the broker has an authentication token ([`crate::BrokerConfig::auth_token`]),
//! the first frame of every connection must be a [`Frame::Hello`] carrying it; anything
//! else closes the connection. A hello gets no reply.
//!
//! A request with id 0 gets no reply (a fire-and-forget publish); any other id gets one
//! [`Frame::Reply`] (subscribe, unsubscribe, register: 1; publish: the number of
//! receivers; num-sub: the number of channel subscribers) or one [`Frame::Error`].
//!
//! [`decode`] follows tokio-util's `Decoder` contract: `Ok(None)` asks for more bytes,
//! `Err` means the stream is corrupt and must be closed. Every length is checked against
//! the frame limit before anything is allocated.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::errors::FrameError;

const OP_SUBSCRIBE: u8 = 1;
const OP_UNSUBSCRIBE: u8 = 2;
const OP_PUBLISH: u8 = 3;
const OP_NUMSUB: u8 = 4;
const OP_REGISTER: u8 = 5;
const OP_HELLO: u8 = 6;
const OP_REPLY: u8 = 129;
const OP_MESSAGE: u8 = 130;
const OP_ERROR: u8 = 131;

/// The default largest frame body, 64 MiB (a broadcast with large binary attachments
/// fits; Socket.IO's own default `max_payload` is 1 MB).
pub const DEFAULT_MAX_FRAME: usize = 64 * 1024 * 1024;

/// What a subscription listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubKind {
    /// One channel, by exact name (`SUBSCRIBE`).
    Channel,
    /// Every channel matching a glob pattern (`PSUBSCRIBE`).
    Pattern,
}

/// One frame of the broker protocol (see the module docs for the layout).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Subscribe to a channel or a pattern.
    Subscribe {
        /// Request id (0: no reply).
        id: u32,
        /// Channel or pattern.
        kind: SubKind,
        /// The channel name or the glob pattern.
        name: String,
    },
    /// Remove a subscription.
    Unsubscribe {
        /// Request id (0: no reply).
        id: u32,
        /// Channel or pattern.
        kind: SubKind,
        /// The channel name or the glob pattern.
        name: String,
    },
    /// Publish a message.
    Publish {
        /// Request id (0: no reply).
        id: u32,
        /// The channel.
        channel: String,
        /// The message.
        payload: Bytes,
    },
    /// Count the subscribers of a channel (patterns not counted, as `PUBSUB NUMSUB`).
    NumSub {
        /// Request id.
        id: u32,
        /// The channel.
        channel: String,
    },
    /// A worker announces that it serves on `addr` (cluster supervision).
    Register {
        /// Request id (0: no reply).
        id: u32,
        /// The worker's index.
        index: u32,
        /// The worker's process id.
        pid: u32,
        /// The worker's node id.
        node: String,
        /// The address the worker listens on.
        addr: String,
    },
    /// Opens a connection to a broker that requires a token.
    Hello {
        /// The broker's token.
        token: String,
    },
    /// The answer to a request.
    Reply {
        /// The request's id.
        id: u32,
        /// The result (see the module docs).
        value: u64,
    },
    /// A message published on a channel this connection subscribed to.
    Message {
        /// The channel it was published on.
        channel: String,
        /// The message.
        payload: Bytes,
    },
    /// A request failed.
    Error {
        /// The request's id.
        id: u32,
        /// Why.
        message: String,
    },
}

fn put_str(out: &mut BytesMut, s: &str) {
    out.put_u32(s.len() as u32);
    out.put_slice(s.as_bytes());
}

fn kind_byte(kind: SubKind) -> u8 {
    match kind {
        SubKind::Channel => 0,
        SubKind::Pattern => 1,
    }
}

impl Frame {
    /// Appends the frame (length prefix included) to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        let start = out.len();
        out.put_u32(0);
        match self {
            Frame::Subscribe { id, kind, name } | Frame::Unsubscribe { id, kind, name } => {
                out.put_u8(if matches!(self, Frame::Subscribe { .. }) { OP_SUBSCRIBE } else { OP_UNSUBSCRIBE });
                out.put_u32(*id);
                out.put_u8(kind_byte(*kind));
                put_str(out, name);
            }
            Frame::Publish { id, channel, payload } => {
                out.put_u8(OP_PUBLISH);
                out.put_u32(*id);
                put_str(out, channel);
                out.put_slice(payload);
            }
            Frame::NumSub { id, channel } => {
                out.put_u8(OP_NUMSUB);
                out.put_u32(*id);
                put_str(out, channel);
            }
            Frame::Register { id, index, pid, node, addr } => {
                out.put_u8(OP_REGISTER);
                out.put_u32(*id);
                out.put_u32(*index);
                out.put_u32(*pid);
                put_str(out, node);
                put_str(out, addr);
            }
            Frame::Hello { token } => {
                out.put_u8(OP_HELLO);
                put_str(out, token);
            }
            Frame::Reply { id, value } => {
                out.put_u8(OP_REPLY);
                out.put_u32(*id);
                out.put_u64(*value);
            }
            Frame::Message { channel, payload } => {
                out.put_u8(OP_MESSAGE);
                put_str(out, channel);
                out.put_slice(payload);
            }
            Frame::Error { id, message } => {
                out.put_u8(OP_ERROR);
                out.put_u32(*id);
                put_str(out, message);
            }
        }
        let body = (out.len() - start - 4) as u32;
        out[start..start + 4].copy_from_slice(&body.to_be_bytes());
    }

    /// The frame as bytes (length prefix included).
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::new();
        self.encode(&mut out);
        out.freeze()
    }

    /// The id of a request or an answer (0 for a message).
    pub fn id(&self) -> u32 {
        match self {
            Frame::Subscribe { id, .. }
            | Frame::Unsubscribe { id, .. }
            | Frame::Publish { id, .. }
            | Frame::NumSub { id, .. }
            | Frame::Register { id, .. }
            | Frame::Reply { id, .. }
            | Frame::Error { id, .. } => *id,
            Frame::Message { .. } | Frame::Hello { .. } => 0,
        }
    }
}

/// A [`Frame::Message`] encoded once, to be queued for every subscriber.
pub fn message_bytes(channel: &str, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(4 + 1 + 4 + channel.len() + payload.len());
    out.put_u32((1 + 4 + channel.len() + payload.len()) as u32);
    out.put_u8(OP_MESSAGE);
    put_str(&mut out, channel);
    out.put_slice(payload);
    out.freeze()
}

/// A cursor over one frame body.
struct Body(Bytes);

impl Body {
    fn need(&self, n: usize) -> Result<(), FrameError> {
        if self.0.remaining() < n { Err(FrameError::Truncated) } else { Ok(()) }
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        self.need(1)?;
        Ok(self.0.get_u8())
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        self.need(4)?;
        Ok(self.0.get_u32())
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        self.need(8)?;
        Ok(self.0.get_u64())
    }
    fn string(&mut self) -> Result<String, FrameError> {
        let len = self.u32()? as usize;
        self.need(len)?;
        let raw = self.0.split_to(len);
        String::from_utf8(raw.to_vec()).map_err(|_| FrameError::Utf8)
    }
    fn kind(&mut self) -> Result<SubKind, FrameError> {
        match self.u8()? {
            0 => Ok(SubKind::Channel),
            1 => Ok(SubKind::Pattern),
            k => Err(FrameError::Kind(k)),
        }
    }
    fn rest(self) -> Bytes {
        self.0
    }
    fn end(self) -> Result<(), FrameError> {
        if self.0.is_empty() { Ok(()) } else { Err(FrameError::Trailing) }
    }
}

/// Takes one frame off the front of `buf`: `Ok(None)` if it is not complete yet.
///
/// # Errors
/// A frame longer than `max_frame`, an unknown opcode, a truncated or malformed body:
/// the stream cannot be trusted any more and must be closed.
pub fn decode(buf: &mut BytesMut, max_frame: usize) -> Result<Option<Frame>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max_frame {
        return Err(FrameError::TooLarge { len, max: max_frame });
    }
    if len == 0 {
        return Err(FrameError::Truncated);
    }
    if buf.len() < 4 + len {
        buf.reserve(4 + len - buf.len());
        return Ok(None);
    }
    buf.advance(4);
    let mut body = Body(buf.split_to(len).freeze());
    let op = body.u8()?;
    let frame = match op {
        OP_SUBSCRIBE | OP_UNSUBSCRIBE => {
            let id = body.u32()?;
            let kind = body.kind()?;
            let name = body.string()?;
            body.end()?;
            if op == OP_SUBSCRIBE { Frame::Subscribe { id, kind, name } } else { Frame::Unsubscribe { id, kind, name } }
        }
        OP_PUBLISH => {
            let id = body.u32()?;
            let channel = body.string()?;
            Frame::Publish { id, channel, payload: body.rest() }
        }
        OP_NUMSUB => {
            let id = body.u32()?;
            let channel = body.string()?;
            body.end()?;
            Frame::NumSub { id, channel }
        }
        OP_REGISTER => {
            let id = body.u32()?;
            let index = body.u32()?;
            let pid = body.u32()?;
            let node = body.string()?;
            let addr = body.string()?;
            body.end()?;
            Frame::Register { id, index, pid, node, addr }
        }
        OP_HELLO => {
            let token = body.string()?;
            body.end()?;
            Frame::Hello { token }
        }
        OP_REPLY => {
            let id = body.u32()?;
            let value = body.u64()?;
            body.end()?;
            Frame::Reply { id, value }
        }
        OP_MESSAGE => {
            let channel = body.string()?;
            Frame::Message { channel, payload: body.rest() }
        }
        OP_ERROR => {
            let id = body.u32()?;
            let message = body.string()?;
            body.end()?;
            Frame::Error { id, message }
        }
        other => return Err(FrameError::Opcode(other)),
    };
    Ok(Some(frame))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Frame> {
        vec![
            Frame::Subscribe { id: 1, kind: SubKind::Channel, name: "socket.io-request#/#".into() },
            Frame::Subscribe { id: 2, kind: SubKind::Pattern, name: "socket.io#/#*".into() },
            Frame::Unsubscribe { id: 0, kind: SubKind::Pattern, name: "a*".into() },
            Frame::Publish { id: 7, channel: "c".into(), payload: Bytes::from_static(&[0, 1, 2, 255]) },
            Frame::Publish { id: 0, channel: String::new(), payload: Bytes::new() },
            Frame::NumSub { id: u32::MAX, channel: "é".into() },
            Frame::Register { id: 3, index: 2, pid: 1234, node: "AbC2".into(), addr: "127.0.0.1:4000".into() },
            Frame::Hello { token: "secret".into() },
            Frame::Reply { id: 9, value: u64::MAX },
            Frame::Message { channel: "x".into(), payload: Bytes::from_static(b"hello") },
            Frame::Error { id: 4, message: "no".into() },
        ]
    }

    #[test]
    fn every_frame_round_trips_even_byte_by_byte() {
        let mut wire = BytesMut::new();
        for f in all() {
            f.encode(&mut wire);
        }
        let wire = wire.freeze();
        // all at once
        let mut buf = BytesMut::from(&wire[..]);
        let mut got = Vec::new();
        while let Some(f) = decode(&mut buf, DEFAULT_MAX_FRAME).unwrap() {
            got.push(f);
        }
        assert_eq!(got, all());
        assert!(buf.is_empty());
        // one byte at a time
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            while let Some(f) = decode(&mut buf, DEFAULT_MAX_FRAME).unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, all());
    }

    #[test]
    fn message_bytes_is_a_message_frame() {
        let mut buf = BytesMut::from(&message_bytes("chan", b"\x00data")[..]);
        assert_eq!(
            decode(&mut buf, 100).unwrap(),
            Some(Frame::Message { channel: "chan".into(), payload: Bytes::from_static(b"\x00data") })
        );
    }

    #[test]
    fn oversized_frames_are_refused_before_allocating() {
        let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
        assert!(matches!(decode(&mut buf, 1024), Err(FrameError::TooLarge { .. })));
        let big = Frame::Publish { id: 0, channel: "c".into(), payload: Bytes::from(vec![0u8; 2000]) };
        let mut buf = BytesMut::from(&big.to_bytes()[..]);
        assert!(matches!(decode(&mut buf, 1024), Err(FrameError::TooLarge { .. })));
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let cases: Vec<Vec<u8>> = vec![
            vec![0, 0, 0, 0],                                                   // empty body
            vec![0, 0, 0, 1, 99],                                               // unknown opcode
            vec![0, 0, 0, 2, OP_SUBSCRIBE, 0],                                  // truncated id
            vec![0, 0, 0, 6, OP_SUBSCRIBE, 0, 0, 0, 1, 7],                      // bad kind
            vec![0, 0, 0, 10, OP_NUMSUB, 0, 0, 0, 1, 0, 0, 0, 9, b'a'],         // string longer than body
            vec![0, 0, 0, 10, OP_NUMSUB, 0, 0, 0, 1, 0, 0, 0, 1, 0xff],         // not UTF-8
            vec![0, 0, 0, 14, OP_REPLY, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 5], // trailing byte
        ];
        for c in cases {
            let mut buf = BytesMut::from(&c[..]);
            assert!(decode(&mut buf, 1024).is_err(), "{c:?} should be an error");
        }
        // arbitrary bytes never panic
        let mut seed = 0x1234_5678_u32;
        for _ in 0..2000 {
            let mut v = Vec::new();
            let n = (seed % 40) as usize;
            for _ in 0..n {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                v.push((seed >> 16) as u8);
            }
            if n >= 4 {
                v[..3].fill(0);
            }
            let mut buf = BytesMut::from(&v[..]);
            while let Ok(Some(_)) = decode(&mut buf, 64) {}
        }
    }
}
