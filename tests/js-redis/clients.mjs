// Official socket.io-client 4.8 clients, driven over stdin/stdout (see README.md).
//
//   node clients.mjs [--url http://127.0.0.1:3000] [--count 1] [--nsp /]
//        [--transports polling,websocket] [--auth JSON] [--ack JSON]
//
// With --url, `count` clients connect at start; more connect with the `connect` command
// (to any server). Clients are numbered from 0 in the order they were created.

import { io as connect } from "socket.io-client";
import { parseArgs, jsonArg, listArg, event, fail, serveCommands, argsOf, toWire, fromWire, listOf } from "./lib.mjs";

const args = parseArgs();

/** @type {{socket: import("socket.io-client").Socket, url: string, nsp: string, ack: {silent: boolean, value: any}}[]} */
const clients = [];
// how new clients answer acknowledgements: with --ack's value, or their index without it
let defaultAck = { silent: false, value: jsonArg(args.ack, "ack") };

function ackOf(index) {
  const c = clients[index];
  if (c.ack.silent) return null;
  return c.ack.value === undefined ? index : c.ack.value;
}

/**
 * Creates one client and resolves with its index and id once it is connected (rejects
 * on a connect error or after `timeoutMs`).
 */
function create({ url, nsp = "/", transports, auth, query, reconnection, withCredentials, timeoutMs = 10000 }) {
  const index = clients.length;
  const fullUrl = url.replace(/\/+$/, "") + (nsp === "/" ? "" : nsp.startsWith("/") ? nsp : "/" + nsp);
  const opts = { forceNew: true, reconnection: reconnection ?? false, timeout: timeoutMs };
  if (transports && transports.length > 0) opts.transports = transports;
  if (auth !== undefined) opts.auth = auth;
  if (query !== undefined) opts.query = query;
  // in Node.js, the client keeps cookies (a load balancer's sticky cookie) only with this
  if (withCredentials !== undefined) opts.withCredentials = !!withCredentials;
  const socket = connect(fullUrl, opts);
  const entry = { socket, url, nsp, ack: { ...defaultAck } };
  clients.push(entry);
  socket.on("connect", () => event("connected", { index, id: socket.id, nsp, url }));
  socket.on("disconnect", (reason) => event("disconnected", { index, reason }));
  socket.on("connect_error", (err) => event("connectError", { index, message: err.message }));
  socket.onAny((name, ...rest) => {
    const ack = typeof rest[rest.length - 1] === "function" ? rest.pop() : null;
    event("received", { index, name, args: toWire(rest), ack: ack !== null });
    if (ack) {
      const value = ackOf(index);
      if (value !== null) ack(value);
    }
  });
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve({ index, id: socket.id });
    const timer = setTimeout(() => reject(new Error(`client ${index} not connected to ${fullUrl} within ${timeoutMs} ms`)), timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve({ index, id: socket.id });
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      reject(new Error(`client ${index} could not connect to ${fullUrl}: ${err.message}`));
    });
  });
}

function client(cmd) {
  const c = clients[cmd.index];
  if (!c) throw new Error(`no client ${JSON.stringify(cmd.index)} (there are ${clients.length})`);
  return c;
}

function connectOpts(cmd) {
  if (typeof cmd.url !== "string") throw new Error("`url` is required");
  const count = cmd.count === undefined ? 1 : Number(cmd.count);
  const list = [];
  for (let i = 0; i < count; i++) {
    // `auth` may be one object for all, or an array with one per client
    const auth = Array.isArray(cmd.auth) ? cmd.auth[i] : cmd.auth;
    list.push({
      url: cmd.url,
      nsp: cmd.nsp ?? "/",
      transports: listOf(cmd.transports),
      auth: auth === undefined ? undefined : fromWire(auth),
      query: cmd.query,
      reconnection: cmd.reconnection,
      withCredentials: cmd.withCredentials,
      timeoutMs: cmd.timeout === undefined ? 10000 : Number(cmd.timeout),
    });
  }
  return list;
}

const handlers = {
  async connect(cmd) {
    // created one after the other so that indexes follow the order of the list
    const created = connectOpts(cmd).map((o) => create(o));
    return await Promise.all(created);
  },
  async emit(cmd) {
    client(cmd).socket.emit(cmd.event, ...argsOf(cmd));
    return null;
  },
  async emitWithAck(cmd) {
    const timeout = cmd.timeout === undefined ? 2000 : Number(cmd.timeout);
    const c = client(cmd);
    return new Promise((resolve) => {
      c.socket.timeout(timeout).emit(cmd.event, ...argsOf(cmd), (err, ...response) => {
        if (err) resolve({ error: "timeout", message: err.message });
        else resolve(toWire(response));
      });
    });
  },
  async disconnect(cmd) {
    client(cmd).socket.disconnect();
    return null;
  },
  async reconnect(cmd) {
    const c = client(cmd);
    if (c.socket.connected) return { index: cmd.index, id: c.socket.id };
    const timeout = cmd.timeout === undefined ? 10000 : Number(cmd.timeout);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client ${cmd.index} not reconnected within ${timeout} ms`)), timeout);
      c.socket.once("connect", () => {
        clearTimeout(timer);
        resolve({ index: cmd.index, id: c.socket.id });
      });
      c.socket.connect();
    });
  },
  async setAck(cmd) {
    const ack = { silent: !!cmd.silent, value: cmd.value === undefined ? undefined : fromWire(cmd.value) };
    if (cmd.index === undefined || cmd.index === null) {
      defaultAck = ack;
      clients.forEach((c) => (c.ack = { ...ack }));
    } else {
      client(cmd).ack = ack;
    }
    return null;
  },
  async list() {
    return clients.map((c, index) => ({ index, id: c.socket.id ?? null, connected: c.socket.connected, nsp: c.nsp, url: c.url }));
  },
  async close() {
    closeAll();
    setTimeout(() => process.exit(0), 10);
    return null;
  },
};

function closeAll() {
  for (const c of clients) c.socket.disconnect();
}

serveCommands(handlers, closeAll);

if (args.url) {
  const count = args.count === undefined ? 1 : Number(args.count);
  if (!Number.isInteger(count) || count < 0) fail("--count must be a non-negative integer");
  const auth = jsonArg(args.auth, "auth");
  try {
    const ready = await handlers.connect({
      url: args.url,
      count,
      nsp: args.nsp ?? "/",
      transports: listArg(args.transports),
      auth,
    });
    event("ready", { clients: ready });
  } catch (e) {
    fail(e.message);
  }
} else {
  event("ready", { clients: [] });
}
