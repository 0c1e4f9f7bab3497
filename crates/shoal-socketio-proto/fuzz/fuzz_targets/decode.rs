//! `decode::decode_text` on arbitrary text; a partial (binary) packet is then fed a few
//! fuzzer-chosen attachments and finished.
//!
//! Input layout: `flags`, then the text and the attachments separated by `0xFF` (a byte
//! that never occurs in UTF-8; the text is converted lossily so every input is used).
//! - flags bit 0: tiny limits (2 attachments, 16 bytes) to reach them quickly;
//! - flags bits 4..8: how many attachments to push (0..=15, possibly too many or too few).
//!
//! Properties checked besides "never panics":
//! - a partial packet expects between 1 and `max_attachments` attachments;
//! - `push` reports completion exactly when the announced count is reached, refuses any
//!   attachment after that and enforces `max_attachment_bytes`;
//! - a finished packet has exactly the announced attachments and every placeholder
//!   points to one of them (binary packets; in a plain EVENT/ACK such objects are
//!   not placeholders); EVENT names are never reserved;
//! - reading the arguments back through the serde layer (`Args::get`, `Args::deserialize`)
//!   never panics, and a placeholder read as bytes gives its attachment.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shoal_socketio_proto::decode::placeholder_index;
use shoal_socketio_proto::{Decoded, Limits, Packet, PacketType, ParseError, RESERVED_EVENTS, decode};

fn check_packet(p: &Packet, limits: &Limits) {
    if matches!(p.ty, PacketType::Event | PacketType::BinaryEvent) {
        match p.args().and_then(|a| a.values.first()) {
            Some(Value::String(s)) => assert!(!RESERVED_EVENTS.contains(&s.as_str()), "reserved event {s}"),
            Some(Value::Number(_)) => {}
            other => panic!("event without a valid name: {other:?}"),
        }
    }
    let Some(args) = p.args() else { return };
    assert!(args.attachments.len() <= limits.max_attachments);
    assert!(args.attachments.iter().map(Bytes::len).sum::<usize>() <= limits.max_attachment_bytes);
    fn walk(v: &Value, n: usize) {
        if let Some(i) = placeholder_index(v) {
            assert!(i < n, "placeholder {i} of {n}");
        }
        match v {
            Value::Array(a) => a.iter().for_each(|v| walk(v, n)),
            Value::Object(m) => m.values().for_each(|v| walk(v, n)),
            _ => {}
        }
    }
    // Placeholders are validated in binary packets only: a plain EVENT/ACK may carry
    // `{"_placeholder":true,…}` objects, which stay plain objects (see the report).
    if p.ty.is_binary() {
        for v in &args.values {
            walk(v, args.attachments.len());
        }
    }
    // the serde layer on top of the decoded arguments
    let _ = args.deserialize::<Vec<Value>>();
    let _ = args.deserialize::<Vec<Option<Bytes>>>();
    let _ = args.deserialize::<(String, Vec<Bytes>)>();
    for (i, v) in args.values.iter().enumerate() {
        let got = args.get::<Bytes>(i);
        if let Some(n) = placeholder_index(v).filter(|_| p.ty.is_binary()) {
            assert_eq!(got.expect("a valid placeholder reads as bytes"), args.attachments[n]);
        }
        let _ = args.get::<Value>(i);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let limits =
        if flags & 1 != 0 { Limits { max_attachments: 2, max_attachment_bytes: 16 } } else { Limits::default() };
    let feed = usize::from(flags >> 4);
    let mut parts = rest.split(|&b| b == 0xFF);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let attachments: Vec<Bytes> = parts.map(Bytes::copy_from_slice).collect();

    match decode::decode_text(&text, &limits) {
        Err(_) => {}
        Ok(Decoded::Complete(p)) => {
            if p.ty.is_binary() {
                assert!(p.args().is_some_and(|a| a.attachments.is_empty()));
            }
            check_packet(&p, &limits);
        }
        Ok(Decoded::Partial(mut partial)) => {
            let expected = partial.remaining();
            assert!(expected >= 1 && expected <= limits.max_attachments, "expects {expected}");
            let mut pushed = 0usize;
            let mut bytes = 0usize;
            let mut complete = false;
            for i in 0..feed {
                let a = attachments.get(i).cloned().unwrap_or_default();
                bytes += a.len();
                match partial.push(a) {
                    Ok(done) => {
                        assert!(!complete, "push accepted after completion");
                        assert!(bytes <= limits.max_attachment_bytes);
                        pushed += 1;
                        assert_eq!(done, pushed == expected);
                        assert_eq!(partial.remaining(), expected - pushed);
                        complete = done;
                    }
                    Err(ParseError::AttachmentsTooLarge) => {
                        assert!(bytes > limits.max_attachment_bytes);
                        return;
                    }
                    Err(ParseError::UnexpectedBinary) => {
                        assert!(complete, "attachment refused before completion");
                        return;
                    }
                    Err(e) => panic!("unexpected push error {e:?}"),
                }
            }
            match partial.finish() {
                Ok(p) => {
                    assert!(complete, "finished without every attachment");
                    assert_eq!(p.args().map(|a| a.attachments.len()), Some(expected));
                    check_packet(&p, &limits);
                }
                Err(ParseError::IllegalAttachments) => assert!(!complete),
                Err(ParseError::InvalidPlaceholder) => assert!(complete),
                Err(e) => panic!("unexpected finish error {e:?}"),
            }
        }
    }
});
