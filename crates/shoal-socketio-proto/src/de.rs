//! Deserialization of JSON arguments into typed values, with placeholders resolved to attachments.
//!
//! The deserializer reads a `serde_json::Value` together with the attachments of its packet
//! and behaves like the `Deserializer` impl of `&serde_json::Value` (same visitor calls,
//! same errors), except for byte buffers. When a type asks for bytes
//! (`deserialize_bytes` / `deserialize_byte_buf`, which is what `bytes::Bytes`,
//! `serde_bytes::ByteBuf` and the like do):
//!
//! - a placeholder `{"_placeholder":true,"num":<i>}` gives the bytes of attachment `i`
//!   (an error if `num` is not an index into the attachments);
//! - a JSON array of integers `0..=255` gives those bytes (other arrays are offered to the
//!   visitor as a sequence, like `serde_json` does);
//! - a string gives its UTF-8 bytes;
//! - anything else is an invalid-type error.
//!
//! Only those two requests resolve attachments. A placeholder met through any other request
//! (`deserialize_any`, `deserialize_map`…) is the JSON object it is, so a
//! `serde_json::Value` target keeps `{"_placeholder":true,"num":<i>}` as is. A consequence:
//! types that serde buffers through `deserialize_any` before deciding what they are
//! (`#[serde(untagged)]` and internally tagged enums, `#[serde(flatten)]` fields) see a
//! placeholder as a map and cannot turn it into bytes; give binary fields a plain struct or
//! an externally tagged enum.
//!
//! # Example
//! ```
//! use bytes::Bytes;
//! use serde_json::json;
//!
//! #[derive(serde::Deserialize)]
//! struct File {
//!     name: String,
//!     data: Bytes,
//! }
//!
//! let v = json!({"name": "a.bin", "data": {"_placeholder": true, "num": 0}});
//! let attachments = [Bytes::from_static(b"\x00\x01")];
//! let file: File = shoal_socketio_proto::de::from_value(&v, &attachments).unwrap();
//! assert_eq!(file.name, "a.bin");
//! assert_eq!(file.data, Bytes::from_static(b"\x00\x01"));
//! ```

use bytes::Bytes;
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, Unexpected, VariantAccess,
    Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Error, Map, Value};

/// Deserializes one value; placeholders asked for as bytes are resolved against
/// `attachments`.
///
/// # Errors
/// The errors of `serde_json::from_value`, and a placeholder that is read as bytes but whose
/// `num` is not an index into `attachments`.
pub fn from_value<T: DeserializeOwned>(value: &Value, attachments: &[Bytes]) -> Result<T, Error> {
    T::deserialize(ValueDe { value, attachments })
}

/// Deserializes a list of values as one `T` (a tuple, a `Vec`, a struct read from a
/// sequence…): `values` is presented as a JSON array, without copying it.
///
/// # Errors
/// As [`from_value`] on the array; an array longer than a tuple or struct `T` expects is
/// an error.
pub fn from_values<T: DeserializeOwned>(values: &[Value], attachments: &[Bytes]) -> Result<T, Error> {
    T::deserialize(SliceDe { values, attachments })
}

/// The name `serde_json` gives `RawValue` (feature `raw_value`): such a target wants the raw
/// JSON text, which `serde_json`'s own impl provides.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Looks at an object: `None` if it is not a placeholder (`_placeholder` is not `true`),
/// its attachment if it is one with a valid `num`, an error for any other placeholder.
fn placeholder<'de>(map: &'de Map<String, Value>, attachments: &'de [Bytes]) -> Result<Option<&'de Bytes>, Error> {
    if map.get("_placeholder") != Some(&Value::Bool(true)) {
        return Ok(None);
    }
    let Some(num) = map.get("num").and_then(Value::as_u64) else {
        return Err(de::Error::custom("invalid placeholder: `num` is not a non-negative integer"));
    };
    usize::try_from(num).ok().and_then(|i| attachments.get(i)).map(Some).ok_or_else(|| {
        de::Error::custom(format_args!(
            "invalid placeholder: attachment {num} does not exist ({} received)",
            attachments.len()
        ))
    })
}

/// What `serde_json` reports for a value of the wrong type.
fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Unexpected::Unsigned(u)
            } else if let Some(i) = n.as_i64() {
                Unexpected::Signed(i)
            } else if let Some(f) = n.as_f64() {
                Unexpected::Float(f)
            } else {
                Unexpected::Other("number")
            }
        }
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// Presents an array to `visitor`, which must take all of its elements.
fn visit_array<'de, V: Visitor<'de>>(
    array: &'de [Value],
    attachments: &'de [Bytes],
    visitor: V,
) -> Result<V::Value, Error> {
    let mut seq = SeqDe { iter: array.iter(), attachments };
    let out = visitor.visit_seq(&mut seq)?;
    if seq.iter.len() == 0 { Ok(out) } else { Err(de::Error::invalid_length(array.len(), &"fewer elements in array")) }
}

/// Presents an object to `visitor`, which must take all of its entries.
fn visit_object<'de, V: Visitor<'de>>(
    map: &'de Map<String, Value>,
    attachments: &'de [Bytes],
    visitor: V,
) -> Result<V::Value, Error> {
    let mut access = MapDe { iter: map.iter(), value: None, attachments };
    let out = visitor.visit_map(&mut access)?;
    if access.iter.len() == 0 { Ok(out) } else { Err(de::Error::invalid_length(map.len(), &"fewer elements in map")) }
}

/// An array asked for as bytes: integers `0..=255` become a byte buffer; any other array
/// is offered as a sequence, for the visitor to accept or reject.
fn visit_byte_array<'de, V: Visitor<'de>>(
    array: &'de [Value],
    attachments: &'de [Bytes],
    visitor: V,
) -> Result<V::Value, Error> {
    let mut buf = Vec::with_capacity(array.len());
    for v in array {
        match v.as_u64().and_then(|n| u8::try_from(n).ok()) {
            Some(b) => buf.push(b),
            None => return visit_array(array, attachments, visitor),
        }
    }
    visitor.visit_byte_buf(buf)
}

/// The deserializer of one value.
#[derive(Clone, Copy)]
struct ValueDe<'de> {
    value: &'de Value,
    attachments: &'de [Bytes],
}

impl<'de> ValueDe<'de> {
    fn at(self, value: &'de Value) -> ValueDe<'de> {
        ValueDe { value, attachments: self.attachments }
    }

    /// `deserialize_bytes` (`owned == false`) and `deserialize_byte_buf` (`owned == true`).
    fn bytes<V: Visitor<'de>>(self, visitor: V, owned: bool) -> Result<V::Value, Error> {
        let data: &'de [u8] = match self.value {
            Value::Object(map) => match placeholder(map, self.attachments)? {
                Some(attachment) => attachment,
                None => return Err(de::Error::invalid_type(Unexpected::Map, &visitor)),
            },
            Value::String(s) => s.as_bytes(),
            Value::Array(a) => return visit_byte_array(a, self.attachments, visitor),
            other => return Err(de::Error::invalid_type(unexpected(other), &visitor)),
        };
        if owned { visitor.visit_byte_buf(data.to_vec()) } else { visitor.visit_borrowed_bytes(data) }
    }
}

/// Leaves (booleans, numbers, strings, null) are handed to `serde_json`'s impl for
/// `&Value`, which has no nested value to resolve; so are wrong-type errors.
macro_rules! delegate_to_serde_json {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.value.$method(visitor)
            }
        )*
    };
}

impl<'de> Deserializer<'de> for ValueDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) => visit_array(a, self.attachments, visitor),
            Value::Object(m) => visit_object(m, self.attachments, visitor),
            leaf => leaf.deserialize_any(visitor),
        }
    }

    delegate_to_serde_json! {
        deserialize_bool
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
        deserialize_char deserialize_str deserialize_string deserialize_identifier
        deserialize_unit
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Error> {
        self.value.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.bytes(visitor, false)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.bytes(visitor, true)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, Error> {
        if name == RAW_VALUE_TOKEN {
            return self.value.deserialize_newtype_struct(name, visitor);
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) => visit_array(a, self.attachments, visitor),
            other => other.deserialize_seq(visitor),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => visit_object(m, self.attachments, visitor),
            other => other.deserialize_map(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) => visit_array(a, self.attachments, visitor),
            Value::Object(m) => visit_object(m, self.attachments, visitor),
            other => other.deserialize_struct(name, fields, visitor),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let Value::Object(m) = self.value else {
            // A string is a unit variant (no nested value); anything else is an error.
            return self.value.deserialize_enum(name, variants, visitor);
        };
        let mut entries = m.iter();
        match (entries.next(), entries.next()) {
            (Some((variant, value)), None) => visitor.visit_enum(EnumDe { variant, value: self.at(value) }),
            _ => Err(de::Error::invalid_value(Unexpected::Map, &"map with a single key")),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The elements of an array.
struct SeqDe<'de> {
    iter: std::slice::Iter<'de, Value>,
    attachments: &'de [Bytes],
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => seed.deserialize(ValueDe { value, attachments: self.attachments }).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The entries of an object.
struct MapDe<'de> {
    iter: serde_json::map::Iter<'de>,
    value: Option<&'de Value>,
    attachments: &'de [Bytes],
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.value = Some(value);
                seed.deserialize(KeyDe { key }).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(ValueDe { value, attachments: self.attachments }),
            None => Err(de::Error::custom("value is missing")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An externally tagged enum `{"<variant>": <value>}`.
struct EnumDe<'de> {
    variant: &'de str,
    value: ValueDe<'de>,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = Error;
    type Variant = ValueDe<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, ValueDe<'de>), Error> {
        let variant = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.variant))?;
        Ok((variant, self.value))
    }
}

/// The content of a variant written as `{"<variant>": <value>}`.
impl<'de> VariantAccess<'de> for ValueDe<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Array(a) if a.is_empty() => visitor.visit_unit(),
            Value::Array(a) => visit_array(a, self.attachments, visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &"tuple variant")),
        }
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Value::Object(m) => visit_object(m, self.attachments, visitor),
            other => Err(de::Error::invalid_type(unexpected(other), &"struct variant")),
        }
    }
}

/// An object key. Like `serde_json`, keys can be read as numbers (`"12"`), booleans
/// (`"true"`), unit variants and strings.
struct KeyDe<'de> {
    key: &'de str,
}

impl<'de> KeyDe<'de> {
    /// Parses the whole key as a JSON number with `parse`; no sign but `-`, no whitespace,
    /// nothing after the number.
    fn number<V, F>(self, visitor: V, parse: F) -> Result<V::Value, Error>
    where
        V: Visitor<'de>,
        F: FnOnce(&mut serde_json::Deserializer<serde_json::de::StrRead<'de>>, V) -> Result<V::Value, Error>,
    {
        fn not_a_number() -> Error {
            de::Error::custom("invalid value: expected key to be a number in quotes")
        }
        let bytes = self.key.as_bytes();
        if !matches!(bytes.first(), Some(b'0'..=b'9' | b'-')) {
            return Err(not_a_number());
        }
        let mut de = serde_json::Deserializer::from_str(self.key);
        let out = parse(&mut de, visitor)?;
        let trailing_space = matches!(bytes.last(), Some(b' ' | b'\t' | b'\n' | b'\r'));
        if trailing_space || de.end().is_err() {
            return Err(not_a_number());
        }
        Ok(out)
    }
}

macro_rules! numeric_key {
    ($($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.number(visitor, |de, visitor| de.$method(visitor))
            }
        )*
    };
}

impl<'de> Deserializer<'de> for KeyDe<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.key)
    }

    numeric_key! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.key {
            "true" => visitor.visit_bool(true),
            "false" => visitor.visit_bool(false),
            other => Err(de::Error::invalid_type(Unexpected::Str(other), &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // A key is never null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        BorrowedStrDeserializer::<Error>::new(self.key).deserialize_enum(name, variants, visitor)
    }

    forward_to_deserialize_any! {
        char str string bytes byte_buf unit unit_struct seq tuple tuple_struct
        map struct identifier ignored_any
    }
}

/// A slice of values, presented as a JSON array.
struct SliceDe<'de> {
    values: &'de [Value],
    attachments: &'de [Bytes],
}

impl<'de> Deserializer<'de> for SliceDe<'de> {
    type Error = Error;

    /// Every request that an array cannot satisfy ends here too: the visitor's `visit_seq`
    /// reports the same invalid-type error as `serde_json`.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visit_array(self.values, self.attachments, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visit_byte_array(self.values, self.attachments, visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visit_byte_array(self.values, self.attachments, visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::invalid_type(Unexpected::Seq, &"string or map"))
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};
    use std::fmt::Debug;

    use bytes::Bytes;
    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    use super::{from_value, from_values};
    use crate::Args;
    use crate::ser::{to_value, to_writer};

    fn b(s: &'static [u8]) -> Bytes {
        Bytes::from_static(s)
    }

    fn ph(num: u64) -> Value {
        json!({"_placeholder": true, "num": num})
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Unit;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Newtype(u32);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair(i8, String);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        id: u64,
        name: String,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Unit,
        Newtype(i32),
        Tuple(u8, char),
        Struct { x: f64 },
        Empty(),
    }

    #[derive(Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
    enum KeyKind {
        Left,
        Right,
    }

    #[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    struct KeyNewtype(i16);

    /// Compares with `serde_json`'s own `&Value` deserializer: same value or same error.
    fn assert_like_serde_json<T: DeserializeOwned + PartialEq + Debug>(json: Value) {
        let ours = from_value::<T>(&json, &[]);
        let theirs = T::deserialize(&json);
        let case = format!("{json} as {}", std::any::type_name::<T>());
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{case}"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{case}"),
            (a, b) => panic!("{case}: ours {a:?}, serde_json {b:?}"),
        }
        // the same value as the only element of a list
        let list = [json];
        let ours = from_values::<(T,)>(&list, &[]);
        let theirs = <(T,)>::deserialize(&Value::Array(list.to_vec()));
        match (ours, theirs) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "[{case}]"),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "[{case}]"),
            (a, b) => panic!("[{case}]: ours {a:?}, serde_json {b:?}"),
        }
    }

    macro_rules! like_serde_json {
        ($($ty:ty: [$($json:tt),* $(,)?];)*) => {
            $( $( assert_like_serde_json::<$ty>(json!($json)); )* )*
        };
    }

    #[test]
    fn without_attachments_is_serde_json() {
        like_serde_json! {
            u8: [0, 255, 256, (-1), 1.5, "1", null];
            i8: [(-128), 127, 128];
            i64: [(i64::MIN), (i64::MAX), (u64::MAX)];
            u64: [(u64::MAX), 0, (-1)];
            i128: [(i64::MIN), (u64::MAX), "x"];
            u128: [(u64::MAX), (-1)];
            f32: [1.5, 1, (-1), "1"];
            f64: [1e300, (u64::MAX), (i64::MIN), true];
            bool: [true, false, 0, "true"];
            char: ["a", "ab", "", 97];
            String: ["", "héllo \" \n 🦀", 1, null, [], {}];
            (): [null, 0, []];
            Unit: [null, {}];
            Newtype: [7, "7", [7]];
            Pair: [[(-1), "x"], [(-1)], [(-1), "x", 2], {"0": -1}];
            Plain: [
                {"id": 1, "name": "n"}, {"id": 1, "name": "n", "tags": ["a"], "extra": {"deep": [1]}},
                {"id": 1}, [2, "m", ["t"]], [2, "m"], [2, "m", [], 3], "plain", null
            ];
            Option<u8>: [null, 1, "1"];
            Option<Option<u8>>: [null, 2];
            Option<Plain>: [null, {"id": 1, "name": "n"}];
            Kind: [
                "Unit", {"Unit": null}, {"Unit": 1}, "Newtype", {"Newtype": 3}, {"Tuple": [1, "c"]},
                {"Tuple": [1]}, {"Tuple": 1}, {"Struct": {"x": 1}}, {"Struct": [1]}, {"Struct": 1},
                {"Empty": []}, "Empty", "Other", {"Other": 1}, {}, {"Unit": null, "Tuple": [1, "c"]}, 3, [], null
            ];
            Vec<Kind>: [["Unit", {"Newtype": -1}], []];
            Vec<u8>: [[1, 2, 3], [256], "abc", {}];
            [u8; 2]: [[1, 2], [1, 2, 3], [1]];
            (u8, String, Option<bool>): [[1, "a", null], [1, "a"], [1, "a", true, 4]];
            BTreeMap<u32, String>: [
                {"1": "a", "20": "b"}, {"01": "a"}, {"-1": "a"}, {" 1": "a"}, {"1 ": "a"}, {"1x": "a"},
                {"+1": "a"}, {"": "a"}, {"1.5": "a"}, {"99999999999": "a"}, []
            ];
            BTreeMap<i64, u8>: [{"-9223372036854775808": 1}, {"-": 1}, {"1e3": 1}];
            BTreeMap<i128, u8>: [{"-170141183460469231731687303715884105728": 1}, {"x": 1}];
            BTreeMap<u128, u8>: [{"340282366920938463463374607431768211455": 1}, {"-1": 1}];
            HashMap<bool, u8>: [{"true": 1, "false": 0}, {"yes": 1}];
            BTreeMap<char, u8>: [{"c": 1}, {"cc": 1}];
            BTreeMap<KeyKind, u8>: [{"Left": 1, "Right": 2}, {"Up": 1}];
            BTreeMap<KeyNewtype, u8>: [{"-3": 1}, {"a": 1}];
            HashMap<String, Vec<u8>>: [{"k": [1]}, {"_placeholder": [1], "num": [0]}];
            Value: [
                null, true, 1, (-1), 1.5, "s", [1, [2, [3]]], {"a": {"b": [null]}},
                {"_placeholder": true, "num": 0}, {"_placeholder": true, "num": 99}
            ];
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct File {
        name: String,
        file: Bytes,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Folder {
        title: String,
        files: Vec<File>,
        cover: Option<Bytes>,
        thumbs: HashMap<String, Bytes>,
        numbers: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Blob {
        Empty,
        One(Bytes),
        Two(Bytes, u8, Bytes),
        Named { data: Bytes, note: Option<Bytes> },
        Nested(Vec<Blob>),
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapper(Bytes);

    /// Round trip through `to_value` and through `to_writer` + parsing, checking the
    /// number of attachments.
    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: T, attachments: usize) {
        let mut att = Vec::new();
        let v = to_value(&value, &mut att).unwrap();
        assert_eq!(att.len(), attachments, "{value:?}");
        assert_eq!(from_value::<T>(&v, &att).unwrap(), value);

        let mut out = Vec::new();
        let mut att = Vec::new();
        to_writer(&mut out, &value, &mut att).unwrap();
        assert_eq!(att.len(), attachments, "{value:?}");
        let parsed: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(from_value::<T>(&parsed, &att).unwrap(), value);
    }

    #[test]
    fn round_trips_with_attachments() {
        round_trip(b(b"bytes"), 1);
        round_trip(Bytes::new(), 1);
        round_trip(File { name: "a.bin".into(), file: b(b"\x00\x01\xff") }, 1);
        round_trip(vec![b(b"a"), b(b""), b(b"c")], 3);
        round_trip(Vec::<Bytes>::new(), 0);
        round_trip(Some(b(b"x")), 1);
        round_trip(None::<Bytes>, 0);
        round_trip(Wrapper(b(b"w")), 1);
        round_trip(("hello".to_owned(), b(b"1"), 42u32), 1);
        round_trip(HashMap::from([("a".to_owned(), b(b"1")), ("b".to_owned(), b(b"2"))]), 2);
        round_trip(BTreeMap::from([(1u16, b(b"1")), (2, b(b"2"))]), 2);
        round_trip(
            Folder {
                title: "t".into(),
                files: vec![File { name: "1".into(), file: b(b"one") }, File { name: "2".into(), file: b(b"two") }],
                cover: Some(b(b"cover")),
                thumbs: HashMap::from([("s".to_owned(), b(b"small"))]),
                numbers: vec![1, 2, 3],
            },
            4,
        );
        round_trip(
            vec![
                Blob::Empty,
                Blob::One(b(b"1")),
                Blob::Two(b(b"2"), 7, b(b"3")),
                Blob::Named { data: b(b"4"), note: None },
                Blob::Named { data: b(b"5"), note: Some(b(b"6")) },
                Blob::Nested(vec![Blob::One(b(b"7")), Blob::Nested(vec![])]),
            ],
            7,
        );
    }

    #[test]
    fn attachments_are_matched_by_num() {
        let v = json!([ph(2), ph(0), ph(1), ph(0)]);
        let att = [b(b"zero"), b(b"one"), b(b"two")];
        let got: Vec<Bytes> = from_value(&v, &att).unwrap();
        assert_eq!(got, [b(b"two"), b(b"zero"), b(b"one"), b(b"zero")]);
    }

    #[test]
    fn other_shapes_as_bytes() {
        let cases: &[(Value, Result<&[u8], &str>)] = &[
            (json!("abc"), Ok(b"abc")),
            (json!("é"), Ok("é".as_bytes())),
            (json!([]), Ok(b"")),
            (json!([0, 1, 255]), Ok(b"\x00\x01\xff")),
            (json!([1, 256]), Err("invalid value: integer `256`, expected u8")),
            (json!([1, -1]), Err("invalid value: integer `-1`, expected u8")),
            (json!([1, "a"]), Err("invalid type: string \"a\", expected u8")),
            (json!([1.0]), Err("invalid type: floating point `1.0`, expected u8")),
            (json!(5), Err("invalid type: integer `5`, expected byte array")),
            (json!(null), Err("invalid type: null, expected byte array")),
            (json!(true), Err("invalid type: boolean `true`, expected byte array")),
            (json!({"a": 1}), Err("invalid type: map, expected byte array")),
            (json!({"_placeholder": false, "num": 0}), Err("invalid type: map, expected byte array")),
            (json!({"_placeholder": "true", "num": 0}), Err("invalid type: map, expected byte array")),
            (ph(0), Ok(b"zero")),
            (json!({"num": 1, "_placeholder": true}), Ok(b"one")),
            (json!({"_placeholder": true, "num": 0, "extra": 1}), Ok(b"zero")),
            (ph(2), Err("invalid placeholder: attachment 2 does not exist (2 received)")),
            (ph(u64::MAX), Err("invalid placeholder: attachment 18446744073709551615 does not exist (2 received)")),
            (json!({"_placeholder": true, "num": -1}), Err("invalid placeholder: `num` is not a non-negative integer")),
            (
                json!({"_placeholder": true, "num": 0.5}),
                Err("invalid placeholder: `num` is not a non-negative integer"),
            ),
            (
                json!({"_placeholder": true, "num": "0"}),
                Err("invalid placeholder: `num` is not a non-negative integer"),
            ),
            (json!({"_placeholder": true}), Err("invalid placeholder: `num` is not a non-negative integer")),
        ];
        let att = [b(b"zero"), b(b"one")];
        for (json, expected) in cases {
            match (from_value::<Bytes>(json, &att), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{json}"),
                (Err(got), Err(want)) => assert_eq!(got.to_string(), *want, "{json}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
            // a placeholder inside a container still fails, not panics
            let nested = json!({"name": "n", "file": json});
            assert_eq!(from_value::<File>(&nested, &att).is_ok(), expected.is_ok(), "{nested}");
        }
        // with no attachments at all
        assert!(from_value::<Bytes>(&ph(0), &[]).is_err());
        assert!(from_value::<Option<Bytes>>(&ph(0), &[]).is_err());
        assert_eq!(from_value::<Option<Bytes>>(&Value::Null, &[]).unwrap(), None);
    }

    #[test]
    fn values_keep_placeholders() {
        let v = json!({"list": [ph(0), {"_placeholder": true, "num": 1}], "one": ph(1)});
        let att = [b(b"0"), b(b"1")];
        assert_eq!(from_value::<Value>(&v, &att).unwrap(), v);
        assert_eq!(from_value::<Value>(&ph(0), &att).unwrap(), ph(0));
        assert_eq!(from_value::<Value>(&ph(9), &att).unwrap(), ph(9));
        // a struct mixing a Value and bytes
        #[derive(Deserialize)]
        struct Mixed {
            raw: Value,
            data: Bytes,
        }
        let m: Mixed = from_value(&json!({"raw": ph(0), "data": ph(1)}), &att).unwrap();
        assert_eq!((m.raw, m.data), (ph(0), b(b"1")));
    }

    #[test]
    fn buffered_enums_see_placeholders_as_maps() {
        // documented limitation: serde buffers these through `deserialize_any`
        #[derive(Debug, Deserialize)]
        #[serde(untagged)]
        #[allow(dead_code)]
        enum Untagged {
            Text(String),
            Data(Bytes),
        }
        #[derive(Debug, Deserialize)]
        #[serde(tag = "type")]
        #[allow(dead_code)]
        enum Internal {
            File { data: Bytes },
        }
        let att = [b(b"0")];
        assert!(from_value::<Untagged>(&ph(0), &att).is_err());
        assert!(from_value::<Internal>(&json!({"type": "File", "data": ph(0)}), &att).is_err());
        // other values still work through them
        assert!(matches!(from_value::<Untagged>(&json!("s"), &att), Ok(Untagged::Text(_))));
        assert!(matches!(from_value::<Untagged>(&json!([1, 2]), &att), Ok(Untagged::Data(_))));
    }

    #[test]
    fn lists_of_arguments() {
        let args =
            Args::from_serialize(&("hello", b(b"bin"), 42u32, File { name: "f".into(), file: b(b"data") })).unwrap();
        assert_eq!(args.values.len(), 4);
        assert_eq!(args.attachments, [b(b"bin"), b(b"data")]);
        let (s, data, n, file): (String, Bytes, u32, File) = args.deserialize().unwrap();
        assert_eq!((s.as_str(), data, n), ("hello", b(b"bin"), 42));
        assert_eq!(file, File { name: "f".into(), file: b(b"data") });
        assert_eq!(args.get::<Bytes>(1).unwrap(), b(b"bin"));
        assert_eq!(args.get::<File>(3).unwrap().file, b(b"data"));
        assert_eq!(args.get::<Option<Bytes>>(9).unwrap(), None);

        let att = [b(b"0"), b(b"1")];
        let values = [json!("a"), ph(1), json!([1, 2]), ph(0)];
        // a prefix of the list
        let (a, one): (String, Bytes) = from_values(&values[..2], &att).unwrap();
        assert_eq!((a.as_str(), one), ("a", b(b"1")));
        // too many arguments for a tuple
        let err = from_values::<(String, Bytes)>(&values, &att).unwrap_err();
        assert_eq!(err.to_string(), "invalid length 4, expected fewer elements in array");
        // too few
        assert!(from_values::<(String, Bytes, Vec<u8>, Bytes, u8)>(&values, &att).is_err());
        // a Vec of Values keeps the placeholders
        assert_eq!(from_values::<Vec<Value>>(&values, &att).unwrap(), values);
        assert_eq!(from_values::<Value>(&values, &att).unwrap(), Value::Array(values.to_vec()));
        // a struct from a sequence
        #[derive(Debug, PartialEq, Deserialize)]
        struct Call {
            event: String,
            data: Bytes,
            numbers: Vec<u8>,
            raw: Bytes,
        }
        let call: Call = from_values(&values, &att).unwrap();
        assert_eq!(call, Call { event: "a".into(), data: b(b"1"), numbers: vec![1, 2], raw: b(b"0") });
        // Vec<Bytes> of a list: a string and placeholders
        let bins: Vec<Bytes> = from_values(&[json!("a"), ph(1)], &att).unwrap();
        assert_eq!(bins, [b(b"a"), b(b"1")]);
        // an optional tuple, an empty list
        assert_eq!(from_values::<Option<(String,)>>(&values[..1], &att).unwrap(), Some(("a".to_owned(),)));
        assert_eq!(from_values::<()>(&[], &att).unwrap_err().to_string(), "invalid type: sequence, expected unit");
        assert_eq!(from_values::<Vec<u8>>(&[], &att).unwrap(), Vec::<u8>::new());
        // the whole list as bytes
        assert_eq!(from_values::<Bytes>(&[json!(1), json!(2)], &att).unwrap(), b(b"\x01\x02"));
        // wrong shapes
        assert_eq!(
            from_values::<String>(&values, &att).unwrap_err().to_string(),
            "invalid type: sequence, expected a string"
        );
        assert_eq!(
            from_values::<Kind>(&values, &att).unwrap_err().to_string(),
            "invalid type: sequence, expected string or map"
        );
        assert!(from_values::<(String, String)>(&values[..2], &att).is_err());
        assert!(from_values::<(String, Bytes)>(&values[..2], &att[..1]).is_err());
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Nest {
        data: Option<Bytes>,
        child: Option<Box<Nest>>,
    }

    #[test]
    fn deep_values() {
        const DEPTH: usize = 100;
        let mut nest = Nest { data: Some(b(b"bottom")), child: None };
        for _ in 1..DEPTH {
            nest = Nest { data: None, child: Some(Box::new(nest)) };
        }
        round_trip(nest, 1);

        let mut v = ph(0);
        for _ in 1..DEPTH {
            v = json!([v]);
        }
        let att = [b(b"x")];
        assert_eq!(from_value::<Value>(&v, &att).unwrap(), v);
        // IgnoredAny and a too-shallow type
        assert!(from_value::<serde::de::IgnoredAny>(&v, &att).is_ok());
        assert!(from_value::<Vec<Vec<Bytes>>>(&v, &att).is_err());
        // unwrapping level by level reaches the attachment
        let mut cur = &v;
        while let Value::Array(a) = cur {
            cur = &a[0];
        }
        assert_eq!(from_value::<Bytes>(cur, &att).unwrap(), b(b"x"));
    }
}
