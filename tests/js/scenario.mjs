// Scenarios run with the official socket.io-client against a Shoal server.
//
//   node scenario.mjs <name> <server url> [<params as JSON>]
//
// Each scenario prints JSON lines on stdout: `{"event": ..., ...}` while it runs (so the
// Rust test can act at the right moment) and `{"result": ...}` last, then exits 0. On
// failure it prints the reason on stderr and exits 1. The Rust side is in
// crates/shoal/tests/client_*.rs.

import { io, Manager } from "socket.io-client";
import { scenarios } from "./scenarios/index.mjs";
import { fail, out } from "./lib.mjs";

const [, , name, url, rawParams] = process.argv;
if (!name || !url) {
  fail("usage: node scenario.mjs <name> <server url> [<params as JSON>]");
}
const params = rawParams ? JSON.parse(rawParams) : {};
const run = scenarios[name];
if (!run) {
  fail(`unknown scenario ${JSON.stringify(name)}; known: ${Object.keys(scenarios).join(", ")}`);
}

// Every scenario is bounded: a hung one fails instead of hanging the Rust test.
const watchdog = setTimeout(() => fail(`timed out after ${params.timeoutMs ?? 20000} ms`), params.timeoutMs ?? 20000);
process.on("unhandledRejection", (e) => fail(e?.stack ?? String(e)));
process.on("uncaughtException", (e) => fail(e?.stack ?? String(e)));

try {
  const result = await run({ url, params, io, Manager });
  clearTimeout(watchdog);
  out({ result: result ?? null });
  // No process.exit(): Node exits once what the scenario closed has been flushed (a
  // polling client's last POST, a WebSocket close frame). A scenario that leaves a socket
  // open never exits, and the Rust side reports it.
  process.exitCode = 0;
} catch (e) {
  fail(e?.stack ?? String(e));
}
