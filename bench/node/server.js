"use strict";
// Node socket.io comparison server for the Shoal benchmark.
//
// Usage: node bench/node/server.js --port P [--redis URL --redis-mode classic|sharded]
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
  "usage: node server.js --port P [--redis URL] [--redis-mode classic|sharded]";

function fail(msg, code = 2) {
  process.stderr.write(`bench node server: ${msg}\n${USAGE}\n`);
  process.exit(code);
}

function parseArgs(argv) {
  const opts = { port: undefined, redis: undefined, redisMode: undefined };
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
  return opts;
}

const opts = parseArgs(process.argv.slice(2));

if (opts.redis !== undefined || opts.redisMode !== undefined) {
  // TODO(redis): plug @socket.io/redis-adapter in here. With --redis URL,
  // create the redis pub/sub clients and pass
  //   adapter: createAdapter(pubClient, subClient)          (classic)
  //   adapter: createShardedAdapter(pubClient, subClient)   (sharded)
  // in the Server options below, so rooms and broadcasts span processes.
  process.stderr.write("redis not yet supported\n");
  process.exit(2);
}

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

httpServer.listen(opts.port, "127.0.0.1", () => {
  const { port } = httpServer.address();
  process.stdout.write(`bench_server listening on http://127.0.0.1:${port}\n`);
});
