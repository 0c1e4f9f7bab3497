//! A load generator for Socket.IO servers.
//!
//! It speaks Engine.IO v4 and Socket.IO v5 over raw WebSocket (and HTTP long-polling for
//! the handshake scenario) with as little work per message as possible: frames are
//! decoded, events are recognized by their prefix, nothing else is parsed. Connections
//! are spread over several loopback source addresses (127.0.0.2, 127.0.0.3, …) so that a
//! run is not limited by the ~28 000 ephemeral ports of one address pair.
//!
//! It drives any server that implements the *benchmark contract* (see the `bench_server`
//! example of the `shoal` crate): namespace `/`, every socket in room `bench`, and the
//! events `echo`, `broadcast`, `burst`, `count` and `to`.
//!
//! Each scenario prints one JSON line with its figures, the server's CPU time and memory
//! (read from `/proc/<pid>` when `--server-pid` is given) and the load generator's own
//! CPU time, so that a run limited by the load generator shows.
//!
//! # Layout
//! - [`proto`]: recognizing Engine.IO / Socket.IO packets and building the few the
//!   client sends.
//! - [`conn`]: a WebSocket client connection (handshake, masked frames, reads through a
//!   stack buffer) and the polling handshake.
//! - [`stats`]: latency percentiles and `/proc` readings.
//! - [`scenarios`]: idle, fanout, echo, handshake and soak.

pub mod cli;
pub mod conn;
pub mod proto;
pub mod scenarios;
pub mod stats;
