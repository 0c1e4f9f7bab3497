//! The incremental frame [`Decoder`]: feeds on socket chunks, reassembles
//! fragmented messages, inflates permessage-deflate messages and validates
//! everything RFC 6455 requires.

use std::mem;
use std::ops::ControlFlow;

use bytes::Bytes;

use crate::deflate::Inflater;
use crate::error::Error;
use crate::frame::{CloseFrame, MAX_HEADER_LEN, OpCode, Role, apply_mask_at, is_valid_close_code};

/// Size of the stack buffer used to unmask compressed payload before inflating.
const UNMASK_SCRATCH: usize = 4096;

/// A complete message or control frame produced by the [`Decoder`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Message {
    /// A text message; already validated as UTF-8 (after decompression), so
    /// `std::str::from_utf8` on it cannot fail.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A ping; answer with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong.
    Pong(Bytes),
    /// A close frame; `None` when it carried no status code.
    Close(Option<CloseFrame>),
}

/// Limits and role of a [`Decoder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecoderConfig {
    /// Which side we are; decides whether incoming frames must be masked.
    pub role: Role,
    /// Largest message accepted, in bytes, counting the whole reassembled
    /// message, both as received and after decompression. Default 1 000 000.
    pub max_message_size: usize,
    /// Largest number of frames one data message may be split into.
    /// Default 1024.
    pub max_fragments: usize,
}

impl Default for DecoderConfig {
    fn default() -> Self {
        Self { role: Role::Server, max_message_size: 1_000_000, max_fragments: 1024 }
    }
}

/// What the payload of the frame being received belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Data,
    Close,
    Ping,
    Pong,
}

/// The frame whose header has been parsed and whose payload is arriving.
#[derive(Debug, Clone, Copy)]
struct FrameState {
    kind: FrameKind,
    fin: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes still to come.
    remaining: usize,
    /// Position in the masking key of the next payload byte.
    mask_offset: usize,
}

/// The data message being reassembled.
#[derive(Debug, Clone, Copy)]
struct MessageState {
    text: bool,
    compressed: bool,
    fragments: usize,
    /// Payload bytes received so far, as on the wire (compressed or not).
    wire_len: usize,
}

/// An incremental, allocation-frugal WebSocket frame decoder.
///
/// Feed it the chunks read from the socket with [`Decoder::decode`]. Between
/// messages it holds no heap memory at all: bytes are buffered only while a
/// frame or a fragmented message is incomplete, and that buffer is handed
/// over to the produced [`Message`] when it completes (and replaced by an
/// empty, unallocated one).
///
/// Declared lengths are checked against
/// [`DecoderConfig::max_message_size`] as soon as a header is complete,
/// before anything is allocated. Even then the buffer only grows with the
/// bytes that actually arrive: a frame contained in one chunk costs a single
/// allocation of exactly its length, while a frame arriving in pieces holds
/// at most about twice what has been received, so a peer cannot pin
/// `max_message_size` bytes by sending a bare header.
///
/// Any error is fatal: the decoder frees its buffers and keeps returning the
/// same error.
#[derive(Debug)]
pub struct Decoder {
    config: DecoderConfig,
    inflater: Option<Inflater>,
    /// Bytes of a frame header received so far (up to 14).
    header: [u8; MAX_HEADER_LEN],
    header_len: usize,
    frame: Option<FrameState>,
    message: Option<MessageState>,
    /// Payload of the data message in progress (inflated when compressed).
    message_buf: Vec<u8>,
    /// Payload of the control frame in progress.
    control_buf: Vec<u8>,
    /// Input left over after the callback asked to stop.
    pending: Vec<u8>,
    failed: Option<Error>,
}

impl Decoder {
    /// A decoder with the given role and limits and no inflater.
    #[must_use]
    pub fn new(config: DecoderConfig) -> Self {
        Self {
            config,
            inflater: None,
            header: [0; MAX_HEADER_LEN],
            header_len: 0,
            frame: None,
            message: None,
            message_buf: Vec::new(),
            control_buf: Vec::new(),
            pending: Vec::new(),
            failed: None,
        }
    }

    /// The configuration this decoder was built with.
    #[must_use]
    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    /// Enables permessage-deflate: data messages whose first frame has RSV1
    /// set are inflated. Call after a successful negotiation, before decoding.
    pub fn set_inflater(&mut self, inflater: Inflater) {
        self.inflater = Some(inflater);
    }

    /// The inflater, if permessage-deflate is enabled.
    #[must_use]
    pub fn inflater(&self) -> Option<&Inflater> {
        self.inflater.as_ref()
    }

    /// True when no partial frame, partial message or leftover input is held.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.header_len == 0 && self.frame.is_none() && self.message.is_none() && self.pending.is_empty()
    }

    /// True when input was kept after the callback returned
    /// [`ControlFlow::Break`]: call `decode(&[], ..)` to process it.
    #[must_use]
    pub fn has_pending_input(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Bytes of heap capacity currently held by the decoder's buffers (not
    /// counting the inflater's state, see [`Inflater::holds_state`]).
    /// Zero whenever the decoder is idle.
    #[must_use]
    pub fn buffered_capacity(&self) -> usize {
        self.message_buf.capacity() + self.control_buf.capacity() + self.pending.capacity()
    }

    /// Feeds one chunk of bytes read from the socket.
    ///
    /// Every complete message or control frame is passed to `on_message` in
    /// order; control frames interleaved in a fragmented message are
    /// delivered immediately. If `on_message` returns
    /// [`ControlFlow::Break`], decoding stops and the unprocessed rest of the
    /// chunk is kept: call `decode(&[], ..)` to resume before feeding more.
    ///
    /// # Errors
    /// Any protocol violation or exceeded limit. Errors are fatal for the
    /// connection: send a close frame with [`Error::close_code`]. Once an
    /// error is returned, every later call returns it again.
    pub fn decode(
        &mut self,
        chunk: &[u8],
        mut on_message: impl FnMut(Message) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let result = self.decode_inner(chunk, &mut on_message);
        if let Err(error) = &result {
            self.fail(error.clone());
        }
        result
    }

    fn decode_inner(
        &mut self,
        chunk: &[u8],
        on_message: &mut impl FnMut(Message) -> ControlFlow<()>,
    ) -> Result<(), Error> {
        if !self.pending.is_empty() {
            let mut pending = mem::take(&mut self.pending);
            if let Some(consumed) = self.run(&pending, on_message)? {
                pending.drain(..consumed.min(pending.len()));
                pending.extend_from_slice(chunk);
                if !pending.is_empty() {
                    self.pending = pending;
                }
                return Ok(());
            }
        }
        if let Some(consumed) = self.run(chunk, on_message)?
            && let Some(rest) = chunk.get(consumed..)
            && !rest.is_empty()
        {
            self.pending = rest.to_vec();
        }
        Ok(())
    }

    /// Frees everything and remembers the error.
    fn fail(&mut self, error: Error) {
        self.failed = Some(error);
        self.header_len = 0;
        self.frame = None;
        self.message = None;
        self.message_buf = Vec::new();
        self.control_buf = Vec::new();
        self.pending = Vec::new();
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.abort();
        }
    }

    /// Decodes `input`; returns how much was consumed if the callback broke.
    fn run(
        &mut self,
        input: &[u8],
        on_message: &mut impl FnMut(Message) -> ControlFlow<()>,
    ) -> Result<Option<usize>, Error> {
        let mut rest = input;
        loop {
            let mut frame = match self.frame.take() {
                Some(frame) => frame,
                None => {
                    if rest.is_empty() {
                        return Ok(None);
                    }
                    match self.read_header(&mut rest)? {
                        Some(frame) => frame,
                        None => return Ok(None),
                    }
                }
            };
            self.read_payload(&mut frame, &mut rest)?;
            if frame.remaining > 0 {
                // `rest` is exhausted.
                self.frame = Some(frame);
                return Ok(None);
            }
            if let Some(message) = self.finish_frame(frame)?
                && on_message(message).is_break()
            {
                return Ok(Some(input.len() - rest.len()));
            }
        }
    }

    /// Moves up to `upto - header_len` header bytes from `rest`.
    fn fill_header(&mut self, rest: &mut &[u8], upto: usize) {
        let have = self.header_len;
        let n = upto.saturating_sub(have).min(rest.len());
        if let (Some(dst), Some((src, tail))) = (self.header.get_mut(have..have + n), rest.split_at_checked(n)) {
            dst.copy_from_slice(src);
            self.header_len += n;
            *rest = tail;
        }
    }

    /// Accumulates header bytes; returns the frame once its header is complete.
    fn read_header(&mut self, rest: &mut &[u8]) -> Result<Option<FrameState>, Error> {
        if self.header_len < 2 {
            self.fill_header(rest, 2);
            if self.header_len < 2 {
                return Ok(None);
            }
            self.check_first_bytes()?;
        }
        let [b0, b1, ..] = self.header;
        let total = match b1 & 0x7F {
            126 => 4,
            127 => 10,
            _ => 2,
        } + if b1 & 0x80 != 0 { 4 } else { 0 };
        self.fill_header(rest, total);
        if self.header_len < total {
            return Ok(None);
        }
        self.header_len = 0;
        self.start_frame(b0, b1).map(Some)
    }

    /// Validates the first two header bytes, so that violations are reported
    /// before the rest of the header arrives.
    fn check_first_bytes(&self) -> Result<(), Error> {
        let [b0, b1, ..] = self.header;
        let fin = b0 & 0x80 != 0;
        let rsv = b0 & 0x70;
        if rsv & 0x30 != 0 {
            return Err(Error::ReservedBits(rsv));
        }
        let rsv1 = rsv != 0;
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(Error::UnknownOpCode(b0 & 0x0F))?;
        let masked = b1 & 0x80 != 0;
        match self.config.role {
            Role::Server if !masked => return Err(Error::UnmaskedFrame),
            Role::Client if masked => return Err(Error::MaskedFrame),
            _ => {}
        }
        match opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                if rsv1 {
                    return Err(Error::ReservedBits(rsv));
                }
                if !fin {
                    return Err(Error::FragmentedControlFrame);
                }
                if b1 & 0x7F > 125 {
                    return Err(Error::ControlFrameTooLong);
                }
            }
            OpCode::Continuation => {
                if self.message.is_none() {
                    return Err(Error::UnexpectedContinuation);
                }
                if rsv1 {
                    return Err(Error::ReservedBits(rsv));
                }
            }
            OpCode::Text | OpCode::Binary => {
                if self.message.is_some() {
                    return Err(Error::ExpectedContinuation);
                }
                if rsv1 && self.inflater.is_none() {
                    return Err(Error::ReservedBits(rsv));
                }
            }
        }
        Ok(())
    }

    /// Parses the complete header (already checked by `check_first_bytes`),
    /// enforces the size limits and prepares the payload buffer.
    fn start_frame(&mut self, b0: u8, b1: u8) -> Result<FrameState, Error> {
        let h = self.header;
        let (declared, mask_at) = match b1 & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 63 != 0 {
                    return Err(Error::InvalidLength);
                }
                (len, 10)
            }
            len => (u64::from(len), 2),
        };
        let mask = if b1 & 0x80 != 0 {
            match h.get(mask_at..mask_at + 4) {
                Some(&[a, b, c, d]) => Some([a, b, c, d]),
                _ => return Err(Error::InvalidLength),
            }
        } else {
            None
        };
        let fin = b0 & 0x80 != 0;
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(Error::UnknownOpCode(b0 & 0x0F))?;
        let max = self.config.max_message_size;
        let kind = match opcode {
            OpCode::Close => FrameKind::Close,
            OpCode::Ping => FrameKind::Ping,
            OpCode::Pong => FrameKind::Pong,
            OpCode::Text | OpCode::Binary | OpCode::Continuation => FrameKind::Data,
        };
        let remaining = if kind == FrameKind::Data {
            let mut message = match self.message {
                Some(message) => message,
                None => {
                    MessageState { text: opcode == OpCode::Text, compressed: b0 & 0x40 != 0, fragments: 0, wire_len: 0 }
                }
            };
            message.fragments += 1;
            if message.fragments > self.config.max_fragments {
                return Err(Error::TooManyFragments { max: self.config.max_fragments });
            }
            // The size check happens before anything is allocated or buffered.
            let room = max.saturating_sub(message.wire_len);
            let len = match usize::try_from(declared) {
                Ok(len) if len <= room => len,
                _ => return Err(Error::MessageTooBig { max }),
            };
            message.wire_len += len;
            // Nothing is allocated yet: the payload buffer grows as bytes
            // actually arrive (see `read_payload`).
            self.message = Some(message);
            len
        } else {
            // At most 125, checked by `check_first_bytes`.
            let len = usize::try_from(declared).map_err(|_| Error::ControlFrameTooLong)?;
            self.control_buf = Vec::with_capacity(len);
            len
        };
        Ok(FrameState { kind, fin, mask, remaining, mask_offset: 0 })
    }

    /// Moves as much of the frame's payload as `rest` holds into place.
    fn read_payload(&mut self, frame: &mut FrameState, rest: &mut &[u8]) -> Result<(), Error> {
        let n = frame.remaining.min(rest.len());
        let Some((data, tail)) = rest.split_at_checked(n) else {
            return Ok(());
        };
        *rest = tail;
        frame.remaining -= n;
        if data.is_empty() {
            return Ok(());
        }
        let buf = if frame.kind == FrameKind::Data {
            if self.message.is_some_and(|m| m.compressed) {
                return self.inflate_payload(frame, data);
            }
            // The buffer may grow up to the end of the message if this is its
            // last frame, else up to the message size limit.
            let limit =
                if frame.fin { self.message_buf.len() + n + frame.remaining } else { self.config.max_message_size };
            grow_for(&mut self.message_buf, n, limit);
            &mut self.message_buf
        } else {
            &mut self.control_buf
        };
        let start = buf.len();
        buf.extend_from_slice(data);
        if let Some(mask) = frame.mask
            && let Some(appended) = buf.get_mut(start..)
        {
            frame.mask_offset = apply_mask_at(appended, mask, frame.mask_offset);
        }
        Ok(())
    }

    /// Unmasks compressed payload through a stack buffer and inflates it into
    /// the message buffer, so compressed bytes are never buffered.
    fn inflate_payload(&mut self, frame: &mut FrameState, data: &[u8]) -> Result<(), Error> {
        let max = self.config.max_message_size;
        let Some(inflater) = self.inflater.as_mut() else {
            return Err(Error::ReservedBits(0x40));
        };
        match frame.mask {
            None => inflater.inflate(data, &mut self.message_buf, max),
            Some(mask) => {
                let mut scratch = [0u8; UNMASK_SCRATCH];
                for piece in data.chunks(UNMASK_SCRATCH) {
                    let Some(buf) = scratch.get_mut(..piece.len()) else {
                        break;
                    };
                    buf.copy_from_slice(piece);
                    frame.mask_offset = apply_mask_at(buf, mask, frame.mask_offset);
                    inflater.inflate(buf, &mut self.message_buf, max)?;
                }
                Ok(())
            }
        }
    }

    /// Turns a completely received frame into a message, if it ends one.
    fn finish_frame(&mut self, frame: FrameState) -> Result<Option<Message>, Error> {
        let message = match frame.kind {
            FrameKind::Ping => Message::Ping(Bytes::from(mem::take(&mut self.control_buf))),
            FrameKind::Pong => Message::Pong(Bytes::from(mem::take(&mut self.control_buf))),
            FrameKind::Close => parse_close(&mem::take(&mut self.control_buf))?,
            FrameKind::Data if !frame.fin => return Ok(None),
            FrameKind::Data => self.finish_message()?,
        };
        Ok(Some(message))
    }

    /// Completes the data message in progress.
    fn finish_message(&mut self) -> Result<Message, Error> {
        let Some(state) = self.message.take() else {
            return Err(Error::UnexpectedContinuation);
        };
        if state.compressed {
            let max = self.config.max_message_size;
            let Some(inflater) = self.inflater.as_mut() else {
                return Err(Error::ReservedBits(0x40));
            };
            inflater.finish(&mut self.message_buf, max)?;
        }
        let mut payload = mem::take(&mut self.message_buf);
        if payload.capacity() != payload.len() {
            // Only fragmented or compressed messages get here; a single frame
            // fills a buffer allocated with its exact length.
            payload.shrink_to_fit();
        }
        if state.text {
            std::str::from_utf8(&payload).map_err(|_| Error::InvalidUtf8)?;
            Ok(Message::Text(Bytes::from(payload)))
        } else {
            Ok(Message::Binary(Bytes::from(payload)))
        }
    }
}

/// Smallest allocation made for a payload arriving in pieces, to avoid many
/// tiny reallocations at the start of a large frame.
const MIN_GROWTH: usize = 4096;

/// Makes room for `additional` bytes that have arrived and are about to be
/// appended. Capacity grows geometrically (amortised O(1) per byte) but never
/// beyond `limit` unless the bytes themselves need it, so:
/// - a frame that arrives whole gets one allocation of exactly its length;
/// - memory held is at most about twice the bytes actually received, never
///   the length a header merely declared (a 14-byte header cannot make the
///   decoder allocate `max_message_size`).
fn grow_for(buf: &mut Vec<u8>, additional: usize, limit: usize) {
    if buf.capacity() - buf.len() >= additional {
        return;
    }
    let needed = buf.len() + additional;
    let target = needed.max(buf.capacity().saturating_mul(2).max(MIN_GROWTH).min(limit));
    buf.reserve_exact(target - buf.len());
}

/// Parses and validates a close frame payload (RFC 6455 §5.5.1, §7.4).
fn parse_close(payload: &[u8]) -> Result<Message, Error> {
    match payload.split_first_chunk::<2>() {
        None if payload.is_empty() => Ok(Message::Close(None)),
        None => Err(Error::InvalidClosePayload),
        Some((code, reason)) => {
            let code = u16::from_be_bytes(*code);
            if !is_valid_close_code(code) {
                return Err(Error::InvalidCloseCode(code));
            }
            let reason = std::str::from_utf8(reason).map_err(|_| Error::InvalidUtf8)?;
            Ok(Message::Close(Some(CloseFrame { code, reason: reason.to_owned() })))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::{XorShift, decode_all, decode_chunked, masked, raw_frame};

    fn server() -> Decoder {
        Decoder::new(DecoderConfig::default())
    }

    fn client() -> Decoder {
        Decoder::new(DecoderConfig { role: Role::Client, ..DecoderConfig::default() })
    }

    fn with_limits(max_message_size: usize, max_fragments: usize) -> Decoder {
        Decoder::new(DecoderConfig { role: Role::Server, max_message_size, max_fragments })
    }

    fn text(s: &str) -> Message {
        Message::Text(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn close(code: u16, reason: &str) -> Message {
        Message::Close(Some(CloseFrame { code, reason: reason.to_owned() }))
    }

    #[test]
    fn rfc6455_section_5_7_examples_decode() {
        let hello = Bytes::from_static(b"Hello");
        // Client role: the server's unmasked frames.
        let client_cases: &[(&str, &[u8], Vec<Message>)] = &[
            ("single-frame unmasked text", &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], vec![text("Hello")]),
            ("fragmented unmasked text", &[0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f], vec![text("Hello")]),
            ("unmasked ping", &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f], vec![Message::Ping(hello.clone())]),
        ];
        for (name, bytes, want) in client_cases {
            assert_eq!(&decode_all(&mut client(), bytes).unwrap(), want, "{name}");
        }
        // Server role: the client's masked frames.
        let server_cases: &[(&str, &[u8], Vec<Message>)] = &[
            (
                "single-frame masked text",
                &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
                vec![text("Hello")],
            ),
            (
                "masked pong",
                &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
                vec![Message::Pong(hello)],
            ),
        ];
        for (name, bytes, want) in server_cases {
            assert_eq!(&decode_all(&mut server(), bytes).unwrap(), want, "{name}");
        }
        // 256-byte and 64 KiB binary messages with 16- and 64-bit lengths.
        for (len, header) in
            [(256usize, vec![0x82, 0x7E, 0x01, 0x00]), (65536, vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00])]
        {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut bytes = header;
            bytes.extend_from_slice(&payload);
            let mut decoder = client();
            assert_eq!(decode_all(&mut decoder, &bytes).unwrap(), [Message::Binary(payload.clone().into())]);
            assert!(decoder.is_idle());
            // Same thing masked, through the server decoder.
            let mut decoder = server();
            assert_eq!(decode_all(&mut decoder, &masked(0x82, &payload)).unwrap(), [Message::Binary(payload.into())]);
            assert_eq!(decoder.buffered_capacity(), 0);
        }
    }

    /// A stream mixing every kind of frame, with the messages it decodes to.
    fn mixed_stream() -> (Vec<u8>, Vec<Message>) {
        let mut bytes = Vec::new();
        let mut want = Vec::new();
        bytes.extend(masked(0x81, b"Hello"));
        want.push(text("Hello"));
        bytes.extend(masked(0x82, &[1, 2, 3]));
        want.push(Message::Binary(Bytes::from_static(&[1, 2, 3])));
        // Fragmented text with a ping and a pong in the middle.
        bytes.extend(masked(0x01, "Gr".as_bytes()));
        bytes.extend(masked(0x89, b"ping"));
        want.push(Message::Ping(Bytes::from_static(b"ping")));
        bytes.extend(masked(0x00, "ü".as_bytes()));
        bytes.extend(masked(0x8A, b""));
        want.push(Message::Pong(Bytes::new()));
        bytes.extend(masked(0x80, "ße".as_bytes()));
        want.push(text("Grüße"));
        // Empty messages and an empty fragment.
        bytes.extend(masked(0x81, b""));
        want.push(text(""));
        bytes.extend(masked(0x02, b""));
        bytes.extend(masked(0x80, b"x"));
        want.push(Message::Binary(Bytes::from_static(b"x")));
        // Medium (16-bit length) and large (64-bit length) binaries.
        let medium: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        bytes.extend(masked(0x82, &medium));
        want.push(Message::Binary(medium.into()));
        let large: Vec<u8> = (0..70_000u32).map(|i| (i * 31) as u8).collect();
        bytes.extend(masked(0x02, &large[..40_000]));
        bytes.extend(masked(0x80, &large[40_000..]));
        want.push(Message::Binary(large.into()));
        bytes.extend(masked(0x88, &crate::frame::close_payload(1000, "done")));
        want.push(close(1000, "done"));
        bytes.extend(masked(0x88, b""));
        want.push(Message::Close(None));
        (bytes, want)
    }

    #[test]
    fn one_chunk_and_byte_at_a_time_agree() {
        let (bytes, want) = mixed_stream();
        let mut decoder = server();
        assert_eq!(decode_all(&mut decoder, &bytes).unwrap(), want);
        assert!(decoder.is_idle());
        assert_eq!(decoder.buffered_capacity(), 0);

        let mut decoder = server();
        let mut got = Vec::new();
        for &byte in &bytes {
            let before = got.len();
            decoder
                .decode(&[byte], |m| {
                    got.push(m);
                    ControlFlow::Continue(())
                })
                .unwrap();
            if got.len() > before
                && matches!(got.last(), Some(Message::Text(_) | Message::Binary(_) | Message::Close(_)))
            {
                assert!(decoder.is_idle(), "idle after message {}", got.len());
                assert_eq!(decoder.buffered_capacity(), 0);
            }
        }
        assert_eq!(got, want);
    }

    #[test]
    fn every_split_point_gives_the_same_messages() {
        let (bytes, want) = mixed_stream();
        // Two chunks, split everywhere in the small frames at the start and
        // at a stride across the large ones.
        let splits = (0..400).chain((400..bytes.len()).step_by(997));
        for split in splits {
            let mut decoder = server();
            let mut got = decode_all(&mut decoder, &bytes[..split]).unwrap();
            got.extend(decode_all(&mut decoder, &bytes[split..]).unwrap());
            assert_eq!(got, want, "split at {split}");
            assert!(decoder.is_idle());
            assert_eq!(decoder.buffered_capacity(), 0);
        }
        // Pseudo-random chunk sizes.
        let mut rng = XorShift(0x5EED);
        for _ in 0..50 {
            let sizes: Vec<usize> = (0..16).map(|_| 1 + rng.below(3000)).collect();
            let mut decoder = server();
            assert_eq!(decode_chunked(&mut decoder, &bytes, &sizes).unwrap(), want);
            assert!(decoder.is_idle());
        }
    }

    #[test]
    fn malformed_frames_are_rejected_with_the_right_close_code() {
        let two_pow_63 = [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4];
        let mut long_ping = masked(0x89, &[0; 125]);
        long_ping[1] = 0x80 | 126; // claims an extended length
        let cases: Vec<(&str, Vec<u8>, Error)> = vec![
            ("unmasked frame to server", raw_frame(0x81, b"hi", None), Error::UnmaskedFrame),
            ("rsv1 without extension", masked(0xC1, b"hi"), Error::ReservedBits(0x40)),
            ("rsv2", masked(0xA1, b"hi"), Error::ReservedBits(0x20)),
            ("rsv3", masked(0x91, b"hi"), Error::ReservedBits(0x10)),
            ("opcode 3", masked(0x83, b""), Error::UnknownOpCode(3)),
            ("opcode 7", masked(0x87, b""), Error::UnknownOpCode(7)),
            ("opcode 0xB", masked(0x8B, b""), Error::UnknownOpCode(0xB)),
            ("opcode 0xF", masked(0x8F, b""), Error::UnknownOpCode(0xF)),
            ("fragmented ping", masked(0x09, b"x"), Error::FragmentedControlFrame),
            ("fragmented close", masked(0x08, b""), Error::FragmentedControlFrame),
            ("ping over 125 bytes", masked(0x89, &[0; 126]), Error::ControlFrameTooLong),
            ("close with 16-bit length", long_ping, Error::ControlFrameTooLong),
            ("rsv1 on a ping", masked(0xC9, b""), Error::ReservedBits(0x40)),
            ("continuation without start", masked(0x80, b"x"), Error::UnexpectedContinuation),
            (
                "text during fragmented message",
                [masked(0x01, b"a"), masked(0x81, b"b")].concat(),
                Error::ExpectedContinuation,
            ),
            (
                "binary during fragmented message",
                [masked(0x02, b"a"), masked(0x02, b"b")].concat(),
                Error::ExpectedContinuation,
            ),
            ("64-bit length with MSB set", two_pow_63.to_vec(), Error::InvalidLength),
            ("invalid UTF-8", masked(0x81, &[0xC3, 0x28]), Error::InvalidUtf8),
            ("truncated UTF-8", masked(0x81, &[0xE2, 0x82]), Error::InvalidUtf8),
            ("surrogate in UTF-8", masked(0x81, &[0xED, 0xA0, 0x80]), Error::InvalidUtf8),
            (
                "UTF-8 invalid across fragments",
                [masked(0x01, &[0xE2, 0x82]), masked(0x80, &[0x28])].concat(),
                Error::InvalidUtf8,
            ),
            ("close with 1-byte payload", masked(0x88, &[0x03]), Error::InvalidClosePayload),
            ("close code 1005", masked(0x88, &[0x03, 0xED]), Error::InvalidCloseCode(1005)),
            ("close code 1006", masked(0x88, &[0x03, 0xEE]), Error::InvalidCloseCode(1006)),
            ("close code 999", masked(0x88, &[0x03, 0xE7]), Error::InvalidCloseCode(999)),
            ("close code 1015", masked(0x88, &[0x03, 0xF7]), Error::InvalidCloseCode(1015)),
            ("close code 5000", masked(0x88, &[0x13, 0x88]), Error::InvalidCloseCode(5000)),
            ("close reason not UTF-8", masked(0x88, &[0x03, 0xE8, 0xFF, 0xFE]), Error::InvalidUtf8),
        ];
        for (name, bytes, want) in cases {
            let code = want.close_code();
            // Whole, and byte at a time.
            let mut decoder = server();
            assert_eq!(decode_all(&mut decoder, &bytes), Err(want.clone()), "{name}");
            let mut decoder = server();
            assert_eq!(decode_chunked(&mut decoder, &bytes, &[1]), Err(want), "{name} (bytewise)");
            assert_eq!(decoder.buffered_capacity(), 0, "{name}");
            let expected_code = match name {
                n if n.contains("UTF-8") => 1007,
                _ => 1002,
            };
            assert_eq!(code, expected_code, "{name}");
        }
    }

    #[test]
    fn client_role_rejects_masked_frames_and_accepts_unmasked() {
        let mut decoder = client();
        assert_eq!(decode_all(&mut decoder, &masked(0x81, b"hi")), Err(Error::MaskedFrame));
        let mut decoder = client();
        assert_eq!(decode_all(&mut decoder, &raw_frame(0x81, b"hi", None)).unwrap(), [text("hi")]);
    }

    #[test]
    fn huge_declared_lengths_fail_before_any_allocation() {
        let cases: &[(&str, u64)] = &[
            ("2^40", 1 << 40),
            ("10 GB", 10_000_000_000),
            ("2^63 - 1", (1 << 63) - 1),
            ("one over the limit", 1_000_001),
        ];
        for &(name, len) in cases {
            let mut header = vec![0x82, 0xFF];
            header.extend_from_slice(&len.to_be_bytes());
            header.extend_from_slice(&crate::test_util::MASK);
            let mut decoder = server();
            let err = decode_all(&mut decoder, &header).unwrap_err();
            assert_eq!(err, Error::MessageTooBig { max: 1_000_000 }, "{name}");
            assert_eq!(err.close_code(), 1009);
            assert_eq!(decoder.buffered_capacity(), 0, "{name}");
        }
        // Exactly at the limit is fine.
        let mut decoder = with_limits(1000, 8);
        let payload = vec![9u8; 1000];
        assert_eq!(decode_all(&mut decoder, &masked(0x82, &payload)).unwrap(), [Message::Binary(payload.into())]);
    }

    #[test]
    fn limits_apply_to_the_reassembled_message() {
        // Two fragments that fit individually but not together; the second
        // header alone triggers the error.
        let mut decoder = with_limits(100, 8);
        decode_all(&mut decoder, &masked(0x02, &[0; 60])).unwrap();
        assert!(!decoder.is_idle());
        let second = masked(0x80, &[0; 41]);
        assert_eq!(decode_all(&mut decoder, &second[..6]), Err(Error::MessageTooBig { max: 100 }));
        assert_eq!(decoder.buffered_capacity(), 0);

        // Fragment count.
        let mut decoder = with_limits(1000, 3);
        let ok = [masked(0x01, b"a"), masked(0x00, b"b"), masked(0x80, b"c")].concat();
        assert_eq!(decode_all(&mut decoder, &ok).unwrap(), [text("abc")]);
        let too_many = [masked(0x01, b"a"), masked(0x00, b"b"), masked(0x00, b"c"), masked(0x80, b"d")].concat();
        let err = decode_all(&mut decoder, &too_many).unwrap_err();
        assert_eq!(err, Error::TooManyFragments { max: 3 });
        assert_eq!(err.close_code(), 1009);
    }

    #[test]
    fn utf8_split_across_fragments_is_valid_when_whole() {
        let euro = "€".as_bytes(); // E2 82 AC
        let bytes = [masked(0x01, &euro[..1]), masked(0x00, &euro[1..2]), masked(0x80, &euro[2..])].concat();
        for size in 1..=bytes.len() {
            let mut decoder = server();
            assert_eq!(decode_chunked(&mut decoder, &bytes, &[size]).unwrap(), [text("€")]);
        }
    }

    #[test]
    fn close_frames() {
        let cases: &[(&[u8], Message)] = &[
            (&[], Message::Close(None)),
            (&[0x03, 0xE8], close(1000, "")),
            (&[0x0B, 0xB8, b'o', b'k'], close(3000, "ok")),
            (&[0x13, 0x87], close(4999, "")),
            (&[0x03, 0xF3], close(1011, "")),
        ];
        for (payload, want) in cases {
            let mut decoder = server();
            assert_eq!(decode_all(&mut decoder, &masked(0x88, payload)).unwrap(), std::slice::from_ref(want));
        }
    }

    #[test]
    fn break_keeps_the_rest_and_resumes() {
        let bytes = [masked(0x81, b"one"), masked(0x89, b"p"), masked(0x81, b"two"), masked(0x01, b"thr")].concat();
        let tail = masked(0x80, b"ee");
        let mut decoder = server();
        let mut got = Vec::new();
        decoder
            .decode(&bytes, |m| {
                got.push(m);
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(got, [text("one")]);
        assert!(decoder.has_pending_input());
        assert!(!decoder.is_idle());
        assert!(decoder.buffered_capacity() > 0);

        // Resume with nothing new: one more message, then stop again.
        decoder
            .decode(&[], |m| {
                got.push(m);
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(got.len(), 2);

        // Break again while new input is added: the new bytes queue up behind.
        decoder
            .decode(&tail, |m| {
                got.push(m);
                ControlFlow::Break(())
            })
            .unwrap();
        assert_eq!(got.len(), 3);

        // Drain everything.
        decoder
            .decode(&[], |m| {
                got.push(m);
                ControlFlow::Continue(())
            })
            .unwrap();
        assert_eq!(got, [text("one"), Message::Ping(Bytes::from_static(b"p")), text("two"), text("three")]);
        assert!(decoder.is_idle());
        assert!(!decoder.has_pending_input());
        assert_eq!(decoder.buffered_capacity(), 0);

        // Breaking on the last message of a chunk keeps nothing.
        let mut decoder = server();
        decoder.decode(&masked(0x81, b"x"), |_| ControlFlow::Break(())).unwrap();
        assert!(decoder.is_idle());
        assert_eq!(decoder.buffered_capacity(), 0);
    }

    #[test]
    fn errors_are_sticky_and_free_memory() {
        let mut decoder = server();
        decode_all(&mut decoder, &masked(0x01, &[0; 500])).unwrap();
        assert!(decoder.buffered_capacity() >= 500);
        assert_eq!(decode_all(&mut decoder, &masked(0x81, b"")), Err(Error::ExpectedContinuation));
        assert_eq!(decoder.buffered_capacity(), 0);
        assert_eq!(decode_all(&mut decoder, &masked(0x81, b"ok")), Err(Error::ExpectedContinuation));
    }

    #[test]
    fn partial_frames_buffer_only_their_declared_size() {
        let mut decoder = server();
        let frame = masked(0x82, &[5; 1000]);
        decode_all(&mut decoder, &frame[..3]).unwrap();
        // Partial header: no heap.
        assert_eq!(decoder.buffered_capacity(), 0);
        assert!(!decoder.is_idle());
        // Complete header, no payload yet: still nothing allocated.
        decode_all(&mut decoder, &frame[3..8]).unwrap();
        assert_eq!(decoder.buffered_capacity(), 0);
        // Some payload: the buffer is sized for this frame (its last) only.
        decode_all(&mut decoder, &frame[8..20]).unwrap();
        assert_eq!(decoder.buffered_capacity(), 1000);
        assert_eq!(decode_all(&mut decoder, &frame[20..]).unwrap(), [Message::Binary(vec![5; 1000].into())]);
        assert_eq!(decoder.buffered_capacity(), 0);

        // A header declaring the maximum size pins nothing; memory follows
        // the bytes that actually arrive, and the final buffer is exact.
        let mut decoder = server();
        let big = vec![3u8; 1_000_000];
        let frame = masked(0x82, &big);
        decode_all(&mut decoder, &frame[..14]).unwrap();
        assert_eq!(decoder.buffered_capacity(), 0);
        decode_all(&mut decoder, &frame[14..114]).unwrap();
        assert_eq!(decoder.buffered_capacity(), 4096);
        let mut received = 100;
        for chunk in frame[114..].chunks(8192) {
            let got = decode_all(&mut decoder, chunk).unwrap();
            received += chunk.len();
            if got.is_empty() {
                let capacity = decoder.buffered_capacity();
                assert!(capacity >= received && capacity <= 2 * received + 8192, "{capacity}");
            } else {
                assert_eq!(got, [Message::Binary(big.clone().into())]);
            }
        }
        assert_eq!(decoder.buffered_capacity(), 0);

        // Many fragments arriving together grow the buffer geometrically.
        let mut decoder = with_limits(1_000_000, 2000);
        let mut bytes = masked(0x02, &[1; 500]);
        for _ in 0..998 {
            bytes.extend(masked(0x00, &[1; 500]));
        }
        bytes.extend(masked(0x80, &[1; 500]));
        assert_eq!(decode_all(&mut decoder, &bytes).unwrap(), [Message::Binary(vec![1; 500_000].into())]);
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..4000 {
            let len = rng.below(200);
            let mut bytes = rng.bytes(len);
            // Bias towards plausible headers so that deeper states are reached.
            if let Some(first) = bytes.first_mut()
                && round % 2 == 0
            {
                *first = [0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8A, 0xC1, 0xC2][rng.below(11)];
            }
            if let Some(second) = bytes.get_mut(1)
                && round % 3 == 0
            {
                *second = 0x80 | (rng.below(130) as u8);
            }
            let config = DecoderConfig {
                role: if round % 5 == 0 { Role::Client } else { Role::Server },
                max_message_size: [0, 10, 100, 1_000_000][rng.below(4)],
                max_fragments: 1 + rng.below(4),
            };
            let mut decoder = Decoder::new(config);
            if round % 2 == 1 {
                decoder.set_inflater(crate::deflate::Inflater::with_context_takeover(round % 4 == 1));
            }
            let sizes: Vec<usize> = (0..4).map(|_| 1 + rng.below(len.max(1))).collect();
            let result = decode_chunked(&mut decoder, &bytes, &sizes);
            if let Ok(messages) = result {
                for message in messages {
                    if let Message::Text(text) = message {
                        assert!(std::str::from_utf8(&text).is_ok());
                    }
                }
            } else {
                assert_eq!(decoder.buffered_capacity(), 0);
            }
        }
    }
}
