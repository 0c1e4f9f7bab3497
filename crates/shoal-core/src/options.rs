//! Who a broadcast goes to.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A room name. Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Room(Arc<str>);

impl Room {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Room {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Borrow<str> for Room {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Room {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Room {
    fn from(s: &str) -> Room {
        Room(Arc::from(s))
    }
}

impl From<String> for Room {
    fn from(s: String) -> Room {
        Room(Arc::from(s))
    }
}

impl From<&String> for Room {
    fn from(s: &String) -> Room {
        Room(Arc::from(s.as_str()))
    }
}

impl From<crate::Sid> for Room {
    fn from(s: crate::Sid) -> Room {
        Room(Arc::from(s.as_str()))
    }
}

impl Serialize for Room {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Room {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Room, D::Error> {
        // Node allows numeric rooms: accept numbers and keep their text
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => Ok(Room::from(s)),
            serde_json::Value::Number(n) => Ok(Room::from(n.to_string())),
            _ => Err(serde::de::Error::custom("a room is a string or a number")),
        }
    }
}

/// Broadcast modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BroadcastFlags {
    /// May be dropped for clients that cannot take it right now.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub volatile: bool,
    /// Only the clients of this node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Compress (WebSocket permessage-deflate, when negotiated). True unless turned off
    /// with `compress(false)`, as in Node.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub compress: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for BroadcastFlags {
    fn default() -> Self {
        BroadcastFlags { volatile: false, local: false, compress: true }
    }
}

/// The target of a broadcast: every socket of the namespace when `rooms` is empty,
/// otherwise the members of any of `rooms`; minus the members of any of `except`. Every
/// socket is also in a room named by its own id.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BroadcastOptions {
    /// Target rooms (empty: everyone).
    pub rooms: Vec<Room>,
    /// Excluded rooms.
    pub except: Vec<Room>,
    /// Modifiers.
    pub flags: BroadcastFlags,
    /// For broadcasts with acknowledgements: how long to wait.
    pub timeout: Option<Duration>,
}

impl BroadcastOptions {
    /// Everyone.
    pub fn all() -> Self {
        Self::default()
    }

    /// The members of `room`.
    pub fn room(room: impl Into<Room>) -> Self {
        BroadcastOptions { rooms: vec![room.into()], ..Self::default() }
    }
}
