//! Frame-level vocabulary ([`Role`], [`OpCode`], [`CloseFrame`]) and the
//! encoder: [`encode_header`], [`write_frame`], [`close_payload`] and
//! [`apply_mask`].

/// The largest possible frame header: 2 bytes + 8-byte length + 4-byte mask.
pub const MAX_HEADER_LEN: usize = 14;

/// The largest payload of a control frame (RFC 6455 §5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Which side of the connection we are.
///
/// A [`Role::Server`] requires every incoming frame to be masked and sends
/// unmasked frames; a [`Role::Client`] is the reverse (used by Shoal's load
/// generator and by tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The accepting side: incoming frames MUST be masked.
    Server,
    /// The connecting side: incoming frames MUST NOT be masked.
    Client,
}

/// A frame opcode (RFC 6455 §5.2). Reserved opcodes are not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OpCode {
    /// `0x0`: continuation of a fragmented data message.
    Continuation,
    /// `0x1`: first frame of a text message.
    Text,
    /// `0x2`: first frame of a binary message.
    Binary,
    /// `0x8`: connection close.
    Close,
    /// `0x9`: ping.
    Ping,
    /// `0xA`: pong.
    Pong,
}

impl OpCode {
    /// The 4-bit wire value of this opcode.
    #[must_use]
    pub const fn as_u8(self) -> u8 {
        match self {
            Self::Continuation => 0x0,
            Self::Text => 0x1,
            Self::Binary => 0x2,
            Self::Close => 0x8,
            Self::Ping => 0x9,
            Self::Pong => 0xA,
        }
    }

    /// Parses a 4-bit wire value; `None` for reserved opcodes (and values above 0xF).
    #[must_use]
    pub const fn from_u8(value: u8) -> Option<Self> {
        match value {
            0x0 => Some(Self::Continuation),
            0x1 => Some(Self::Text),
            0x2 => Some(Self::Binary),
            0x8 => Some(Self::Close),
            0x9 => Some(Self::Ping),
            0xA => Some(Self::Pong),
            _ => None,
        }
    }

    /// True for close, ping and pong.
    #[must_use]
    pub const fn is_control(self) -> bool {
        matches!(self, Self::Close | Self::Ping | Self::Pong)
    }
}

/// The decoded payload of a close frame that carried a status code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code; always valid on the wire (see [`is_valid_close_code`]).
    pub code: u16,
    /// The UTF-8 reason, possibly empty.
    pub reason: String,
}

/// Whether `code` may appear in a close frame on the wire (RFC 6455 §7.4):
/// 1000-1003, 1007-1011 and the registered/private range 3000-4999.
///
/// 1005, 1006 and 1015 are reserved for local use and everything else in
/// 0-2999 is unassigned, so both are rejected.
#[must_use]
pub const fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// Length of the header [`encode_header`] writes for this payload length.
#[must_use]
pub const fn header_len(payload_len: usize, masked: bool) -> usize {
    let base = if payload_len < 126 {
        2
    } else if payload_len <= 0xFFFF {
        4
    } else {
        10
    };
    if masked { base + 4 } else { base }
}

/// Writes a frame header into `out` and returns its length.
///
/// `fin` marks the last frame of a message, `rsv1` the "compressed" bit of
/// permessage-deflate. Without a mask (server frames) the header is 2, 4 or
/// 10 bytes long; with a mask (client frames) 6, 8 or 14 bytes, and the
/// payload must then be masked with [`apply_mask`] by the caller.
///
/// This lets a server share one payload buffer between many connections and
/// only build the few header bytes per frame.
pub fn encode_header(
    out: &mut [u8; MAX_HEADER_LEN],
    opcode: OpCode,
    fin: bool,
    rsv1: bool,
    payload_len: usize,
    mask: Option<[u8; 4]>,
) -> usize {
    let mut b0 = opcode.as_u8();
    if fin {
        b0 |= 0x80;
    }
    if rsv1 {
        b0 |= 0x40;
    }
    out[0] = b0;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut n = if payload_len < 126 {
        out[1] = mask_bit | payload_len as u8;
        2
    } else if let Ok(len16) = u16::try_from(payload_len) {
        out[1] = mask_bit | 126;
        out[2..4].copy_from_slice(&len16.to_be_bytes());
        4
    } else {
        out[1] = mask_bit | 127;
        out[2..10].copy_from_slice(&(payload_len as u64).to_be_bytes());
        10
    };
    if let Some(mask) = mask {
        out[n..n + 4].copy_from_slice(&mask);
        n += 4;
    }
    n
}

/// Appends a complete, final (FIN set) frame to `buf`: the header followed by
/// the payload, masked when `mask` is `Some`.
pub fn write_frame(buf: &mut Vec<u8>, opcode: OpCode, payload: &[u8], rsv1: bool, mask: Option<[u8; 4]>) {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut header, opcode, true, rsv1, payload.len(), mask);
    buf.reserve(n + payload.len());
    buf.extend_from_slice(&header[..n]);
    let start = buf.len();
    buf.extend_from_slice(payload);
    if let Some(mask) = mask
        && let Some(tail) = buf.get_mut(start..)
    {
        apply_mask(tail, mask);
    }
}

/// The payload of a close frame: the big-endian status code followed by the
/// UTF-8 `reason`, truncated at a character boundary so that the payload fits
/// the 125-byte control frame limit (at most 123 bytes of reason).
#[must_use]
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = reason.get(..end).unwrap_or_default();
    let mut out = Vec::with_capacity(2 + reason.len());
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

/// XORs `data` in place with the 4-byte masking key (RFC 6455 §5.3).
///
/// Masking is its own inverse, so this both masks and unmasks.
pub fn apply_mask(data: &mut [u8], mask: [u8; 4]) {
    apply_mask_at(data, mask, 0);
}

/// Like [`apply_mask`], but `data` starts `offset` bytes into the payload
/// (only `offset % 4` matters). Returns the offset just after `data`, modulo 4.
pub(crate) fn apply_mask_at(data: &mut [u8], mask: [u8; 4], offset: usize) -> usize {
    let mut key = mask;
    key.rotate_left(offset % 4);
    let word = u64::from_ne_bytes([key[0], key[1], key[2], key[3], key[0], key[1], key[2], key[3]]);
    let (chunks, rest) = data.as_chunks_mut::<8>();
    for chunk in chunks {
        *chunk = (u64::from_ne_bytes(*chunk) ^ word).to_ne_bytes();
    }
    // `chunks` covered a multiple of 8 (so of 4) bytes: the key phase is unchanged.
    for (byte, k) in rest.iter_mut().zip(key.iter().cycle()) {
        *byte ^= k;
    }
    (offset % 4 + data.len() % 4) % 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::MASK;

    fn frame(opcode: OpCode, fin: bool, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut header = [0u8; MAX_HEADER_LEN];
        let n = encode_header(&mut header, opcode, fin, false, payload.len(), mask);
        let mut out = header[..n].to_vec();
        let start = out.len();
        out.extend_from_slice(payload);
        if let Some(mask) = mask {
            apply_mask(&mut out[start..], mask);
        }
        out
    }

    #[test]
    fn rfc6455_section_5_7_examples_encode_exactly() {
        let cases: &[(&str, Vec<u8>, &[u8])] = &[
            (
                "single-frame unmasked text",
                frame(OpCode::Text, true, b"Hello", None),
                &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            ),
            (
                "single-frame masked text",
                frame(OpCode::Text, true, b"Hello", Some(MASK)),
                &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
            ),
            ("fragment 1", frame(OpCode::Text, false, b"Hel", None), &[0x01, 0x03, 0x48, 0x65, 0x6c]),
            ("fragment 2", frame(OpCode::Continuation, true, b"lo", None), &[0x80, 0x02, 0x6c, 0x6f]),
            ("unmasked ping", frame(OpCode::Ping, true, b"Hello", None), &[0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]),
            (
                "masked pong",
                frame(OpCode::Pong, true, b"Hello", Some(MASK)),
                &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58],
            ),
        ];
        for (name, got, want) in cases {
            assert_eq!(got, want, "{name}");
        }

        let mut buf = Vec::new();
        write_frame(&mut buf, OpCode::Text, b"Hello", false, Some(MASK));
        assert_eq!(buf, [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);

        let mut header = [0u8; MAX_HEADER_LEN];
        assert_eq!(encode_header(&mut header, OpCode::Binary, true, false, 256, None), 4);
        assert_eq!(header[..4], [0x82, 0x7E, 0x01, 0x00]);
        let n = encode_header(&mut header, OpCode::Binary, true, false, 65536, None);
        assert_eq!(header[..n], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);

        let mut buf = Vec::new();
        write_frame(&mut buf, OpCode::Binary, &[7u8; 256], false, None);
        assert_eq!(buf[..4], [0x82, 0x7E, 0x01, 0x00]);
        assert_eq!(buf.len(), 4 + 256);
        buf.clear();
        write_frame(&mut buf, OpCode::Binary, &vec![7u8; 65536], false, None);
        assert_eq!(buf[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
        assert_eq!(buf.len(), 10 + 65536);
    }

    #[test]
    fn header_lengths_at_boundaries() {
        let cases: &[(usize, bool, usize)] = &[
            (0, false, 2),
            (125, false, 2),
            (126, false, 4),
            (65535, false, 4),
            (65536, false, 10),
            (usize::MAX >> 1, false, 10),
            (0, true, 6),
            (126, true, 8),
            (65536, true, 14),
        ];
        for &(len, masked, want) in cases {
            let mut header = [0u8; MAX_HEADER_LEN];
            let mask = masked.then_some(MASK);
            let n = encode_header(&mut header, OpCode::Binary, true, false, len, mask);
            assert_eq!(n, want, "len {len} masked {masked}");
            assert_eq!(header_len(len, masked), want);
        }
    }

    #[test]
    fn encode_header_sets_fin_rsv1_and_opcode() {
        let mut header = [0u8; MAX_HEADER_LEN];
        encode_header(&mut header, OpCode::Text, false, true, 3, None);
        assert_eq!(header[..2], [0x41, 0x03]);
        encode_header(&mut header, OpCode::Close, true, false, 0, None);
        assert_eq!(header[..2], [0x88, 0x00]);
    }

    #[test]
    fn opcodes_round_trip() {
        for v in 0u8..=255 {
            match OpCode::from_u8(v) {
                Some(op) => {
                    assert_eq!(op.as_u8(), v);
                    assert_eq!(op.is_control(), v >= 8);
                }
                None => assert!(matches!(v, 3..=7 | 0xB..), "{v}"),
            }
        }
    }

    #[test]
    fn close_codes() {
        let valid = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999];
        let invalid = [0, 1, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, u16::MAX];
        for code in valid {
            assert!(is_valid_close_code(code), "{code}");
        }
        for code in invalid {
            assert!(!is_valid_close_code(code), "{code}");
        }
    }

    #[test]
    fn close_payload_truncates_at_char_boundary() {
        assert_eq!(close_payload(1000, ""), [0x03, 0xE8]);
        assert_eq!(close_payload(1001, "bye"), [0x03, 0xE9, b'b', b'y', b'e']);
        let ascii = "x".repeat(200);
        assert_eq!(close_payload(1000, &ascii).len(), 125);
        // 'é' is two bytes: 61 of them is 122 bytes, a 62nd would make 124.
        let accents = "é".repeat(100);
        let payload = close_payload(4000, &accents);
        assert_eq!(payload.len(), 2 + 122);
        assert!(std::str::from_utf8(&payload[2..]).is_ok());
        // A 4-byte character straddling the limit is dropped whole.
        let mixed = format!("{}😀", "a".repeat(121));
        let payload = close_payload(4000, &mixed);
        assert_eq!(payload.len(), 2 + 121);
    }

    #[test]
    fn mask_matches_naive_at_every_offset_and_length() {
        let mask = [0x12, 0x34, 0x56, 0x78];
        for len in 0..70 {
            for offset in 0..8 {
                let original: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
                let mut fast = original.clone();
                let next = apply_mask_at(&mut fast, mask, offset);
                let naive: Vec<u8> = original.iter().enumerate().map(|(i, b)| b ^ mask[(i + offset) % 4]).collect();
                assert_eq!(fast, naive, "len {len} offset {offset}");
                assert_eq!(next, (offset + len) % 4);
            }
        }
        // Masking in two pieces equals masking at once.
        let mut whole = vec![0xAAu8; 37];
        apply_mask(&mut whole, mask);
        let mut split = vec![0xAAu8; 37];
        let (a, b) = split.split_at_mut(11);
        let offset = apply_mask_at(a, mask, 0);
        apply_mask_at(b, mask, offset);
        assert_eq!(whole, split);
    }
}
