//! permessage-deflate (RFC 7692): offer negotiation, the per-connection
//! [`Inflater`] and the stateless compressor ([`deflate_message`], [`Deflater`]).
//!
//! # Design
//! The server always answers with `server_no_context_takeover`, so each
//! outgoing compressed message is a pure function of its payload: it can be
//! compressed once and the same `Bytes` shared by every recipient.
//!
//! # Memory
//! An inflater state holds the 32 KiB LZ77 window plus decoding tables
//! (about 43 KiB in total with flate2's Rust backend). It is allocated on the
//! first compressed message. When the client does not use context takeover
//! (`client_no_context_takeover` was negotiated, see
//! [`DeflateConfig::client_no_context_takeover`]) it is released again after
//! every message, so an idle connection holds none of it; otherwise it lives
//! as long as the connection. A compressor state ([`Deflater`]) is larger
//! still (a few hundred KiB), which is why a server should keep one per
//! thread rather than per connection.

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use http::HeaderMap;
use http::header::SEC_WEBSOCKET_EXTENSIONS;

use crate::error::Error;

/// The empty stored block that ends every sync flush; stripped by the sender
/// and appended again by the receiver (RFC 7692 §7.2.1, §7.2.2).
const SYNC_TRAILER: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// Server-side permessage-deflate settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeflateConfig {
    /// Messages shorter than this many bytes are sent uncompressed.
    /// Default 1024.
    pub threshold: usize,
    /// zlib compression level, 0 (store) to 9 (best); larger values are
    /// treated as 9. Default 6, zlib's default and what Node's `ws` uses.
    pub level: u32,
    /// Always ask the client not to use context takeover (by answering with
    /// `client_no_context_takeover` even when it was not offered). This
    /// costs some compression of client messages but lets the [`Inflater`]
    /// release its ~43 KiB state between messages. Default `false`.
    pub client_no_context_takeover: bool,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        Self { threshold: 1024, level: 6, client_no_context_takeover: false }
    }
}

/// The outcome of a successful permessage-deflate negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateNegotiation {
    /// The client will not use context takeover: the [`Inflater`] resets
    /// (and frees) its state after every message.
    pub client_no_context_takeover: bool,
    /// The exact value for the `Sec-WebSocket-Extensions` response header.
    pub response_header: String,
}

/// The parameters of one acceptable offer.
#[derive(Debug, Default)]
struct Offer {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    client_max_window_bits: Option<Option<u8>>,
}

/// Splits `s` at every `sep` that is not inside a double-quoted string.
fn split_unquoted(s: &str, sep: u8) -> impl Iterator<Item = &str> {
    let mut in_quotes = false;
    let mut escaped = false;
    let mut start = 0;
    let mut pieces = Vec::new();
    for (i, &b) in s.as_bytes().iter().enumerate() {
        if escaped {
            escaped = false;
        } else if in_quotes && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            in_quotes = !in_quotes;
        } else if b == sep && !in_quotes {
            pieces.push(s.get(start..i).unwrap_or_default());
            start = i + 1;
        }
    }
    pieces.push(s.get(start..).unwrap_or_default());
    pieces.into_iter()
}

/// Parses a window-bits value (`8` to `15`, optionally quoted).
fn parse_window_bits(value: &str) -> Option<u8> {
    let value = match value.strip_prefix('"') {
        Some(inner) => inner.strip_suffix('"')?,
        None => value,
    };
    match value {
        "8" => Some(8),
        "9" => Some(9),
        "10" => Some(10),
        "11" => Some(11),
        "12" => Some(12),
        "13" => Some(13),
        "14" => Some(14),
        "15" => Some(15),
        _ => None,
    }
}

/// Parses one offer (`permessage-deflate; param; param=value`); `None` if it
/// is not a well-formed permessage-deflate offer.
fn parse_offer(offer: &str) -> Option<Offer> {
    let mut parts = split_unquoted(offer, b';');
    let name = parts.next()?.trim();
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut parsed = Offer::default();
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name.trim(), Some(value.trim())),
            None => (param.trim(), None),
        };
        match (name.to_ascii_lowercase().as_str(), value) {
            ("server_no_context_takeover", None) if !parsed.server_no_context_takeover => {
                parsed.server_no_context_takeover = true;
            }
            ("client_no_context_takeover", None) if !parsed.client_no_context_takeover => {
                parsed.client_no_context_takeover = true;
            }
            ("server_max_window_bits", Some(value)) if parsed.server_max_window_bits.is_none() => {
                parsed.server_max_window_bits = Some(parse_window_bits(value)?);
            }
            ("client_max_window_bits", value) if parsed.client_max_window_bits.is_none() => {
                parsed.client_max_window_bits = Some(match value {
                    Some(value) => Some(parse_window_bits(value)?),
                    None => None,
                });
            }
            // Unknown, duplicated or wrongly valued parameter: reject the offer.
            _ => return None,
        }
    }
    Some(parsed)
}

/// Picks the first acceptable permessage-deflate offer among all
/// `Sec-WebSocket-Extensions` request headers and builds the response.
///
/// The answer always contains `server_no_context_takeover`. Offers that
/// restrict `server_max_window_bits` below 15 are declined (flate2's Rust
/// backend cannot shrink the compressor's window); `server_max_window_bits=15`
/// is accepted and echoed as RFC 7692 §7.1.2.1 requires. `client_max_window_bits`
/// (with or without a value) is accepted and never echoed, which is allowed by
/// §7.1.2.2 and safe because the inflater always keeps a 32 KiB window.
/// `client_no_context_takeover` is echoed when offered or when
/// [`DeflateConfig::client_no_context_takeover`] is set.
///
/// Malformed offers (unknown or duplicate parameters, bad values, other
/// extension names) are skipped. Returns `None` if no offer is acceptable.
#[must_use]
pub fn negotiate_deflate(headers: &HeaderMap, config: &DeflateConfig) -> Option<DeflateNegotiation> {
    let offer = headers
        .get_all(SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| split_unquoted(value, b','))
        .filter_map(parse_offer)
        .find(|offer| matches!(offer.server_max_window_bits, None | Some(15)))?;
    let client_no_context_takeover = offer.client_no_context_takeover || config.client_no_context_takeover;
    let mut response_header = String::from("permessage-deflate; server_no_context_takeover");
    if client_no_context_takeover {
        response_header.push_str("; client_no_context_takeover");
    }
    if offer.server_max_window_bits.is_some() {
        response_header.push_str("; server_max_window_bits=15");
    }
    Some(DeflateNegotiation { client_no_context_takeover, response_header })
}

/// Per-connection decompressor for incoming permessage-deflate messages.
///
/// Keeps the sliding window across messages unless the peer does not use
/// context takeover, in which case the state is freed after each message.
/// See the [module docs](self) for its memory cost.
pub struct Inflater {
    state: Option<Decompress>,
    no_context_takeover: bool,
    /// The current message's stream contained a final (BFINAL) block;
    /// anything after it in this message is ignored.
    stream_ended: bool,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater")
            .field("holds_state", &self.state.is_some())
            .field("no_context_takeover", &self.no_context_takeover)
            .finish_non_exhaustive()
    }
}

impl Inflater {
    /// An inflater for the parameters of a server-side negotiation.
    #[must_use]
    pub fn new(negotiation: &DeflateNegotiation) -> Self {
        Self::with_context_takeover(!negotiation.client_no_context_takeover)
    }

    /// An inflater that keeps its window across messages when
    /// `context_takeover` is true (client side: the opposite of the
    /// server's `server_no_context_takeover`).
    #[must_use]
    pub fn with_context_takeover(context_takeover: bool) -> Self {
        Self { state: None, no_context_takeover: !context_takeover, stream_ended: false }
    }

    /// Whether the ~43 KiB decompressor state is currently allocated.
    #[must_use]
    pub fn holds_state(&self) -> bool {
        self.state.is_some()
    }

    /// Inflates a piece of the current message's compressed payload, appending
    /// to `out`, which may not grow beyond `max` bytes.
    pub(crate) fn inflate(&mut self, input: &[u8], out: &mut Vec<u8>, max: usize) -> Result<(), Error> {
        self.run(input, out, max, FlushDecompress::None)
    }

    /// Ends the current message: inflates the implicit sync trailer and
    /// resets or frees the state as negotiated.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, max: usize) -> Result<(), Error> {
        self.run(&SYNC_TRAILER, out, max, FlushDecompress::Sync)?;
        if self.no_context_takeover {
            self.state = None;
        } else if self.stream_ended
            && let Some(state) = self.state.as_mut()
        {
            state.reset(false);
        }
        self.stream_ended = false;
        Ok(())
    }

    /// Drops the state after a fatal error.
    pub(crate) fn abort(&mut self) {
        self.state = None;
        self.stream_ended = false;
    }

    fn run(&mut self, mut input: &[u8], out: &mut Vec<u8>, max: usize, flush: FlushDecompress) -> Result<(), Error> {
        if self.stream_ended {
            return Ok(());
        }
        let state = self.state.get_or_insert_with(|| Decompress::new(false));
        // Output may reach `max + 1` bytes so that exceeding the limit is seen.
        let limit = max.saturating_add(1);
        loop {
            if out.len() == out.capacity() {
                let room = limit.saturating_sub(out.len());
                if room == 0 {
                    return Err(Error::MessageTooBig { max });
                }
                let want = out.len().max(input.len().saturating_mul(2)).max(256);
                out.reserve_exact(want.min(room));
            }
            let in_before = state.total_in();
            let out_before = state.total_out();
            let status = state.decompress_vec(input, out, flush).map_err(|e| Error::Decompression(e.to_string()))?;
            let consumed = usize::try_from(state.total_in() - in_before).unwrap_or(usize::MAX);
            let produced = state.total_out() - out_before;
            input = input.get(consumed..).unwrap_or_default();
            if out.len() > max {
                return Err(Error::MessageTooBig { max });
            }
            if status == Status::StreamEnd {
                self.stream_ended = true;
                return Ok(());
            }
            if out.len() < out.capacity() {
                if input.is_empty() {
                    // Everything was consumed, and all output fit.
                    return Ok(());
                }
                if consumed == 0 && produced == 0 {
                    // Never seen in practice; refuse rather than drop input
                    // or spin.
                    return Err(Error::Decompression("inflater made no progress".into()));
                }
            }
        }
    }
}

/// A reusable raw-deflate compressor for outgoing messages.
///
/// Every message is compressed from a fresh state (the server always
/// negotiates `server_no_context_takeover`), so the output depends only on
/// the payload and the config. Reusing a `Deflater` avoids allocating and
/// zeroing the compressor state for every message.
pub struct Deflater {
    compress: Compress,
    threshold: usize,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deflater").field("threshold", &self.threshold).finish_non_exhaustive()
    }
}

impl Deflater {
    /// A compressor with `config`'s level and threshold.
    #[must_use]
    pub fn new(config: &DeflateConfig) -> Self {
        Self { compress: Compress::new(Compression::new(config.level.min(9)), false), threshold: config.threshold }
    }

    /// Compresses one message payload (raw deflate, sync flush, trailing
    /// `00 00 FF FF` removed, RFC 7692 §7.2.1), ready to send with RSV1 set.
    ///
    /// Returns `None` when the payload is shorter than the threshold or when
    /// compression would not make it smaller; send it uncompressed then.
    #[must_use]
    pub fn compress(&mut self, payload: &[u8]) -> Option<Bytes> {
        if payload.len() < self.threshold {
            return None;
        }
        self.compress.reset();
        // Output that would not be smaller than the payload is useless, so
        // the buffer never needs to grow beyond payload + trailer.
        let mut out = Vec::with_capacity(payload.len().saturating_add(SYNC_TRAILER.len()));
        let mut input = payload;
        loop {
            // Feed everything, then flush once with empty input: repeated
            // sync flushes would each add an empty stored block.
            let flush = if input.is_empty() { FlushCompress::Sync } else { FlushCompress::None };
            let before = self.compress.total_in();
            let out_before = out.len();
            self.compress.compress_vec(input, &mut out, flush).ok()?;
            let consumed = usize::try_from(self.compress.total_in() - before).ok()?;
            input = input.get(consumed..)?;
            if out.len() == out.capacity() || (consumed == 0 && out.len() == out_before) {
                // Not smaller than the payload, or (never seen) stuck.
                return None;
            }
            if flush == FlushCompress::Sync {
                break;
            }
        }
        if out.ends_with(&SYNC_TRAILER) {
            out.truncate(out.len() - SYNC_TRAILER.len());
        }
        if out.len() >= payload.len() {
            return None;
        }
        out.shrink_to_fit();
        Some(Bytes::from(out))
    }
}

/// Compresses one message payload for sending with RSV1 set (see
/// [`Deflater::compress`]). Returns `None` below `config.threshold` or when
/// compression does not help.
///
/// This allocates a fresh compressor for each call; use a [`Deflater`] to
/// compress many messages.
#[must_use]
pub fn deflate_message(payload: &[u8], config: &DeflateConfig) -> Option<Bytes> {
    if payload.len() < config.threshold {
        return None;
    }
    Deflater::new(config).compress(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decoder::{Decoder, DecoderConfig, Message};
    use crate::frame::Role;
    use crate::test_util::{XorShift, decode_all, decode_chunked, masked, raw_frame};
    use http::HeaderValue;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    const PLAIN: &str = "permessage-deflate; server_no_context_takeover";
    const CLIENT_NCT: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn negotiation_table() {
        let cases: &[(&str, &[&str], Option<&str>)] = &[
            ("no header", &[], None),
            ("plain offer", &["permessage-deflate"], Some(PLAIN)),
            ("browser offer", &["permessage-deflate; client_max_window_bits"], Some(PLAIN)),
            ("client_max_window_bits with value", &["permessage-deflate; client_max_window_bits=10"], Some(PLAIN)),
            ("quoted value", &["permessage-deflate; client_max_window_bits=\"12\""], Some(PLAIN)),
            ("server_no_context_takeover offered", &["permessage-deflate; server_no_context_takeover"], Some(PLAIN)),
            (
                "client_no_context_takeover honoured",
                &["permessage-deflate; client_no_context_takeover"],
                Some(CLIENT_NCT),
            ),
            (
                "server_max_window_bits=15 echoed",
                &["permessage-deflate; server_max_window_bits=15"],
                Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=15"),
            ),
            (
                "all parameters, odd spacing and case",
                &[
                    "Permessage-Deflate ;Server_No_Context_Takeover; client_no_context_takeover ;server_max_window_bits = 15;client_max_window_bits",
                ],
                Some(
                    "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15",
                ),
            ),
            ("server_max_window_bits=10 declined", &["permessage-deflate; server_max_window_bits=10"], None),
            (
                "declined offer falls back to the next one",
                &["permessage-deflate; server_max_window_bits=10, permessage-deflate"],
                Some(PLAIN),
            ),
            (
                "offers across several headers",
                &["x-webkit-deflate-frame", "permessage-deflate; client_no_context_takeover"],
                Some(CLIENT_NCT),
            ),
            (
                "first acceptable offer wins",
                &["permessage-deflate; client_no_context_takeover, permessage-deflate"],
                Some(CLIENT_NCT),
            ),
            ("other extension only", &["x-webkit-deflate-frame"], None),
            ("constructor", &["constructor"], None),
            ("__proto__", &["__proto__"], None),
            (",;constructor", &[",;constructor"], None),
            ("param named constructor", &["permessage-deflate; constructor"], None),
            ("param named __proto__", &["permessage-deflate; __proto__=1"], None),
            ("empty", &[""], None),
            ("only separators", &[",,;;,"], None),
            ("empty param name", &["permessage-deflate; =15"], None),
            ("empty params", &["permessage-deflate;;"], None),
            ("duplicate param", &["permessage-deflate; client_no_context_takeover; client_no_context_takeover"], None),
            (
                "duplicate window bits",
                &["permessage-deflate; server_max_window_bits=15; server_max_window_bits=15"],
                None,
            ),
            ("unknown param", &["permessage-deflate; foo"], None),
            ("value on a flag", &["permessage-deflate; server_no_context_takeover=1"], None),
            ("missing server bits value", &["permessage-deflate; server_max_window_bits"], None),
            ("bits too small", &["permessage-deflate; client_max_window_bits=7"], None),
            ("bits too large", &["permessage-deflate; client_max_window_bits=16"], None),
            ("leading zero", &["permessage-deflate; client_max_window_bits=08"], None),
            ("not a number", &["permessage-deflate; client_max_window_bits=abc"], None),
            ("unterminated quote", &["permessage-deflate; client_max_window_bits=\"15"], None),
            ("comma inside quotes", &["permessage-deflate; client_max_window_bits=\"15, permessage-deflate\""], None),
            ("name with suffix", &["permessage-deflate-x"], None),
            ("space inside name", &["permessage deflate"], None),
        ];
        let config = DeflateConfig::default();
        for (name, values, want) in cases {
            let got = negotiate_deflate(&headers(values), &config);
            assert_eq!(got.as_ref().map(|n| n.response_header.as_str()), *want, "{name}");
            if let Some(negotiation) = got {
                assert_eq!(
                    negotiation.client_no_context_takeover,
                    negotiation.response_header.contains("client_no_context_takeover"),
                    "{name}"
                );
            }
        }
        // The config can impose client_no_context_takeover.
        let config = DeflateConfig { client_no_context_takeover: true, ..DeflateConfig::default() };
        let negotiation = negotiate_deflate(&headers(&["permessage-deflate"]), &config).unwrap();
        assert_eq!(negotiation.response_header, CLIENT_NCT);
        assert!(negotiation.client_no_context_takeover);
    }

    #[test]
    fn non_ascii_extension_header_is_ignored() {
        let mut map = HeaderMap::new();
        map.append(SEC_WEBSOCKET_EXTENSIONS, HeaderValue::from_bytes(b"permessage-deflate; \xff").unwrap());
        assert_eq!(negotiate_deflate(&map, &DeflateConfig::default()), None);
    }

    fn deflating_decoder(context_takeover: bool) -> Decoder {
        let mut decoder = Decoder::new(DecoderConfig::default());
        decoder.set_inflater(Inflater::with_context_takeover(context_takeover));
        decoder
    }

    #[test]
    fn rfc7692_examples_decode() {
        let hello = Message::Text(Bytes::from_static(b"Hello"));
        let cases: &[(&str, Vec<u8>, usize)] = &[
            // §7.2.3.1: a message compressed into one frame.
            ("single frame", masked(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), 1),
            // §7.2.3.1: the same compressed data in two fragments.
            ("fragmented", [masked(0x41, &[0xf2, 0x48, 0xcd]), masked(0x80, &[0xc9, 0xc9, 0x07, 0x00])].concat(), 1),
            // §7.2.3.2: the second "Hello" refers back into the shared window.
            (
                "shared sliding window",
                [
                    masked(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
                    masked(0xC1, &[0xf2, 0x00, 0x11, 0x00, 0x00]),
                ]
                .concat(),
                2,
            ),
            // §7.2.3.3: a stored (uncompressed) DEFLATE block.
            ("stored block", masked(0xC1, &[0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00]), 1),
            // §7.2.3.4: a block with BFINAL set, then more messages.
            (
                "bfinal block",
                [
                    masked(0xC1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00]),
                    masked(0xC1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
                ]
                .concat(),
                2,
            ),
            // §7.2.3.5: two DEFLATE blocks in one message.
            (
                "two blocks",
                masked(0xC1, &[0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00]),
                1,
            ),
        ];
        for (name, bytes, count) in cases {
            let want = vec![hello.clone(); *count];
            let mut decoder = deflating_decoder(true);
            assert_eq!(&decode_all(&mut decoder, bytes).unwrap(), &want, "{name}");
            let mut decoder = deflating_decoder(true);
            assert_eq!(&decode_chunked(&mut decoder, bytes, &[1]).unwrap(), &want, "{name} bytewise");
            assert!(decoder.is_idle());
            assert_eq!(decoder.buffered_capacity(), 0);
        }
        // §7.2.3.6: an empty message compressed to a single 0x00 byte.
        let mut decoder = deflating_decoder(false);
        assert_eq!(decode_all(&mut decoder, &masked(0xC2, &[0x00])).unwrap(), [Message::Binary(Bytes::new())]);
        // Uncompressed messages still work alongside compressed ones.
        assert_eq!(
            decode_all(&mut decoder, &masked(0x81, b"plain")).unwrap(),
            [Message::Text(Bytes::from_static(b"plain"))]
        );
    }

    #[test]
    fn rsv1_rules_with_an_inflater() {
        let cases: &[(&str, Vec<u8>)] = &[
            (
                "rsv1 on a continuation",
                [masked(0x41, &[0xf2, 0x48, 0xcd]), masked(0xC0, &[0xc9, 0xc9, 0x07, 0x00])].concat(),
            ),
            ("rsv1 on a ping", masked(0xC9, b"")),
            ("rsv1 on a close", masked(0xC8, b"")),
        ];
        for (name, bytes) in cases {
            let mut decoder = deflating_decoder(true);
            let err = decode_all(&mut decoder, bytes).unwrap_err();
            assert_eq!(err, Error::ReservedBits(0x40), "{name}");
            assert_eq!(err.close_code(), 1002);
        }
    }

    /// A client-side compressor that keeps its context across messages.
    fn compress_with_context(compress: &mut Compress, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + 64);
        let mut input = payload;
        loop {
            let before = compress.total_in();
            compress.compress_vec(input, &mut out, FlushCompress::Sync).unwrap();
            input = &input[(compress.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            out.reserve(1024);
        }
        assert!(out.ends_with(&SYNC_TRAILER));
        out.truncate(out.len() - 4);
        out
    }

    fn sample_messages() -> Vec<Vec<u8>> {
        let mut rng = XorShift(42);
        let words = ["socket", "shoal", "event", "message", "{\"id\":", "[1,2,3]", "héllo", "😀"];
        (0..12)
            .map(|i| {
                let n = [0usize, 1, 10, 500, 3000, 40_000][i % 6];
                let mut s = String::new();
                while s.len() < n {
                    s.push_str(words[rng.below(words.len())]);
                    s.push(' ');
                }
                s.into_bytes()
            })
            .collect()
    }

    #[test]
    fn round_trip_with_context_takeover() {
        let mut compress = Compress::new(Compression::new(6), false);
        let mut bytes = Vec::new();
        let messages = sample_messages();
        for message in &messages {
            bytes.extend(masked(0xC1, &compress_with_context(&mut compress, message)));
        }
        let want: Vec<Message> = messages.iter().map(|m| Message::Text(Bytes::copy_from_slice(m))).collect();
        for sizes in [&[usize::MAX][..], &[1], &[7, 300, 4096]] {
            let mut decoder = deflating_decoder(true);
            assert_eq!(decode_chunked(&mut decoder, &bytes, sizes).unwrap(), want);
            assert!(decoder.is_idle());
            assert_eq!(decoder.buffered_capacity(), 0);
            assert!(decoder.inflater().unwrap().holds_state());
        }
    }

    #[test]
    fn round_trip_without_context_takeover() {
        let config = DeflateConfig { threshold: 0, ..DeflateConfig::default() };
        let mut deflater = Deflater::new(&config);
        let negotiation =
            negotiate_deflate(&headers(&["permessage-deflate; client_no_context_takeover"]), &config).unwrap();
        let mut decoder = Decoder::new(DecoderConfig::default());
        decoder.set_inflater(Inflater::new(&negotiation));
        for message in sample_messages() {
            let frame = match deflater.compress(&message) {
                Some(compressed) => {
                    assert!(compressed.len() < message.len());
                    assert_eq!(deflate_message(&message, &config).as_ref(), Some(&compressed));
                    // Fragment compressed messages in two to exercise that path.
                    let (a, b) = compressed.split_at(compressed.len() / 2);
                    [masked(0x41, a), masked(0x80, b)].concat()
                }
                None => masked(0x81, &message),
            };
            assert_eq!(decode_all(&mut decoder, &frame).unwrap(), [Message::Text(Bytes::from(message))]);
            assert!(decoder.is_idle());
            assert_eq!(decoder.buffered_capacity(), 0);
            // No context takeover: the inflater frees its state after each message.
            assert!(!decoder.inflater().unwrap().holds_state());
        }
    }

    #[test]
    fn server_frames_decode_in_a_client() {
        let config = DeflateConfig::default();
        let payload = b"{\"event\":\"tick\"} ".repeat(200);
        let compressed = deflate_message(&payload, &config).unwrap();
        let mut bytes = Vec::new();
        crate::frame::write_frame(&mut bytes, crate::frame::OpCode::Binary, &compressed, true, None);
        bytes.extend(raw_frame(0xC2, &compressed, None));
        let mut decoder = Decoder::new(DecoderConfig { role: Role::Client, ..DecoderConfig::default() });
        decoder.set_inflater(Inflater::with_context_takeover(false));
        let want = Message::Binary(Bytes::from(payload));
        assert_eq!(decode_all(&mut decoder, &bytes).unwrap(), [want.clone(), want]);
    }

    #[test]
    fn deflate_message_threshold_and_incompressible_data() {
        let config = DeflateConfig::default();
        assert_eq!(deflate_message(&[b'a'; 1023], &config), None);
        let compressed = deflate_message(&[b'a'; 1024], &config).unwrap();
        assert!(compressed.len() < 20);
        assert!(!compressed.ends_with(&SYNC_TRAILER));
        // Random bytes do not shrink: sent uncompressed.
        let random = XorShift(7).bytes(5000);
        assert_eq!(deflate_message(&random, &config), None);
        // Level 0 (stored blocks) never shrinks either.
        let stored = DeflateConfig { level: 0, ..config };
        assert_eq!(deflate_message(&[b'a'; 5000], &stored), None);
        // Out-of-range levels are clamped instead of failing.
        let huge = DeflateConfig { level: 1000, ..config };
        assert!(deflate_message(&[b'a'; 5000], &huge).is_some());
        // Deterministic: the same payload always compresses the same way.
        let mut deflater = Deflater::new(&config);
        let payload = b"abcabcabd".repeat(300);
        let first = deflater.compress(&payload).unwrap();
        assert_eq!(deflater.compress(&random), None);
        assert_eq!(deflater.compress(&payload).unwrap(), first);
    }

    fn zeros_compressed(len: usize) -> Vec<u8> {
        let mut compress = Compress::new(Compression::best(), false);
        let zeros = vec![0u8; len];
        compress_with_context(&mut compress, &zeros)
    }

    #[test]
    fn decompression_bomb_is_stopped_at_the_limit() {
        let bomb = zeros_compressed(10_000_000);
        assert!(bomb.len() < 20_000, "{}", bomb.len());

        // Through the decoder, whole and in pieces.
        for sizes in [&[usize::MAX][..], &[1000]] {
            let mut decoder = deflating_decoder(true);
            let err = decode_chunked(&mut decoder, &masked(0xC2, &bomb), sizes).unwrap_err();
            assert_eq!(err, Error::MessageTooBig { max: 1_000_000 });
            assert_eq!(err.close_code(), 1009);
            assert_eq!(decoder.buffered_capacity(), 0);
            assert!(!decoder.inflater().unwrap().holds_state());
        }

        // The output buffer never grows past the limit (+1 byte to detect it).
        let mut inflater = Inflater::with_context_takeover(true);
        let mut out = Vec::new();
        let max = 100_000;
        let err = inflater.inflate(&bomb, &mut out, max).unwrap_err();
        assert_eq!(err, Error::MessageTooBig { max });
        assert!(out.capacity() <= max + 1, "{}", out.capacity());

        // Just under the limit is fine.
        let fits = zeros_compressed(1_000_000);
        let mut decoder = deflating_decoder(false);
        assert_eq!(
            decode_all(&mut decoder, &masked(0xC2, &fits)).unwrap(),
            [Message::Binary(vec![0; 1_000_000].into())]
        );
        let too_big = zeros_compressed(1_000_001);
        let mut decoder = deflating_decoder(false);
        assert_eq!(decode_all(&mut decoder, &masked(0xC2, &too_big)), Err(Error::MessageTooBig { max: 1_000_000 }));
    }

    #[test]
    fn corrupt_compressed_data_is_an_invalid_payload() {
        let cases: &[(&str, &[u8])] = &[
            ("reserved block type", &[0xff, 0xff, 0xff]),
            ("bad stored length", &[0x00, 0x05, 0x00, 0x00, 0x00, 0x48]),
        ];
        for (name, payload) in cases {
            let mut decoder = deflating_decoder(true);
            let err = decode_all(&mut decoder, &masked(0xC1, payload)).unwrap_err();
            assert!(matches!(err, Error::Decompression(_)), "{name}: {err:?}");
            assert_eq!(err.close_code(), 1007, "{name}");
        }
        // Valid compression of invalid UTF-8 in a text message.
        let config = DeflateConfig { threshold: 0, ..DeflateConfig::default() };
        let bad = [&[0xffu8, 0xfe][..], &[b'a'; 100]].concat();
        let compressed = deflate_message(&bad, &config).unwrap();
        let mut decoder = deflating_decoder(true);
        assert_eq!(decode_all(&mut decoder, &masked(0xC1, &compressed)), Err(Error::InvalidUtf8));
    }
}
