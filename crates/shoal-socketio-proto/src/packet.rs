//! Socket.IO packets.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

/// The seven Socket.IO packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PacketType {
    /// `0`: connect to a namespace (client) / connected (server, with `{"sid"}`).
    Connect,
    /// `1`: leave a namespace.
    Disconnect,
    /// `2`: an event.
    Event,
    /// `3`: an acknowledgement.
    Ack,
    /// `4`: the server refused a namespace connection.
    ConnectError,
    /// `5`: an event with binary attachments.
    BinaryEvent,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck,
}

impl PacketType {
    /// The ASCII digit of this type.
    pub fn as_char(self) -> u8 {
        match self {
            Self::Connect => b'0',
            Self::Disconnect => b'1',
            Self::Event => b'2',
            Self::Ack => b'3',
            Self::ConnectError => b'4',
            Self::BinaryEvent => b'5',
            Self::BinaryAck => b'6',
        }
    }

    /// The type for an ASCII digit.
    pub fn from_char(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => Self::Connect,
            b'1' => Self::Disconnect,
            b'2' => Self::Event,
            b'3' => Self::Ack,
            b'4' => Self::ConnectError,
            b'5' => Self::BinaryEvent,
            b'6' => Self::BinaryAck,
            _ => return None,
        })
    }

    /// The numeric value (as used in adapter messages).
    pub fn as_u8(self) -> u8 {
        self.as_char() - b'0'
    }

    /// The type for a numeric value.
    pub fn from_u8(n: u8) -> Option<Self> {
        n.checked_add(b'0').and_then(Self::from_char)
    }

    /// True for the two binary types.
    pub fn is_binary(self) -> bool {
        matches!(self, Self::BinaryEvent | Self::BinaryAck)
    }
}

/// The arguments of an event or an ack: a JSON array whose binary values are placeholders
/// `{"_placeholder":true,"num":i}`, and the attachments they point to.
///
/// For an event, `values[0]` is the event name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// The JSON values, with placeholders where binary data was.
    pub values: Vec<Value>,
    /// The binary attachments, in placeholder order.
    pub attachments: Vec<Bytes>,
}

impl Args {
    /// Arguments without attachments.
    pub fn from_values(values: Vec<Value>) -> Args {
        Args { values, attachments: Vec::new() }
    }

    /// Serializes `value` as the arguments: a tuple or a sequence gives one argument per
    /// element, anything else gives a single argument. `bytes::Bytes` and other byte
    /// buffers become attachments.
    pub fn from_serialize<T: serde::Serialize + ?Sized>(value: &T) -> Result<Args, serde_json::Error> {
        let mut attachments = Vec::new();
        let v = crate::ser::to_value(value, &mut attachments)?;
        let values = match v {
            Value::Array(a) => a,
            other => vec![other],
        };
        Ok(Args { values, attachments })
    }

    /// Serializes `value` as one single argument (a tuple stays one array argument).
    pub fn single<T: serde::Serialize + ?Sized>(value: &T) -> Result<Args, serde_json::Error> {
        let mut attachments = Vec::new();
        let v = crate::ser::to_value(value, &mut attachments)?;
        Ok(Args { values: vec![v], attachments })
    }

    /// Deserializes the whole argument list as `T` (for example a tuple `(A, B)` or a `Vec`).
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        crate::de::from_values(&self.values, &self.attachments)
    }

    /// Deserializes argument `index` as `T`.
    pub fn get<T: serde::de::DeserializeOwned>(&self, index: usize) -> Result<T, serde_json::Error> {
        let v = self.values.get(index).unwrap_or(&Value::Null);
        crate::de::from_value(v, &self.attachments)
    }

    /// Number of arguments.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True if there is no argument.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Prepends the event name (turning arguments into the data of an EVENT packet).
    pub fn with_event(mut self, event: &str) -> Args {
        self.values.insert(0, Value::String(event.to_owned()));
        self
    }
}

/// What a packet carries.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum PacketData {
    /// Nothing (DISCONNECT, CONNECT without auth).
    None,
    /// A JSON value: the auth object of a CONNECT, the `{"sid"}` answer, a CONNECT_ERROR.
    Json(Value),
    /// The arguments of an EVENT / ACK (and of their binary variants).
    Args(Args),
}

/// A Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Its type. The encoder writes EVENT/ACK with attachments as BINARY_EVENT/BINARY_ACK.
    pub ty: PacketType,
    /// The namespace, `/` by default.
    pub nsp: Cow<'static, str>,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The payload.
    pub data: PacketData,
}

impl Packet {
    /// An EVENT packet (`args.values[0]` must be the event name).
    pub fn event(nsp: impl Into<Cow<'static, str>>, args: Args, id: Option<u64>) -> Packet {
        Packet { ty: PacketType::Event, nsp: nsp.into(), id, data: PacketData::Args(args) }
    }

    /// An ACK packet.
    pub fn ack(nsp: impl Into<Cow<'static, str>>, args: Args, id: u64) -> Packet {
        Packet { ty: PacketType::Ack, nsp: nsp.into(), id: Some(id), data: PacketData::Args(args) }
    }

    /// The server's CONNECT answer: `{"sid":"…"}`.
    pub fn connect(nsp: impl Into<Cow<'static, str>>, sid: &str) -> Packet {
        let mut m = serde_json::Map::new();
        m.insert("sid".into(), Value::String(sid.to_owned()));
        Packet { ty: PacketType::Connect, nsp: nsp.into(), id: None, data: PacketData::Json(Value::Object(m)) }
    }

    /// A CONNECT_ERROR: `{"message":…,"data":…}` (`data` omitted when `None`).
    pub fn connect_error(nsp: impl Into<Cow<'static, str>>, message: &str, data: Option<Value>) -> Packet {
        let mut m = serde_json::Map::new();
        m.insert("message".into(), Value::String(message.to_owned()));
        if let Some(d) = data {
            m.insert("data".into(), d);
        }
        Packet { ty: PacketType::ConnectError, nsp: nsp.into(), id: None, data: PacketData::Json(Value::Object(m)) }
    }

    /// A DISCONNECT packet.
    pub fn disconnect(nsp: impl Into<Cow<'static, str>>) -> Packet {
        Packet { ty: PacketType::Disconnect, nsp: nsp.into(), id: None, data: PacketData::None }
    }

    /// The event name of an EVENT packet (a string, or a number rendered as text).
    pub fn event_name(&self) -> Option<Cow<'_, str>> {
        match &self.data {
            PacketData::Args(a) => match a.values.first()? {
                Value::String(s) => Some(Cow::Borrowed(s)),
                Value::Number(n) => Some(Cow::Owned(n.to_string())),
                _ => None,
            },
            _ => None,
        }
    }

    /// The arguments, if this packet has any.
    pub fn args(&self) -> Option<&Args> {
        match &self.data {
            PacketData::Args(a) => Some(a),
            _ => None,
        }
    }
}
