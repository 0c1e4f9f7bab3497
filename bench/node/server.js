"use strict";
// Node socket.io comparison server for the Shoal benchmark.
//
// Usage: node bench/node/server.js --port P [--redis URL [--redis-mode classic|sharded]
//                                            [--redis-key KEY]]
//
// With --redis URL the rooms span every server on that Redis, through
// @socket.io/redis-adapter 8.3 and node-redis 4 (a publishing client and its
// duplicate for subscriptions): classic mode (the default) is
// createAdapter(pub, sub), PUBLISH/PSUBSCRIBE, the protocol Shoal's classic mode
// speaks; sharded mode is createShardedAdapter(pub, sub, {subscriptionMode:
// "dynamic"}), SPUBLISH/SSUBSCRIBE with one channel per room (Redis >= 7).
// The server listens only once both Redis clients are connected.
//
// Contract (shared with Shoal's and socketioxide's bench servers), namespace "/":
//   connect                       -> socket joins room "bench"
//   "echo" (...args, ack)         -> ack(...args)
//   "broadcast" (payload)         -> emit "msg" payload to room "bench"
//   "burst" ({n, payload}, [ack]) -> emit "msg" payload n times to room "bench",
//                                    then ack(n) if the client asked for an ack
//   "count" (ack)                 -> ack(number of sockets in "/")
//   "to" ({room, event, payload}) -> emit event payload to room (a socket id
//                                    targets that socket: each socket is in the
//                                    room named by its id)
// SIGTERM / SIGINT exit at once.

const http = require("node:http");
const { Server } = require("socket.io");

const USAGE =
  "usage: node server.js --port P [--redis URL] [--redis-mode classic|sharded] [--redis-key KEY]";

function fail(msg, code = 2) {
  // usage errors (code 2) show the usage
  process.stderr.write(`bench node server: ${msg}\n${code === 2 ? USAGE + "\n" : ""}`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { port: undefined, redis: undefined, redisMode: undefined, redisKey: undefined };
  for (let i = 0; i < argv.length; i++) {
    let name = argv[i];
    let value;
    const eq = name.indexOf("=");
    if (name.startsWith("--") && eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const take = () => {
      if (value !== undefined) return value;
      if (i + 1 >= argv.length) fail(`${name} needs a value`);
      return argv[++i];
    };
    switch (name) {
      case "--port": {
        const raw = take();
        const port = Number(raw);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          fail(`--port: invalid port ${JSON.stringify(raw)}`);
        }
        opts.port = port;
        break;
      }
      case "--redis":
        opts.redis = take();
        break;
      case "--redis-mode": {
        const mode = take();
        if (mode !== "classic" && mode !== "sharded") {
          fail(`--redis-mode must be classic or sharded, got ${JSON.stringify(mode)}`);
        }
        opts.redisMode = mode;
        break;
      }
      case "--redis-key":
        opts.redisKey = take();
        break;
      case "-h":
      case "--help":
        process.stdout.write(USAGE + "\n");
        process.exit(0);
        break;
      default:
        fail(`unknown argument ${JSON.stringify(argv[i])}`);
    }
  }
  if (opts.port === undefined) fail("--port is required");
  if (opts.redis === undefined && (opts.redisMode !== undefined || opts.redisKey !== undefined)) {
    fail("--redis-mode and --redis-key need --redis");
  }
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

const httpServer = http.createServer({ noDelay: true });

// socket.io 4.8 defaults, spelled out so they are easy to compare with the
// other servers: path "/socket.io/", pingInterval 25000, pingTimeout 20000,
// maxHttpBufferSize 1e6; no CORS.
const io = new Server(httpServer, {
  path: "/socket.io/",
  pingInterval: 25000,
  pingTimeout: 20000,
  maxHttpBufferSize: 1e6,
});

const ROOM = "bench";
const root = io.of("/");

root.on("connection", (socket) => {
  socket.join(ROOM);

  socket.on("echo", (...args) => {
    if (typeof args[args.length - 1] !== "function") return;
    const ack = args.pop();
    ack(...args);
  });

  socket.on("broadcast", (payload) => {
    io.to(ROOM).emit("msg", payload);
  });

  socket.on("burst", (req, ack) => {
    const n = req && Number.isInteger(req.n) && req.n > 0 ? req.n : 0;
    const payload = req ? req.payload : undefined;
    for (let i = 0; i < n; i++) {
      io.to(ROOM).emit("msg", payload);
    }
    // Optional: ack with the number of emits once all are queued.
    if (typeof ack === "function") ack(n);
  });

  socket.on("count", (ack) => {
    if (typeof ack === "function") ack(root.sockets.size);
  });

  socket.on("to", (req) => {
    if (!req || typeof req.event !== "string") return;
    io.to(req.room).emit(req.event, req.payload);
  });
});

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => process.exit(0));
}

// Connects the Redis clients and installs the adapter (before any client can
// connect: the server is not listening yet).
async function useRedis() {
  const { createClient } = require("redis");
  const { createAdapter, createShardedAdapter } = require("@socket.io/redis-adapter");
  const pubClient = createClient({ url: opts.redis });
  const subClient = pubClient.duplicate();
  let connected = false;
  for (const [name, client] of [["pub", pubClient], ["sub", subClient]]) {
    // node-redis reconnects by itself, even before its first connection:
    // fail at once if Redis cannot be reached at startup; afterwards, log (an
    // error without a listener would crash the process).
    client.on("error", (err) => {
      if (!connected) fail(`cannot connect to redis at ${opts.redis}: ${err.message}`, 1);
      process.stderr.write(`bench node server: redis ${name} client: ${err.message}\n`);
    });
  }
  await Promise.all([pubClient.connect(), subClient.connect()]);
  connected = true;
  const key = opts.redisKey === undefined ? {} : { key: opts.redisKey };
  if (opts.redisMode === "sharded") {
    io.adapter(createShardedAdapter(pubClient, subClient, { ...key, subscriptionMode: "dynamic" }));
  } else {
    io.adapter(createAdapter(pubClient, subClient, key));
  }
}

async function main() {
  if (opts.redis !== undefined) {
    try {
      await useRedis();
    } catch (err) {
      fail(`cannot connect to redis at ${opts.redis}: ${err.message}`, 1);
    }
  }
  httpServer.listen(opts.port, "127.0.0.1", () => {
    const { port } = httpServer.address();
    process.stdout.write(`bench_server listening on http://127.0.0.1:${port}\n`);
  });
}

main();
