//! Helpers shared by the integration tests of the `shoal` binary. Every test file includes
//! this directory with `mod support;` (a subdirectory, so cargo does not build it as a test
//! of its own); not every test uses every helper.
//!
//! - [`process`]: `shoal` child processes ([`Shoal`]): `shoal serve` / `shoal balance`
//!   started and waited for until they listen, their stderr (the log) read line by line,
//!   signals, exit, killed on drop;
//! - [`http`]: raw HTTP/1.1 requests over fresh connections ([`request`], [`get`]) and
//!   response reading ([`Answer`], [`read_response`]);
//! - [`polling`]: a raw Socket.IO client over HTTP long-polling ([`Polling`]) that can send
//!   each request to any node;
//! - [`ws`]: reading a raw WebSocket client's packets ([`next_packet`]).
//!
//! Set `SHOAL_TEST_LOG` (or `SHOAL_NODE_LOG`) to see the log of every process started.

#![allow(dead_code, unused_imports, missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod http;
pub mod polling;
pub mod process;
pub mod ws;

pub use http::*;
pub use polling::*;
pub use process::*;
pub use ws::*;

/// The `shoal` binary under test.
pub const SHOAL: &str = env!("CARGO_BIN_EXE_shoal");
