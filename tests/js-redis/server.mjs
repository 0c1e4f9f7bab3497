// A Node socket.io 4.8 server with @socket.io/redis-adapter 8.3 (classic or sharded),
// driven over stdin/stdout (see README.md for the protocol).
//
//   node server.mjs --redis redis://127.0.0.1:6379 [--port 0] [--mode classic|sharded]
//        [--subscription-mode static|dynamic|dynamic-private] [--key socket.io]
//        [--requests-timeout 5000] [--specific-response-channel] [--name NAME]
//        [--server-ack JSON] [--nsp /a,/b]
//   node server.mjs --cluster redis://127.0.0.1:7000,redis://127.0.0.1:7001 ...

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter, createShardedAdapter } from "@socket.io/redis-adapter";
import {
  parseArgs,
  jsonArg,
  listArg,
  event,
  fail,
  serveCommands,
  nspOf,
  argsOf,
  listOf,
  toWire,
  fromWire,
  redisClients,
  closeRedis,
} from "./lib.mjs";

const args = parseArgs();
const mode = args.mode ?? "classic";
if (mode !== "classic" && mode !== "sharded") fail(`--mode must be classic or sharded, not ${mode}`);
const subscriptionMode = args.subscriptionMode ?? "dynamic";
if (!["static", "dynamic", "dynamic-private"].includes(subscriptionMode)) {
  fail(`--subscription-mode must be static, dynamic or dynamic-private, not ${subscriptionMode}`);
}
const key = args.key ?? "socket.io";
const port = args.port === undefined ? 0 : Number(args.port);

// The value this server answers server-side-emit acknowledgements with (`setServerAck`).
let serverAck = { silent: false, value: undefined };

const { pub, sub } = await redisClients(args, true);

// The adapters do not expose their (un)subscription promises: record them, so that
// `listening`, `connection`, `ns`, `join` and `settle` are reported once Redis confirmed
// every subscription change made so far (dynamic room channels included).
let pendingSubs = [];
for (const method of ["subscribe", "pSubscribe", "sSubscribe", "unsubscribe", "pUnsubscribe", "sUnsubscribe"]) {
  if (typeof sub[method] !== "function") continue;
  const original = sub[method].bind(sub);
  sub[method] = (...a) => {
    const p = original(...a);
    pendingSubs.push(Promise.resolve(p).catch((e) => event("redis", { client: "sub", state: "error", message: `${method}: ${e.message}` })));
    return p;
  };
}
async function settle() {
  while (pendingSubs.length > 0) {
    const list = pendingSubs;
    pendingSubs = [];
    await Promise.all(list);
  }
}

let adapter;
if (mode === "classic") {
  const opts = { key };
  if (args.requestsTimeout !== undefined) opts.requestsTimeout = Number(args.requestsTimeout);
  if (args.specificResponseChannel) opts.publishOnSpecificResponseChannel = true;
  adapter = createAdapter(pub, sub, opts);
} else {
  adapter = createShardedAdapter(pub, sub, { channelPrefix: key, subscriptionMode });
}

const httpServer = createServer();
const io = new Server(httpServer, { adapter, cors: { origin: "*" } });

// Namespaces set up with reporting (so `ns` is idempotent).
const reporting = new Set();

function setUp(name) {
  const nsp = io.of(name);
  if (reporting.has(nsp.name)) return nsp;
  reporting.add(nsp.name);
  nsp.on("connection", async (socket) => {
    // rooms to join on connection, from the client's handshake (`auth.rooms`), and data
    const auth = socket.handshake.auth || {};
    if (auth.data !== undefined) socket.data = fromWire(auth.data);
    socket.on("disconnect", (reason) => {
      event("disconnect", { nsp: nsp.name, id: socket.id, reason });
    });
    socket.onAny((name, ...rest) => {
      const ack = typeof rest[rest.length - 1] === "function" ? rest.pop() : null;
      event("message", { nsp: nsp.name, id: socket.id, name, args: toWire(rest), ack: ack !== null });
      // client acknowledgements are answered with the event's own arguments
      if (ack) ack(...rest);
    });
    if (auth.rooms !== undefined) await socket.join(listOf(auth.rooms));
    await settle();
    event("connection", { nsp: nsp.name, id: socket.id, rooms: [...socket.rooms] });
  });
  // every event another server sends with serverSideEmit ends up here
  const original = nsp._onServerSideEmit.bind(nsp);
  nsp._onServerSideEmit = (packet) => {
    const rest = [...packet];
    const name = rest.shift();
    const ack = typeof rest[rest.length - 1] === "function" ? rest.pop() : null;
    event("serverSideEmit", { nsp: nsp.name, name, args: toWire(rest), ack: ack !== null });
    if (ack && !serverAck.silent) {
      ack(serverAck.value === undefined ? serverName : serverAck.value);
    }
    // listeners registered with nsp.on(name) still run (none by default)
    original(ack ? [name, ...rest, () => {}] : [name, ...rest]);
  };
  return nsp;
}

/** A BroadcastOperator for the targeting fields of a command. */
function target(cmd) {
  let op = io.of(nspOf(cmd));
  const rooms = listOf(cmd.rooms);
  const except = listOf(cmd.except);
  if (rooms.length > 0) op = op.to(rooms);
  if (except.length > 0) op = op.except(except);
  if (cmd.volatile) op = op.volatile;
  if (cmd.local) op = op.local;
  if (cmd.compress !== undefined) op = op.compress(!!cmd.compress);
  return op;
}

function localSocket(cmd) {
  const socket = io.of(nspOf(cmd)).sockets.get(cmd.socketId);
  if (!socket) throw new Error(`no local socket ${cmd.socketId} in ${nspOf(cmd)}`);
  return socket;
}

async function remoteSocket(cmd) {
  const sockets = await io.of(nspOf(cmd)).in(cmd.socketId).fetchSockets();
  const socket = sockets.find((s) => s.id === cmd.socketId);
  if (!socket) throw new Error(`fetchSockets found no socket ${cmd.socketId} in ${nspOf(cmd)}`);
  return socket;
}

function describe(socket) {
  return {
    id: socket.id,
    rooms: [...socket.rooms],
    data: toWire(socket.data),
    handshake: toWire(socket.handshake),
    local: !!socket.server,
  };
}

const handlers = {
  async broadcast(cmd) {
    target(cmd).emit(cmd.event, ...argsOf(cmd));
    return null;
  },
  async broadcastWithAck(cmd) {
    const timeout = cmd.timeout === undefined ? 2000 : Number(cmd.timeout);
    return new Promise((resolve) => {
      target(cmd)
        .timeout(timeout)
        .emit(cmd.event, ...argsOf(cmd), (err, responses) => {
          if (err) resolve({ error: "timeout", responses: toWire(responses ?? []) });
          else resolve(toWire(responses));
        });
    });
  },
  async fetchSockets(cmd) {
    let op = target(cmd);
    if (cmd.timeout !== undefined) op = op.timeout(Number(cmd.timeout));
    const sockets = await op.fetchSockets();
    return sockets.map(describe);
  },
  async socketsJoin(cmd) {
    target(cmd).socketsJoin(listOf(cmd.join));
    return null;
  },
  async socketsLeave(cmd) {
    target(cmd).socketsLeave(listOf(cmd.leave));
    return null;
  },
  async disconnectSockets(cmd) {
    target(cmd).disconnectSockets(!!cmd.close);
    return null;
  },
  async serverSideEmit(cmd) {
    io.of(nspOf(cmd)).serverSideEmit(cmd.event, ...argsOf(cmd));
    return null;
  },
  async serverSideEmitWithAck(cmd) {
    // the adapter owns the timeout: --requests-timeout (classic) or 5000 ms (sharded)
    return new Promise((resolve) => {
      io.of(nspOf(cmd)).serverSideEmit(cmd.event, ...argsOf(cmd), (err, responses) => {
        if (err) resolve({ error: "timeout", message: err.message, responses: toWire(responses ?? []) });
        else resolve(toWire(responses));
      });
    });
  },
  async allRooms(cmd) {
    const a = io.of(nspOf(cmd)).adapter;
    if (typeof a.allRooms !== "function") throw new Error(`allRooms is not supported by the ${mode} adapter`);
    return [...(await a.allRooms())].sort();
  },
  async serverCount(cmd) {
    return await io.of(nspOf(cmd)).adapter.serverCount();
  },
  async remoteSocketEmit(cmd) {
    (await remoteSocket(cmd)).emit(cmd.event, ...argsOf(cmd));
    return null;
  },
  async remoteSocketEmitWithAck(cmd) {
    const socket = await remoteSocket(cmd);
    const timeout = cmd.timeout === undefined ? 2000 : Number(cmd.timeout);
    return new Promise((resolve) => {
      socket.timeout(timeout).emit(cmd.event, ...argsOf(cmd), (err, response) => {
        if (err) resolve({ error: "timeout", message: err.message });
        else resolve(toWire(response));
      });
    });
  },
  async remoteSocketJoin(cmd) {
    (await remoteSocket(cmd)).join(listOf(cmd.join));
    return null;
  },
  async remoteSocketLeave(cmd) {
    (await remoteSocket(cmd)).leave(listOf(cmd.leave));
    return null;
  },
  async remoteSocketDisconnect(cmd) {
    (await remoteSocket(cmd)).disconnect(!!cmd.close);
    return null;
  },
  async setData(cmd) {
    localSocket(cmd).data = fromWire(cmd.data);
    return null;
  },
  async join(cmd) {
    await localSocket(cmd).join(listOf(cmd.join));
    await settle();
    return null;
  },
  async leave(cmd) {
    const socket = localSocket(cmd);
    for (const room of listOf(cmd.leave)) await socket.leave(room);
    await settle();
    return null;
  },
  async emit(cmd) {
    localSocket(cmd).emit(cmd.event, ...argsOf(cmd));
    return null;
  },
  async localRooms(cmd) {
    const rooms = {};
    for (const [room, sids] of io.of(nspOf(cmd)).adapter.rooms) rooms[room] = [...sids].sort();
    return rooms;
  },
  async localSockets(cmd) {
    return [...io.of(nspOf(cmd)).sockets.keys()].sort();
  },
  async ns(cmd) {
    const nsp = setUp(nspOf(cmd));
    await settle();
    return { nsp: nsp.name, uid: nsp.adapter.uid };
  },
  async settle() {
    await settle();
    return null;
  },
  async setServerAck(cmd) {
    serverAck = { silent: !!cmd.silent, value: cmd.value === undefined ? undefined : fromWire(cmd.value) };
    return null;
  },
  async close() {
    await shutdown();
    setTimeout(() => process.exit(0), 10);
    return null;
  },
};

let closed = false;
async function shutdown() {
  if (closed) return;
  closed = true;
  await new Promise((resolve) => io.close(() => resolve()));
  await closeRedis(sub, pub);
}

setUp("/");
for (const n of listArg(args.nsp)) setUp(n);

await new Promise((resolve, reject) => {
  httpServer.once("error", reject);
  httpServer.listen(port, "127.0.0.1", resolve);
});
const actualPort = httpServer.address().port;
const serverName = args.name ?? `node-${actualPort}`;
{
  const ack = jsonArg(args.serverAck, "server-ack");
  if (ack !== undefined) serverAck = { silent: false, value: ack };
}

await settle();
serveCommands(handlers, shutdown);
event("listening", { port: actualPort, name: serverName, mode, uid: io.of("/").adapter.uid });
