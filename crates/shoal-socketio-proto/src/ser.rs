//! Serialization of typed values into JSON arguments, with byte buffers as attachments.
//!
//! Socket.IO sends binary data next to the JSON of a packet: each binary value inside the
//! arguments is replaced by a placeholder `{"_placeholder":true,"num":<i>}` and its bytes
//! travel as attachment `i`. This module produces that form from any `serde::Serialize`
//! value:
//!
//! - everything a serializer receives through `serialize_bytes` (`bytes::Bytes`,
//!   `serde_bytes::ByteBuf`, `&serde_bytes::Bytes`, …) becomes a placeholder, and its bytes
//!   are appended to the attachment list;
//! - everything else is serialized exactly as `serde_json` does it (`Vec<u8>` and `[u8; N]`
//!   are sequences of numbers for serde, so they stay JSON arrays).
//!
//! Placeholders are numbered in order of discovery: depth first, sequence elements in index
//! order, struct fields and map entries in serialization order. The first placeholder gets
//! the number `attachments.len()` of the list passed in, so several values can share one
//! attachment list.
//!
//! # How it works
//! One adapter wraps any serde serializer (and each of its compound serializers, so that
//! nested values are wrapped too) and forwards every call unchanged, except
//! `serialize_bytes`, which records the attachment and serializes the placeholder map
//! instead. [`to_value`] wraps `serde_json`'s value serializer and [`to_writer`] wraps
//! `serde_json::Serializer` writing compact JSON, so both follow `serde_json` in every other
//! respect (numbers, non-finite floats, map keys, enums, `RawValue`…).
//!
//! Map keys are handed to the wrapped serializer untouched: a byte-buffer key is an error,
//! like every non-string-like key in JSON.
//!
//! # Example
//! ```
//! use bytes::Bytes;
//! use serde_json::json;
//!
//! #[derive(serde::Serialize)]
//! struct File {
//!     name: String,
//!     data: Bytes,
//! }
//!
//! let file = File { name: "a.bin".into(), data: Bytes::from_static(b"\x00\x01") };
//! let mut attachments = Vec::new();
//! let v = shoal_socketio_proto::ser::to_value(&file, &mut attachments).unwrap();
//! assert_eq!(v, json!({"name": "a.bin", "data": {"_placeholder": true, "num": 0}}));
//! assert_eq!(attachments, [Bytes::from_static(b"\x00\x01")]);
//!
//! let mut out = Vec::new();
//! attachments.clear();
//! shoal_socketio_proto::ser::to_writer(&mut out, &file, &mut attachments).unwrap();
//! assert_eq!(out, br#"{"name":"a.bin","data":{"_placeholder":true,"num":0}}"#);
//! ```

use std::cell::RefCell;

use bytes::Bytes;
use serde::Serialize;
use serde::ser::{
    self, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple, SerializeTupleStruct,
    SerializeTupleVariant,
};
use serde_json::Value;

/// Serializes `value` into a JSON value, like `serde_json::to_value`, except that byte
/// buffers become placeholders `{"_placeholder":true,"num":<i>}` and their bytes are pushed
/// to `attachments` (`i` is their index in `attachments`).
///
/// # Errors
/// The errors of `serde_json::to_value` (a map key that is not string-like, an `i128`
/// outside the range of JSON numbers, an error reported by a `Serialize` impl). On error,
/// `attachments` is truncated back to its length on entry.
pub fn to_value<T: Serialize + ?Sized>(value: &T, attachments: &mut Vec<Bytes>) -> Result<Value, serde_json::Error> {
    let start = attachments.len();
    let sink = RefCell::new(std::mem::take(attachments));
    let result = value.serialize(Adapter { inner: serde_json::value::Serializer, sink: &sink });
    *attachments = sink.into_inner();
    if result.is_err() {
        attachments.truncate(start);
    }
    result
}

/// Writes compact JSON of `value` directly into `out` (no intermediate `Value`), with the
/// same placeholder/attachment behaviour as [`to_value`]. Used on the hot path of emit.
///
/// Without byte buffers the output is byte-identical to `serde_json::to_vec(value)`; with
/// them it is identical to `serde_json::to_vec(&to_value(value, ..)?)` (both keep map
/// entries in serialization order). The JSON is appended to `out`.
///
/// # Errors
/// The errors of `serde_json::to_writer`. On error, `out` and `attachments` are truncated
/// back to their lengths on entry.
pub fn to_writer<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
    attachments: &mut Vec<Bytes>,
) -> Result<(), serde_json::Error> {
    let out_start = out.len();
    let att_start = attachments.len();
    let sink = RefCell::new(std::mem::take(attachments));
    let result = {
        let mut ser = serde_json::Serializer::new(&mut *out);
        value.serialize(Adapter { inner: &mut ser, sink: &sink })
    };
    *attachments = sink.into_inner();
    if result.is_err() {
        out.truncate(out_start);
        attachments.truncate(att_start);
    }
    result
}

/// The attachment list being filled. Values are handed to serializers by shared reference,
/// so the list needs interior mutability; it is only borrowed for one `push` at a time.
type Sink = RefCell<Vec<Bytes>>;

/// Appends an attachment and returns its index.
fn push<E: ser::Error>(sink: &Sink, bytes: &[u8]) -> Result<usize, E> {
    let mut list = sink.try_borrow_mut().map_err(|_| E::custom("attachment list already in use"))?;
    list.push(Bytes::copy_from_slice(bytes));
    Ok(list.len() - 1)
}

/// A serializer (or compound serializer) `inner` whose byte buffers become placeholders.
struct Adapter<'a, S> {
    inner: S,
    sink: &'a Sink,
}

/// A value to serialize through an [`Adapter`] around whatever serializer it is given.
struct Wrapped<'a, T: ?Sized> {
    value: &'a T,
    sink: &'a Sink,
}

impl<T: Serialize + ?Sized> Serialize for Wrapped<'_, T> {
    fn serialize<S: ser::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(Adapter { inner: serializer, sink: self.sink })
    }
}

impl<'a, S: ser::Serializer> ser::Serializer for Adapter<'a, S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Adapter<'a, S::SerializeSeq>;
    type SerializeTuple = Adapter<'a, S::SerializeTuple>;
    type SerializeTupleStruct = Adapter<'a, S::SerializeTupleStruct>;
    type SerializeTupleVariant = Adapter<'a, S::SerializeTupleVariant>;
    type SerializeMap = Adapter<'a, S::SerializeMap>;
    type SerializeStruct = Adapter<'a, S::SerializeStruct>;
    type SerializeStructVariant = Adapter<'a, S::SerializeStructVariant>;

    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        let num = push::<S::Error>(self.sink, v)?;
        let mut map = self.inner.serialize_map(Some(2))?;
        map.serialize_entry("_placeholder", &true)?;
        map.serialize_entry("num", &num)?;
        map.end()
    }

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.inner.serialize_bool(v)
    }

    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i8(v)
    }

    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i16(v)
    }

    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i32(v)
    }

    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i64(v)
    }

    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_i128(v)
    }

    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u8(v)
    }

    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u16(v)
    }

    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u32(v)
    }

    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u64(v)
    }

    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.inner.serialize_u128(v)
    }

    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f32(v)
    }

    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.inner.serialize_f64(v)
    }

    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.inner.serialize_char(v)
    }

    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_str(v)
    }

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_none()
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_some(&value)
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit()
    }

    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_struct(name)
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.inner.serialize_unit_variant(name, variant_index, variant)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_newtype_struct(name, &value)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_newtype_variant(name, variant_index, variant, &value)
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        let inner = self.inner.serialize_seq(len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        let inner = self.inner.serialize_tuple(len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        let inner = self.inner.serialize_tuple_struct(name, len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        let inner = self.inner.serialize_tuple_variant(name, variant_index, variant, len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        let inner = self.inner.serialize_map(len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        let inner = self.inner.serialize_struct(name, len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        variant_index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        let inner = self.inner.serialize_struct_variant(name, variant_index, variant, len)?;
        Ok(Adapter { inner, sink: self.sink })
    }

    fn collect_str<T: std::fmt::Display + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.inner.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

impl<S: SerializeSeq> SerializeSeq for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_element(&value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeTuple> SerializeTuple for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_element(&value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeTupleStruct> SerializeTupleStruct for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_field(&value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeTupleVariant> SerializeTupleVariant for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_field(&value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeMap> SerializeMap for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    /// Keys go to the wrapped key serializer as they are (JSON keys are never binary).
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.inner.serialize_key(key)
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_value(&value)
    }

    fn serialize_entry<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        &mut self,
        key: &K,
        value: &V,
    ) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_entry(key, &value)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeStruct> SerializeStruct for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

impl<S: SerializeStructVariant> SerializeStructVariant for Adapter<'_, S> {
    type Ok = S::Ok;
    type Error = S::Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), S::Error> {
        let value = Wrapped { value, sink: self.sink };
        self.inner.serialize_field(key, &value)
    }

    fn skip_field(&mut self, key: &'static str) -> Result<(), S::Error> {
        self.inner.skip_field(key)
    }

    fn end(self) -> Result<S::Ok, S::Error> {
        self.inner.end()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use bytes::Bytes;
    use serde::{Serialize, Serializer};
    use serde_json::{Value, json};

    use super::{to_value, to_writer};

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(u32);

    #[derive(Serialize)]
    struct TupleStruct(i8, String, Option<bool>);

    #[derive(Serialize)]
    struct Plain {
        id: u64,
        name: &'static str,
        tags: Vec<&'static str>,
        parent: Option<Box<Plain>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
    }

    #[derive(Serialize)]
    enum Kind {
        Unit,
        Newtype(i32),
        Tuple(u8, char),
        Struct { x: f64, y: Option<Box<Kind>> },
    }

    #[derive(Serialize)]
    enum Outer {
        One(Kind),
        Many(Vec<Kind>),
        Pair(Kind, Kind),
        Named { inner: Kind },
    }

    #[derive(Serialize)]
    #[serde(tag = "type")]
    enum Tagged {
        A { n: u8 },
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum KeyKind {
        Left,
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    struct KeyNewtype(i16);

    /// A byte buffer serialized with `serialize_bytes`, like `serde_bytes::Bytes`.
    struct Raw<'a>(&'a [u8]);

    impl Serialize for Raw<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(self.0)
        }
    }

    /// Serializes a byte buffer, then fails.
    struct FailsAfterBytes;

    impl Serialize for FailsAfterBytes {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::{Error, SerializeSeq};
            let mut seq = s.serialize_seq(None)?;
            seq.serialize_element(&Raw(b"lost"))?;
            drop(seq);
            Err(S::Error::custom("boom"))
        }
    }

    fn result_eq<T: PartialEq + Debug>(
        case: &str,
        ours: Result<T, serde_json::Error>,
        theirs: Result<T, serde_json::Error>,
    ) {
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{case}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{case}"),
            (a, b) => panic!("{case}: ours {a:?}, serde_json {b:?}"),
        }
    }

    /// Without byte buffers, both functions must be `serde_json` exactly, errors included.
    fn assert_like_serde_json<T: Serialize + ?Sized>(case: &str, value: &T) {
        let mut attachments = vec![Bytes::from_static(b"old")];
        result_eq(case, to_value(value, &mut attachments), serde_json::to_value(value));
        assert_eq!(attachments, [Bytes::from_static(b"old")], "{case}");

        let mut out = b"prefix".to_vec();
        let ours = to_writer(&mut out, value, &mut attachments).map(|()| out[6..].to_vec());
        if ours.is_err() {
            assert_eq!(out, b"prefix", "{case}: output not rolled back");
        }
        result_eq(case, ours, serde_json::to_vec(value));
        assert_eq!(attachments, [Bytes::from_static(b"old")], "{case}");
    }

    macro_rules! like_serde_json {
        ($($value:expr),* $(,)?) => {
            $( assert_like_serde_json(stringify!($value), &$value); )*
        };
    }

    #[test]
    fn without_bytes_is_serde_json() {
        let hash_bool: HashMap<bool, &str> = [(true, "yes"), (false, "no")].into();
        let hash_str: HashMap<String, Vec<u8>> = (0..20).map(|i| (format!("k{i}"), vec![i])).collect();
        like_serde_json![
            // integers
            0u8,
            u8::MAX,
            i8::MIN,
            i16::MIN,
            u16::MAX,
            i32::MIN,
            u32::MAX,
            i64::MIN,
            i64::MAX,
            u64::MAX,
            0usize,
            isize::MIN,
            i128::from(i64::MIN),
            u128::from(u64::MAX),
            i128::MAX,
            i128::MIN,
            u128::MAX,
            // floats
            0.0f64,
            -0.0f64,
            1.5f64,
            f64::MAX,
            f64::MIN_POSITIVE,
            1e300f64,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1f32,
            f32::MAX,
            f32::NAN,
            // strings and chars
            "",
            "plain",
            "quote \" backslash \\ slash / tab \t nl \n cr \r",
            "\u{0}\u{1f}\u{7f}\u{2028}",
            "héllo wörld ✓ 🦀",
            String::from("owned"),
            'a',
            '"',
            '\n',
            '🦀',
            // bool, unit, options
            true,
            false,
            (),
            None::<u8>,
            Some(3u8),
            Some(None::<u8>),
            Some(Some("x")),
            // structs
            Unit,
            Newtype(7),
            TupleStruct(-1, "t".into(), None),
            Plain { id: 1, name: "root", tags: vec!["a", "b"], parent: None, skipped: None },
            Plain {
                id: 2,
                name: "child",
                tags: vec![],
                parent: Some(Box::new(Plain { id: 1, name: "root", tags: vec![], parent: None, skipped: Some(1) })),
                skipped: None,
            },
            // enums of the four kinds, nested
            Kind::Unit,
            Kind::Newtype(-5),
            Kind::Tuple(1, 'z'),
            Kind::Struct { x: 0.5, y: Some(Box::new(Kind::Struct { x: f64::NAN, y: None })) },
            Outer::One(Kind::Unit),
            Outer::Many(vec![Kind::Unit, Kind::Newtype(1)]),
            Outer::Pair(Kind::Tuple(0, 'a'), Kind::Struct { x: 1.0, y: None }),
            Outer::Named { inner: Kind::Newtype(2) },
            Tagged::A { n: 1 },
            // sequences: Vec<u8> and [u8; N] stay arrays of numbers
            Vec::<u8>::new(),
            vec![1u8, 2, 3],
            [0u8; 4],
            vec![vec![1i32], vec![]],
            [Some(1u8), None],
            (1u8, "two", 3.0f64),
            ((), ((),)),
            vec![Kind::Unit, Kind::Tuple(2, 'b')],
            // maps, with keys converted like serde_json does
            BTreeMap::from([(1u32, "a"), (20, "b")]),
            BTreeMap::from([(-1i64, 1u8), (i64::MIN, 2)]),
            BTreeMap::from([(u128::MAX, 0u8)]),
            BTreeMap::from([('c', ())]),
            BTreeMap::from([(KeyKind::Left, 1u8)]),
            BTreeMap::from([(KeyNewtype(-3), 1u8)]),
            BTreeMap::from([("k".to_owned(), Kind::Unit)]),
            hash_bool,
            hash_str,
            BTreeMap::<String, u8>::new(),
            // keys serde_json refuses
            BTreeMap::from([(vec![1u8], 1u8)]),
            BTreeMap::from([((), 1u8)]),
            BTreeMap::from([((1u8, 2u8), 1u8)]),
            BTreeMap::from([(Some(1u8), 1u8)]),
            // a map key that is a byte buffer is refused too (no attachment is left behind)
            BTreeMap::from([(Bytes::from_static(b"k"), 1u8)]),
        ];
    }

    #[test]
    fn f32_text_differs_between_value_and_writer_like_serde_json() {
        // serde_json itself writes an f32 with its shortest f32 text, but a Value holds an
        // f64; we follow it in both paths.
        let mut att = Vec::new();
        let mut out = Vec::new();
        to_writer(&mut out, &0.1f32, &mut att).unwrap();
        assert_eq!(out, b"0.1");
        let v = to_value(&0.1f32, &mut att).unwrap();
        assert_eq!(serde_json::to_vec(&v).unwrap(), b"0.10000000149011612");
    }

    fn ph(num: u64) -> Value {
        json!({"_placeholder": true, "num": num})
    }

    #[derive(Serialize)]
    struct File {
        name: String,
        file: Bytes,
    }

    #[derive(Serialize)]
    struct Folder {
        files: Vec<File>,
        cover: Option<Bytes>,
        raw: (Bytes, Vec<Bytes>),
        after: Bytes,
    }

    #[derive(Serialize)]
    enum Blob {
        Empty,
        One(Bytes),
        Two(Bytes, u8, Bytes),
        Named { data: Bytes },
    }

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn assert_with_bytes<T: Serialize + ?Sized>(case: &str, value: &T, expected: &Value, expected_att: &[Bytes]) {
        let mut attachments = Vec::new();
        let v = to_value(value, &mut attachments).unwrap();
        assert_eq!(&v, expected, "{case}");
        assert_eq!(attachments, expected_att, "{case}");

        let mut out = Vec::new();
        let mut attachments = Vec::new();
        to_writer(&mut out, value, &mut attachments).unwrap();
        assert_eq!(attachments, expected_att, "{case}");
        assert_eq!(out, serde_json::to_vec(&v).unwrap(), "{case}: {}", String::from_utf8_lossy(&out));
        assert_eq!(out, serde_json::to_vec(expected).unwrap(), "{case}");
    }

    #[derive(Serialize)]
    struct Wrapper(Bytes);

    macro_rules! with_bytes {
        ($($case:literal: $value:expr => $expected:expr, [$($att:expr),*];)*) => {
            $( assert_with_bytes($case, &$value, &$expected, &[$(b($att)),*]); )*
        };
    }

    #[test]
    fn bytes_become_placeholders() {
        let folder = Folder {
            files: vec![File { name: "a".into(), file: b(b"0") }, File { name: "b".into(), file: b(b"1") }],
            cover: Some(b(b"2")),
            raw: (b(b"3"), vec![b(b"4"), b(b"5")]),
            after: b(b"6"),
        };
        let hash: HashMap<String, Bytes> = [("k".to_owned(), b(b"v"))].into();
        let blobs = [Blob::Empty, Blob::One(b(b"1")), Blob::Two(b(b"2"), 9, b(b"3")), Blob::Named { data: b(b"4") }];
        with_bytes! {
            "bytes": b(b"x") => ph(0), [b"x"];
            "empty bytes": Bytes::new() => ph(0), [b""];
            "serialize_bytes": Raw(b"\xff\x00") => ph(0), [b"\xff\x00"];
            "tuple": ("hello", b(b"1"), 42u32) => json!(["hello", ph(0), 42]), [b"1"];
            "vec": vec![b(b"a"), b(b"b"), b(b"c")] => json!([ph(0), ph(1), ph(2)]), [b"a", b"b", b"c"];
            "some": Some(b(b"s")) => ph(0), [b"s"];
            "none": None::<Bytes> => Value::Null, [];
            "Vec<u8> stays numbers": (vec![1u8, 2], b(b"z")) => json!([[1, 2], ph(0)]), [b"z"];
            "newtype struct": Wrapper(b(b"w")) => ph(0), [b"w"];
            "struct": File { name: "f".into(), file: b(b"data") } => json!({"name": "f", "file": ph(0)}), [b"data"];
            "depth first order": folder => json!({
                "files": [{"name": "a", "file": ph(0)}, {"name": "b", "file": ph(1)}],
                "cover": ph(2),
                "raw": [ph(3), [ph(4), ph(5)]],
                "after": ph(6),
            }), [b"0", b"1", b"2", b"3", b"4", b"5", b"6"];
            "hash map": hash => json!({"k": ph(0)}), [b"v"];
            "map order": BTreeMap::from([(2u8, b(b"two")), (1u8, b(b"one"))])
                => json!({"1": ph(0), "2": ph(1)}), [b"one", b"two"];
            "bool keys": BTreeMap::from([(true, b(b"t"))]) => json!({"true": ph(0)}), [b"t"];
            "enums": blobs => json!([
                "Empty", {"One": ph(0)}, {"Two": [ph(1), 9, ph(2)]}, {"Named": {"data": ph(3)}}
            ]), [b"1", b"2", b"3", b"4"];
        }
    }

    #[test]
    fn placeholder_bytes_are_exact() {
        let mut out = Vec::new();
        let mut att = Vec::new();
        to_writer(&mut out, &b(b"abc"), &mut att).unwrap();
        assert_eq!(out, br#"{"_placeholder":true,"num":0}"#);
        let v = to_value(&b(b"abc"), &mut att).unwrap();
        assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"_placeholder":true,"num":1}"#);
        assert_eq!(att, [b(b"abc"), b(b"abc")]);
    }

    #[test]
    fn numbering_continues_after_existing_attachments() {
        let mut att = vec![b(b"first")];
        let v = to_value(&(b(b"a"), b(b"b")), &mut att).unwrap();
        assert_eq!(v, json!([ph(1), ph(2)]));
        let mut out = b"[".to_vec();
        to_writer(&mut out, &b(b"c"), &mut att).unwrap();
        assert_eq!(out, br#"[{"_placeholder":true,"num":3}"#);
        assert_eq!(att, [b(b"first"), b(b"a"), b(b"b"), b(b"c")]);
    }

    #[test]
    fn errors_roll_back() {
        let mut att = vec![b(b"keep")];
        let err = to_value(&FailsAfterBytes, &mut att).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(att, [b(b"keep")]);

        let mut out = b"keep".to_vec();
        let err = to_writer(&mut out, &FailsAfterBytes, &mut att).unwrap_err();
        assert_eq!(err.to_string(), "boom");
        assert_eq!(out, b"keep");
        assert_eq!(att, [b(b"keep")]);

        // a byte buffer as a map key
        let m = BTreeMap::from([(b(b"k"), b(b"v"))]);
        assert!(to_value(&m, &mut att).is_err());
        assert!(to_writer(&mut out, &m, &mut att).is_err());
        assert_eq!((out.as_slice(), att.as_slice()), (&b"keep"[..], &[b(b"keep")][..]));
    }
}
