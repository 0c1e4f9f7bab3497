// @socket.io/redis-emitter 5.1 (classic adapter only), driven over stdin/stdout (see README.md).
//
//   node emitter.mjs --redis redis://127.0.0.1:6379 [--key socket.io]
//   node emitter.mjs --cluster redis://127.0.0.1:7000,redis://127.0.0.1:7001 [--key socket.io]
//
// Every command is answered once Redis has acknowledged its PUBLISH commands; the result
// lists them: `{"published": [{"channel": ..., "receivers": N}]}` (N = the subscribers
// Redis delivered to, counted on the node that received the PUBLISH).

import { Emitter } from "@socket.io/redis-emitter";
import { parseArgs, event, serveCommands, nspOf, argsOf, listOf, redisClients, closeRedis } from "./lib.mjs";

const args = parseArgs();
const key = args.key ?? "socket.io";
const { pub } = await redisClients(args, false);

// The emitter only calls `publish`: a wrapper records each PUBLISH so that the command's
// answer waits for Redis and reports what was published where.
let published = [];
const recorder = {
  publish(channel, message) {
    const p = pub.publish(channel, message).then((receivers) => ({ channel, receivers }));
    published.push(p);
    return p;
  },
};
const root = new Emitter(recorder, { key });

async function flush() {
  const list = published;
  published = [];
  return { published: await Promise.all(list) };
}

/** The emitter's BroadcastOperator for the targeting fields of a command. */
function target(cmd) {
  let op = root.of(nspOf(cmd));
  const rooms = listOf(cmd.rooms);
  const except = listOf(cmd.except);
  if (rooms.length > 0) op = op.to(rooms);
  if (except.length > 0) op = op.except(except);
  if (cmd.volatile) op = op.volatile;
  if (cmd.compress !== undefined) op = op.compress(!!cmd.compress);
  return op;
}

const handlers = {
  async emit(cmd) {
    target(cmd).emit(cmd.event, ...argsOf(cmd));
    return flush();
  },
  async socketsJoin(cmd) {
    target(cmd).socketsJoin(listOf(cmd.join));
    return flush();
  },
  async socketsLeave(cmd) {
    target(cmd).socketsLeave(listOf(cmd.leave));
    return flush();
  },
  async disconnectSockets(cmd) {
    target(cmd).disconnectSockets(!!cmd.close);
    return flush();
  },
  async serverSideEmit(cmd) {
    root.of(nspOf(cmd)).serverSideEmit(cmd.event, ...argsOf(cmd));
    return flush();
  },
  async close() {
    await closeRedis(pub);
    setTimeout(() => process.exit(0), 10);
    return null;
  },
};

serveCommands(handlers, () => closeRedis(pub));
event("ready", { key });
