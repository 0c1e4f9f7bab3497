// Shared helpers of the scripts in this folder: argument parsing, the `{"$bin": base64}`
// convention for binary values, and the line-oriented JSON protocol (one object per line
// on stdout for events and replies, one command per line on stdin).

import { createInterface } from "node:readline";
import { createClient, createCluster } from "redis";

/**
 * Parses `--name value` and bare `--flag` arguments into an object (`--a-b` => `aB`).
 * A flag followed by another `--` argument (or nothing) is `true`.
 */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) {
      out._.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    let key;
    let value;
    if (eq > 0) {
      key = a.slice(2, eq);
      value = a.slice(eq + 1);
    } else {
      key = a.slice(2);
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        value = true;
      } else {
        value = next;
        i++;
      }
    }
    out[key.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = value;
  }
  return out;
}

/** Parses an optional JSON argument (`undefined` stays `undefined`). */
export function jsonArg(text, name) {
  if (text === undefined || text === true) return undefined;
  try {
    return fromWire(JSON.parse(text));
  } catch (e) {
    fail(`--${name}: not JSON: ${e.message}`);
  }
}

/** A comma-separated list argument (`"a,b"` => `["a", "b"]`). */
export function listArg(text) {
  if (text === undefined || text === true || text === "") return [];
  return String(text)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Converts a JSON value from a command: every `{"$bin": base64}` becomes a Buffer. */
export function fromWire(v) {
  if (Buffer.isBuffer(v) || v instanceof ArrayBuffer || ArrayBuffer.isView(v)) return v;
  if (Array.isArray(v)) return v.map(fromWire);
  if (v && typeof v === "object") {
    const keys = Object.keys(v);
    if (keys.length === 1 && keys[0] === "$bin" && typeof v.$bin === "string") {
      return Buffer.from(v.$bin, "base64");
    }
    const out = {};
    for (const k of keys) out[k] = fromWire(v[k]);
    return out;
  }
  return v;
}

/**
 * Converts a value for printing: Buffers, ArrayBuffers and typed arrays become
 * `{"$bin": base64}`, Sets become arrays, Maps objects, Dates ISO strings, functions
 * (ack callbacks) are dropped, `undefined` becomes `null`.
 */
export function toWire(v) {
  if (v === undefined || v === null) return null;
  if (Buffer.isBuffer(v)) return { $bin: v.toString("base64") };
  if (v instanceof ArrayBuffer) return { $bin: Buffer.from(v).toString("base64") };
  if (ArrayBuffer.isView(v)) return { $bin: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString("base64") };
  if (v instanceof Date) return v.toISOString();
  if (v instanceof Set) return [...v].map(toWire);
  if (v instanceof Map) {
    const out = {};
    for (const [k, val] of v) out[String(k)] = toWire(val);
    return out;
  }
  if (Array.isArray(v)) return v.filter((x) => typeof x !== "function").map(toWire);
  if (typeof v === "bigint") return v.toString();
  if (typeof v === "object") {
    if (typeof v.toJSON === "function") return toWire(v.toJSON());
    const out = {};
    for (const k of Object.keys(v)) {
      if (typeof v[k] !== "function") out[k] = toWire(v[k]);
    }
    return out;
  }
  return v;
}

// A rejected promise nobody awaited (an adapter publishing while Redis is down, ...) must
// not kill the process (Node's default): it is reported instead.
process.on("unhandledRejection", (e) => {
  event("unhandledRejection", { message: e && e.message ? e.message : String(e) });
});

/** Prints one JSON object as one line on stdout. */
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Prints `{"event": name, ...fields}`. */
export function event(name, fields = {}) {
  out({ event: name, ...fields });
}

/** Explains on stderr and exits 1. */
export function fail(why) {
  process.stderr.write(`${process.argv[1]}: ${why}\n`);
  process.exit(1);
}

/**
 * Reads one JSON command per line on stdin and dispatches it to `handlers[cmd.cmd]`
 * (an async function of the command object). Answers `{"reply": id, "ok": true,
 * "result": ...}` (the result through `toWire`) or `{"reply": id, "ok": false,
 * "error": message}`. Commands run concurrently (a slow `broadcastWithAck` does not
 * hold the others back). When stdin closes (the test process went away), `onEnd` runs
 * and the process exits.
 */
export function serveCommands(handlers, onEnd) {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  rl.on("line", (line) => {
    if (line.trim() === "") return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (e) {
      out({ reply: null, ok: false, error: `not JSON: ${e.message}` });
      return;
    }
    const id = cmd.id ?? null;
    const handler = handlers[cmd.cmd];
    if (typeof handler !== "function") {
      out({ reply: id, ok: false, error: `unknown command ${JSON.stringify(cmd.cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(cmd))
      .then(
        (result) => out({ reply: id, ok: true, result: toWire(result) }),
        (err) => out({ reply: id, ok: false, error: err && err.message ? err.message : String(err) }),
      );
  });
  rl.on("close", async () => {
    try {
      if (onEnd) await onEnd();
    } finally {
      process.exit(0);
    }
  });
}

/** The namespace of a command (`nsp`, default `/`; a missing leading `/` is added). */
export function nspOf(cmd) {
  const n = cmd.nsp ?? "/";
  return n.startsWith("/") ? n : "/" + n;
}

/** The `args` array of a command, binary values decoded. */
export function argsOf(cmd) {
  if (cmd.args === undefined || cmd.args === null) return [];
  if (!Array.isArray(cmd.args)) throw new Error("`args` must be an array");
  return fromWire(cmd.args);
}

/** A list field of a command (a single string is a one-element list). */
export function listOf(v) {
  if (v === undefined || v === null) return [];
  return Array.isArray(v) ? v : [v];
}

/**
 * Creates and connects the Redis client(s) given by `--redis URL` or `--cluster
 * URL,URL,...` (node-redis 4). With `withSub`, also a duplicate for subscriptions.
 * Client state changes are reported as `{"event": "redis", "client": role, "state": ...}`.
 */
export async function redisClients(args, withSub) {
  let pub;
  if (args.cluster) {
    const rootNodes = listArg(args.cluster).map((url) => ({ url }));
    if (rootNodes.length === 0) fail("--cluster needs at least one URL");
    pub = createCluster({ rootNodes });
  } else if (args.redis) {
    pub = createClient({ url: args.redis });
  } else {
    fail("give --redis URL or --cluster URL,URL,...");
  }
  const sub = withSub ? pub.duplicate() : null;
  const watch = (client, role) => {
    // an `error` listener is required: without one node-redis throws on a lost connection
    client.on("error", (e) => event("redis", { client: role, state: "error", message: e && e.message ? e.message : String(e) }));
    client.on("ready", () => event("redis", { client: role, state: "ready" }));
    client.on("reconnecting", () => event("redis", { client: role, state: "reconnecting" }));
    client.on("end", () => event("redis", { client: role, state: "end" }));
  };
  watch(pub, "pub");
  if (sub) watch(sub, "sub");
  await Promise.all([pub.connect(), sub ? sub.connect() : null]);
  return { pub, sub };
}

/** Quits (or, failing that, disconnects) Redis clients, ignoring errors. */
export async function closeRedis(...clients) {
  for (const c of clients) {
    if (!c) continue;
    try {
      await c.quit();
    } catch {
      try {
        await c.disconnect();
      } catch {
        // already closed
      }
    }
  }
}
