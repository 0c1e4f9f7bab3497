// The smallest script of the protocol (used by shoal-testkit's own tests): prints
// {"event":"ready","args":[...]} at start, answers `echo` with the command's `value`
// (binary values round-trip through the {"$bin": base64} convention), `fail` with an
// error, `emit` by printing {"event": <name>, ...fields}, and `exit` by exiting with `code`.

import { event, serveCommands, fromWire } from "./lib.mjs";

serveCommands({
  async echo(cmd) {
    return fromWire(cmd.value ?? null);
  },
  async fail(cmd) {
    throw new Error(cmd.message ?? "failed on purpose");
  },
  async emit(cmd) {
    event(cmd.name ?? "emitted", cmd.fields ?? {});
    return null;
  },
  async exit(cmd) {
    setTimeout(() => process.exit(cmd.code ?? 0), 10);
    return null;
  },
});
event("ready", { args: process.argv.slice(2) });
