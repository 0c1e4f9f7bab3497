// Namespaces: custom, unknown, dynamic, and several multiplexed on one connection.

import { connectError, connected, eq, event, once } from "../lib.mjs";

/** Counts every "m" message by tag. */
function counter(socket) {
  const counts = {};
  socket.on("m", (tag) => {
    counts[tag] = (counts[tag] ?? 0) + 1;
  });
  return counts;
}

export default {
  // A custom namespace next to the main one, on one connection: messages stay in theirs.
  async "custom-ns"({ url, Manager }) {
    const manager = new Manager(url, { reconnection: false });
    const chat = manager.socket("/chat");
    const root = manager.socket("/");
    const counts = { chat: counter(chat), root: counter(root) };
    const welcome = once(chat, "welcome");
    await Promise.all([connected(chat), connected(root)]);
    const [welcomeMsg] = await welcome;
    const echo = await chat.emitWithAck("echo", { in: "chat" });
    const done = Promise.all([once(chat, "done"), once(root, "done")]);
    event("ready");
    await done;
    const result = { welcome: welcomeMsg, echo, counts, engineId: manager.engine.id };
    chat.disconnect();
    root.disconnect();
    return result;
  },

  // params: { bad: string }: an unknown namespace is refused; the connection still serves
  // the main namespace.
  async "unknown-ns"({ url, params, Manager }) {
    const manager = new Manager(url, { reconnection: false });
    const bad = manager.socket(params.bad);
    const root = manager.socket("/");
    const [err] = await Promise.all([connectError(bad), connected(root)]);
    const echo = await root.emitWithAck("echo", "still here");
    bad.close();
    root.disconnect();
    return { message: err.message, data: err.data ?? null, active: bad.active, echo };
  },

  // params: { good: string[], bad: string[] }: one client per namespace name.
  async "dynamic-ns"({ url, params, io }) {
    const clients = params.good.map((nsp) => {
      const socket = io(url + nsp, { forceNew: true, reconnection: false });
      return { nsp, socket, counts: counter(socket), welcome: once(socket, "welcome") };
    });
    await Promise.all(clients.map((c) => connected(c.socket)));
    const welcomes = await Promise.all(clients.map((c) => c.welcome.then(([w]) => w)));
    const refused = await Promise.all(
      params.bad.map(async (nsp) => {
        const socket = io(url + nsp, { forceNew: true, reconnection: false });
        const err = await connectError(socket);
        socket.close();
        return { nsp, message: err.message };
      }),
    );
    const done = Promise.all(clients.map((c) => once(c.socket, "done")));
    event("ready", { ids: clients.map((c) => c.socket.id) });
    await done;
    clients.forEach((c) => c.socket.disconnect());
    return { welcomes, counts: clients.map((c) => c.counts), refused };
  },

  // Three namespaces on one connection; one is disconnected by the server, one by the
  // client, the others keep working.
  async multiplex({ url, Manager }) {
    const manager = new Manager(url, { reconnection: false, transports: ["websocket"] });
    const root = manager.socket("/");
    const a = manager.socket("/a");
    const b = manager.socket("/b");
    await Promise.all([connected(root), connected(a), connected(b)]);
    const engineId = manager.engine.id;
    const ids = { "/": root.id, "/a": a.id, "/b": b.id };
    const who = {
      "/": await root.emitWithAck("whoami"),
      "/a": await a.emitWithAck("whoami"),
      "/b": await b.emitWithAck("whoami"),
    };
    // the server disconnects /a only
    const aGone = once(a, "disconnect");
    a.emit("kick-me");
    const [aReason] = await aGone;
    const bStill = await b.emitWithAck("whoami");
    // the client leaves /b only
    b.disconnect();
    const rootStill = await root.emitWithAck("whoami");
    eq(manager.engine.id, engineId, "still the same connection");
    event("root-only", { ids });
    const [bye] = await once(root, "bye");
    root.disconnect();
    return { engineId, ids, who, aReason, aActive: a.active, bStill, rootStill, bye };
  },
};
