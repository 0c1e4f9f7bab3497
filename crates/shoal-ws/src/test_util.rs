//! Helpers shared by the unit tests.

use std::ops::ControlFlow;

use crate::decoder::{Decoder, Message};
use crate::error::Error;
use crate::frame::{MAX_HEADER_LEN, OpCode, encode_header};

/// The mask used by the RFC 6455 §5.7 examples.
pub(crate) const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A frame with an arbitrary first byte (FIN, RSV and opcode bits), the
/// payload masked with `mask` if given.
pub(crate) fn raw_frame(b0: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut header = [0u8; MAX_HEADER_LEN];
    let n = encode_header(&mut header, OpCode::Continuation, false, false, payload.len(), mask);
    header[0] = b0;
    let mut out = header[..n].to_vec();
    let start = out.len();
    out.extend_from_slice(payload);
    if let Some(mask) = mask {
        crate::frame::apply_mask(&mut out[start..], mask);
    }
    out
}

/// A masked (client-to-server) frame.
pub(crate) fn masked(b0: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(b0, payload, Some(MASK))
}

/// Feeds `bytes` as one chunk and collects the messages.
pub(crate) fn decode_all(decoder: &mut Decoder, bytes: &[u8]) -> Result<Vec<Message>, Error> {
    let mut out = Vec::new();
    decoder.decode(bytes, |m| {
        out.push(m);
        ControlFlow::Continue(())
    })?;
    Ok(out)
}

/// Feeds `bytes` in the given chunk sizes (cycled) and collects the messages.
pub(crate) fn decode_chunked(decoder: &mut Decoder, bytes: &[u8], sizes: &[usize]) -> Result<Vec<Message>, Error> {
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        i += 1;
        decoder.decode(chunk, |m| {
            out.push(m);
            ControlFlow::Continue(())
        })?;
    }
    Ok(out)
}

/// A tiny deterministic PRNG (xorshift64*).
#[derive(Debug)]
pub(crate) struct XorShift(pub(crate) u64);

impl XorShift {
    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A value in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}
