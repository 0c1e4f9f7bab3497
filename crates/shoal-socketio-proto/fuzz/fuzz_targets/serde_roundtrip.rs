//! Decode, encode, decode again: the second decode must equal the first.
//!
//! Input layout: the text and the attachments separated by `0xFF` (never in UTF-8; the
//! text is converted lossily). A binary packet is given the attachments it announces
//! (missing ones are empty).
//!
//! Properties:
//! 1. `decode(encode(decode(x))) == decode(x)` for every packet that decodes, with its
//!    attachments. The one normalization allowed: a BINARY_EVENT/BINARY_ACK announcing
//!    zero attachments (`50-[...]`) is re-encoded as EVENT/ACK, which the encoder
//!    documents.
//! 2. Encoding is a fixpoint after one round: `encode(decode(encode(p))) == encode(p)`.
//!
//! Floats: `serde_json` is built without its `float_roundtrip` feature, so parsing a
//! float may be off by a few ULPs (`1.2396180475567891e+36` parses as
//! `1.2396180475567892e+36`, `1.2345678900624461e+39` as `1.2345678900624458e+39`, two
//! ULPs; see the report). Floats up to `FLOAT_ULPS` apart are therefore accepted as
//! equal, and the textual fixpoint is only checked for packets without floats. Exact equality is demanded as soon as serde_json parses floats exactly (the
//! `float_roundtrip` feature, detected with a probe) or with `SHOAL_FUZZ_EXACT_FLOATS=1`.
//! 3. The serde layer: the arguments read as `Vec<serde_json::Value>` and serialized
//!    back (`Args::from_serialize`) give the same JSON values (placeholders stay plain
//!    objects on that path), and the attachments read as `Vec<Bytes>` and serialized
//!    back give placeholders `0..n` and the same attachments, which again survive
//!    encode + decode.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use shoal_socketio_proto::{Args, Decoded, Limits, Packet, PacketData, PacketType, decode, encode};

/// Exact float equality is demanded when asked for, or automatically once serde_json
/// parses floats exactly (its `float_roundtrip` feature: then this probe reads right).
fn exact_floats() -> bool {
    static EXACT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EXACT.get_or_init(|| {
        let probe = "1.2396180475567891e+36";
        let parsed = serde_json::from_str::<f64>(probe).ok();
        std::env::var_os("SHOAL_FUZZ_EXACT_FLOATS").is_some() || parsed == probe.parse::<f64>().ok()
    })
}

/// How far apart (in ULPs) two floats may be while serde_json parses inexactly.
const FLOAT_ULPS: u64 = 16;

/// JSON equality where floats up to `FLOAT_ULPS` apart are equal (unless exact floats
/// are asked).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            x == y
                || (!exact_floats()
                    && x.is_f64()
                    && y.is_f64()
                    && x.as_f64().zip(y.as_f64()).is_some_and(|(x, y)| x.to_bits().abs_diff(y.to_bits()) <= FLOAT_ULPS))
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_value(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb))
        }
        _ => a == b,
    }
}

fn same_packet(a: &Packet, b: &Packet) -> bool {
    a.ty == b.ty
        && a.nsp == b.nsp
        && a.id == b.id
        && match (&a.data, &b.data) {
            (PacketData::Json(x), PacketData::Json(y)) => same_value(x, y),
            (PacketData::Args(x), PacketData::Args(y)) => {
                x.attachments == y.attachments
                    && x.values.len() == y.values.len()
                    && x.values.iter().zip(&y.values).all(|(a, b)| same_value(a, b))
            }
            (x, y) => x == y,
        }
}

fn has_float(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.is_f64(),
        Value::Array(a) => a.iter().any(has_float),
        Value::Object(m) => m.values().any(has_float),
        _ => false,
    }
}

fn packet_has_float(p: &Packet) -> bool {
    match &p.data {
        PacketData::Json(v) => has_float(v),
        PacketData::Args(a) => a.values.iter().any(has_float),
        _ => false,
    }
}

/// Decodes `text` and completes it with `attachments` (as many as it announces).
fn full_decode(text: &str, attachments: &[Bytes]) -> Option<Packet> {
    match decode::decode_text(text, &Limits::default()).ok()? {
        Decoded::Complete(p) => Some(p),
        Decoded::Partial(mut partial) => {
            let mut i = 0;
            while partial.remaining() > 0 {
                let a = attachments.get(i).cloned().unwrap_or_default();
                i += 1;
                partial.push(a).ok()?;
            }
            partial.finish().ok()
        }
    }
}

fn round_trip(p: &Packet) -> (String, Packet) {
    let text = encode::to_string(p);
    let attachments = p.args().map(|a| a.attachments.clone()).unwrap_or_default();
    let again = match decode::decode_text(&text, &Limits::default()) {
        Ok(Decoded::Complete(q)) => q,
        Ok(Decoded::Partial(mut partial)) => {
            for a in attachments {
                partial.push(a).expect("re-encoded attachment accepted");
            }
            partial.finish().expect("re-encoded binary packet completes")
        }
        Err(e) => panic!("re-encoded packet {text:?} does not decode: {e}"),
    };
    (text, again)
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0xFF);
    let text = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let attachments: Vec<Bytes> = parts.map(Bytes::copy_from_slice).collect();
    let Some(first) = full_decode(&text, &attachments) else { return };

    // 1. decode ∘ encode ∘ decode == decode
    let (text1, second) = round_trip(&first);
    let mut expected = first.clone();
    if expected.args().is_some_and(|a| a.attachments.is_empty()) {
        expected.ty = match expected.ty {
            PacketType::BinaryEvent => PacketType::Event,
            PacketType::BinaryAck => PacketType::Ack,
            t => t,
        };
    }
    assert!(same_packet(&second, &expected), "input {text:?} re-encoded as {text1:?}:\n{second:?}\n!=\n{expected:?}");

    // 2. encoding is a fixpoint
    let (text2, third) = round_trip(&second);
    if exact_floats() || !packet_has_float(&first) {
        assert_eq!(text2, text1);
    }
    assert!(same_packet(&third, &second), "{third:?}\n!=\n{second:?}");

    // 3. the serde layer
    let Some(args) = first.args() else { return };
    let values: Vec<Value> = args.deserialize().expect("any arguments read as JSON values");
    let back = Args::from_serialize(&values).expect("JSON values serialize");
    assert!(
        back.values.len() == args.values.len() && back.values.iter().zip(&args.values).all(|(a, b)| same_value(a, b))
    );
    assert!(back.attachments.is_empty());

    let blobs: Vec<Bytes> = args.attachments.clone();
    let args2 = Args::from_serialize(&(String::from("bin"), blobs.clone())).expect("bytes serialize");
    assert_eq!(args2.attachments, blobs);
    let (name, read): (String, Vec<Bytes>) = args2.deserialize().expect("placeholders read back as bytes");
    assert_eq!(name, "bin");
    assert_eq!(read, blobs);
    let p = Packet::event(first.nsp.clone(), args2, first.id);
    let (_, q) = round_trip(&p);
    assert_eq!(q.args(), p.args());
});
