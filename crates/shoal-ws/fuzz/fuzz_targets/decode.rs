//! Feeds arbitrary bytes, in arbitrary chunk splits, to a server-role
//! decoder with and without an inflater, and checks the decoder's invariants.
//!
//! Input layout: `flags`, four chunk-size bytes, then the byte stream.
//! - flags bit 0: install an inflater; bit 1: with context takeover;
//! - bit 2: small limits (4 KiB messages, 4 fragments) to reach them quickly;
//! - bit 3: break out of the callback after every message and resume.

#![no_main]

use std::ops::ControlFlow;

use libfuzzer_sys::fuzz_target;
use shoal_ws::{Decoder, DecoderConfig, Inflater, Message, Role};

fuzz_target!(|data: &[u8]| {
    let Some((&[flags, s0, s1, s2, s3], stream)) = data.split_first_chunk::<5>() else {
        return;
    };
    let config = if flags & 4 != 0 {
        DecoderConfig { role: Role::Server, max_message_size: 4096, max_fragments: 4 }
    } else {
        DecoderConfig::default()
    };
    let mut decoder = Decoder::new(config);
    if flags & 1 != 0 {
        decoder.set_inflater(Inflater::with_context_takeover(flags & 2 != 0));
    }
    let break_each = flags & 8 != 0;
    let sizes = [s0, s1, s2, s3].map(|s| usize::from(s) + 1);

    let mut check = |message: Message| {
        match &message {
            Message::Text(text) => {
                assert!(std::str::from_utf8(text).is_ok());
                assert!(text.len() <= config.max_message_size);
            }
            Message::Binary(bytes) => assert!(bytes.len() <= config.max_message_size),
            Message::Ping(bytes) | Message::Pong(bytes) => assert!(bytes.len() <= 125),
            Message::Close(Some(close)) => {
                assert!(shoal_ws::is_valid_close_code(close.code));
                assert!(close.reason.len() <= 123);
            }
            _ => {}
        }
        if break_each { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
    };

    let mut rest = stream;
    let mut i = 0;
    while !rest.is_empty() {
        let size = sizes[i % sizes.len()].min(rest.len());
        let (chunk, tail) = rest.split_at(size);
        rest = tail;
        i += 1;
        let mut result = decoder.decode(chunk, &mut check);
        // After a break, drain what was kept before reading more.
        while result.is_ok() && decoder.has_pending_input() {
            result = decoder.decode(&[], &mut check);
        }
        match result {
            Ok(()) => {
                if decoder.is_idle() {
                    assert_eq!(decoder.buffered_capacity(), 0);
                }
                assert!(decoder.buffered_capacity() <= 2 * config.max_message_size + stream.len());
            }
            Err(error) => {
                assert!(matches!(error.close_code(), 1002 | 1007 | 1009));
                assert_eq!(decoder.buffered_capacity(), 0);
                // Errors are sticky.
                assert_eq!(decoder.decode(&[0x81], &mut check), Err(error));
                return;
            }
        }
    }
});
