//! The demo chat, on namespace `/`.
//!
//! Client → server (each answers an acknowledgement when asked for one:
//! `{ok: true, ...}` or `{ok: false, error}`):
//! - `"nick"` (string): sets the socket's nick name (kept in its data, so visible through
//!   `fetch_sockets`); the rooms it is in are told.
//! - `"join"` (room name): joins the room; the room (joiner included) gets a `"system"`
//!   message.
//! - `"leave"` (room name): leaves the room; the rest of the room is told.
//! - `"chat"` (`{room, text}`): sends `"chat"` `{from, nick, text, at}` to everyone in the
//!   room, sender included. Only members of a room may write to it.
//!
//! Server → client: `"chat"` as above, and `"system"` `{room, text, at}`. `from` is the
//! sender's socket id and `at` the time in milliseconds since the Unix epoch. When a
//! socket disconnects, each of its rooms gets a `"system"` message.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use shoal::{Event, Socket, SocketIo};

/// Longest room name, in characters.
const MAX_ROOM_CHARS: usize = 64;
/// Longest nick name, in characters.
const MAX_NICK_CHARS: usize = 32;
/// Longest chat message, in characters.
const MAX_TEXT_CHARS: usize = 2000;

/// What the demo keeps in a socket's data.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Profile {
    nick: Option<String>,
}

/// A `"chat"` from a client.
#[derive(Debug, Deserialize)]
struct ChatIn {
    room: String,
    text: String,
}

/// A `"chat"` to the clients.
#[derive(Debug, Serialize)]
struct ChatOut<'a> {
    from: &'a str,
    nick: &'a str,
    text: &'a str,
    at: u64,
}

/// Registers the demo's handlers on namespace `/` of `io`.
pub(crate) fn install(io: &SocketIo) {
    let server = io.clone();
    io.of("/").on_connect(move |socket: Socket| {
        let io = server.clone();
        async move { on_connect(&io, &socket) }
    });
}

fn on_connect(io: &SocketIo, socket: &Socket) {
    tracing::debug!(sid = %socket.id(), transport = ?socket.transport(), "demo: connected");

    socket.on("nick", |socket: Socket, mut ev: Event| async move {
        let answer = match ev.data::<String>().map_err(|_| "nick must be a string".to_owned()).and_then(clean_nick) {
            Ok(nick) => {
                let old = display_name(&socket);
                if socket.set_data(&Profile { nick: Some(nick.clone()) }).is_err() {
                    json!({ "ok": false, "error": "cannot store the nick" })
                } else {
                    if old != nick {
                        for room in joined_rooms(&socket) {
                            let _ =
                                socket.to(room.clone()).emit("system", &system(&room, &format!("{old} is now {nick}")));
                        }
                    }
                    json!({ "ok": true, "nick": nick })
                }
            }
            Err(error) => json!({ "ok": false, "error": error }),
        };
        let _ = ev.ack(&answer);
    });

    let server = io.clone();
    socket.on("join", move |socket: Socket, mut ev: Event| {
        let io = server.clone();
        async move {
            let answer = match ev.data::<String>().map_err(|_| "room must be a string".to_owned()).and_then(clean_room)
            {
                Ok(room) => {
                    if !socket.in_room(&room) {
                        socket.join(room.clone());
                        let text = format!("{} joined {room}", display_name(&socket));
                        let _ = io.to(room.clone()).emit("system", &system(&room, &text));
                        tracing::debug!(sid = %socket.id(), %room, "demo: join");
                    }
                    json!({ "ok": true, "room": room })
                }
                Err(error) => json!({ "ok": false, "error": error }),
            };
            let _ = ev.ack(&answer);
        }
    });

    socket.on("leave", |socket: Socket, mut ev: Event| async move {
        let answer = match ev.data::<String>() {
            Ok(room) if socket.in_room(&room) && room != socket.id().as_str() => {
                socket.leave(room.clone());
                let text = format!("{} left {room}", display_name(&socket));
                let _ = socket.to(room.clone()).emit("system", &system(&room, &text));
                json!({ "ok": true, "room": room })
            }
            Ok(_) => json!({ "ok": false, "error": "not in that room" }),
            Err(_) => json!({ "ok": false, "error": "room must be a string" }),
        };
        let _ = ev.ack(&answer);
    });

    let server = io.clone();
    socket.on("chat", move |socket: Socket, mut ev: Event| {
        let io = server.clone();
        async move {
            let answer = match ev.data::<ChatIn>() {
                Err(_) => json!({ "ok": false, "error": "expected {room, text}" }),
                Ok(msg) if msg.room == socket.id().as_str() || !socket.in_room(&msg.room) => {
                    json!({ "ok": false, "error": "join the room first" })
                }
                Ok(msg) => match clean_text(&msg.text) {
                    Err(error) => json!({ "ok": false, "error": error }),
                    Ok(text) => {
                        let id = socket.id();
                        let nick = display_name(&socket);
                        let out = ChatOut { from: id.as_str(), nick: &nick, text, at: now_ms() };
                        match io.to(msg.room).emit("chat", &out) {
                            Ok(()) => json!({ "ok": true, "at": out.at }),
                            Err(e) => json!({ "ok": false, "error": e.to_string() }),
                        }
                    }
                },
            };
            let _ = ev.ack(&answer);
        }
    });

    // still in its rooms here (in `on_disconnect` it would have left them)
    socket.on_disconnecting(|socket: Socket, reason: shoal::DisconnectReason| async move {
        let name = display_name(&socket);
        for room in joined_rooms(&socket) {
            let text = format!("{name} left {room} ({reason})");
            let _ = socket.to(room.clone()).emit("system", &system(&room, &text));
        }
        tracing::debug!(sid = %socket.id(), %reason, "demo: disconnecting");
    });
}

/// The rooms the socket joined (not its own-id room).
fn joined_rooms(socket: &Socket) -> Vec<String> {
    let own = socket.id();
    socket.rooms().iter().map(|r| r.as_str()).filter(|r| *r != own.as_str()).map(str::to_owned).collect()
}

/// The nick if set, else the socket id.
fn display_name(socket: &Socket) -> String {
    socket.data::<Profile>().and_then(|p| p.nick).unwrap_or_else(|| socket.id().to_string())
}

fn system(room: &str, text: &str) -> Value {
    json!({ "room": room, "text": text, "at": now_ms() })
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn clean_room(room: String) -> Result<String, String> {
    let room = room.trim();
    if room.is_empty() {
        return Err("room name is empty".into());
    }
    if room.chars().count() > MAX_ROOM_CHARS {
        return Err(format!("room name is longer than {MAX_ROOM_CHARS} characters"));
    }
    if room.chars().any(char::is_control) {
        return Err("room name has control characters".into());
    }
    Ok(room.to_owned())
}

fn clean_nick(nick: String) -> Result<String, String> {
    let nick = nick.trim();
    if nick.is_empty() {
        return Err("nick is empty".into());
    }
    if nick.chars().count() > MAX_NICK_CHARS {
        return Err(format!("nick is longer than {MAX_NICK_CHARS} characters"));
    }
    if nick.chars().any(char::is_control) {
        return Err("nick has control characters".into());
    }
    Ok(nick.to_owned())
}

fn clean_text(text: &str) -> Result<&str, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("message is empty".into());
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(format!("message is longer than {MAX_TEXT_CHARS} characters"));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cleaned() {
        assert_eq!(clean_room("  lobby ".into()).unwrap(), "lobby");
        assert!(clean_room("   ".into()).is_err());
        assert!(clean_room("a".repeat(MAX_ROOM_CHARS + 1)).is_err());
        assert!(clean_room("a\nb".into()).is_err());
        assert_eq!(clean_nick("ada".into()).unwrap(), "ada");
        assert!(clean_nick("".into()).is_err());
        assert!(clean_text(" ").is_err());
        assert_eq!(clean_text(" hi ").unwrap(), "hi");
        assert!(clean_text(&"x".repeat(MAX_TEXT_CHARS + 1)).is_err());
    }

    #[test]
    fn clock_is_in_milliseconds() {
        // after 2020-01-01 and before 2100-01-01
        let t = now_ms();
        assert!(t > 1_577_836_800_000 && t < 4_102_444_800_000, "{t}");
    }
}
