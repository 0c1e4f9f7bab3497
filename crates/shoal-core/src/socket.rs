//! A description of a socket, as fetch-sockets returns it (from any node).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::options::Room;

/// A socket of any node: id, handshake, rooms and data, in the shape Node's adapters
/// exchange (`{id, handshake, rooms, data}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// The handshake as Node serializes it: `headers`, `time`, `address`, `xdomain`,
    /// `secure`, `issued`, `url`, `query`, `auth`.
    pub handshake: Value,
    /// Its rooms (its own id included).
    pub rooms: Vec<Room>,
    /// Its `data`.
    #[serde(default)]
    pub data: Value,
}
