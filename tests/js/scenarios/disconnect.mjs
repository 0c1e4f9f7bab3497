// Disconnections, each with the reason the client reports.

import { connected, event, once } from "../lib.mjs";

/** Resolves with the reason of the next disconnect of `socket`. */
const nextDisconnect = (socket, ms = 10000) => once(socket, "disconnect", ms).then(([reason]) => reason);

export default {
  // params: { mode, transports }; modes:
  //   client-ns     the client leaves the namespace (socket.disconnect())
  //   server-ns     the server disconnects the socket (it asks for it with "kick")
  //   engine-close  the client closes its whole connection (socket.io.engine.close())
  //   forced        the server disconnects and closes the connection ("kick-hard")
  //   forced-multi  the same with a second namespace on the connection, and automatic
  //                 reconnection on: reports whether that namespace came back
  async disconnect({ url, params, Manager }) {
    const multi = params.mode === "forced-multi";
    const manager = new Manager(url, {
      transports: params.transports,
      reconnection: multi,
      reconnectionDelay: 20,
      reconnectionDelayMax: 20,
    });
    const socket = manager.socket("/");
    const other = multi ? manager.socket("/other") : null;
    await Promise.all([connected(socket), other && connected(other)]);
    const id = socket.id;
    const gone = nextDisconnect(socket);
    const otherGone = other && nextDisconnect(other);
    switch (params.mode) {
      case "client-ns":
        socket.disconnect();
        break;
      case "server-ns":
        socket.emit("kick");
        break;
      case "engine-close":
        socket.io.engine.close();
        break;
      case "forced":
      case "forced-multi":
        socket.emit("kick-hard");
        break;
      default:
        throw new Error(`unknown mode ${params.mode}`);
    }
    const reason = await gone;
    const result = { id, reason, active: socket.active };
    if (other) {
      result.otherReason = await otherGone;
      // a short bounded wait: does the other namespace come back on its own?
      result.reconnected = await connected(other, 500).then(
        () => true,
        () => false,
      );
    }
    socket.disconnect();
    other?.disconnect();
    return result;
  },

  // params: { transports }: connects and waits to be stopped (SIGSTOP), continued, and to
  // see the disconnect; then reconnects on its own.
  async stoppable({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    await connected(socket);
    const firstId = socket.id;
    const gone = nextDisconnect(socket, 15000);
    event("connected", { id: firstId });
    const reason = await gone;
    await connected(socket, 10000); // reconnected automatically
    const result = { firstId, reason, reconnectedId: socket.id };
    socket.disconnect();
    return result;
  },

  // params: { transports, settleMs }: connects, reports it, and runs until killed.
  // `settleMs` lets a polling client's next GET reach the server and be held there before
  // the test kills the process (no event tells when the server holds it).
  async "wait-forever"({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnection: false });
    await connected(socket);
    if (params.settleMs) await new Promise((resolve) => setTimeout(resolve, params.settleMs));
    event("connected", { id: socket.id });
    await new Promise(() => {}); // killed by the test
  },

  // The server shuts down: the client sees the last message, the disconnect, then tries
  // to reconnect (and fails: nothing listens any more).
  async shutdown({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    const messages = [];
    socket.on("last-words", (m) => messages.push(m));
    await connected(socket);
    const gone = nextDisconnect(socket);
    const attempted = once(socket.io, "reconnect_attempt");
    const failed = once(socket.io, "reconnect_error");
    event("connected", { id: socket.id });
    const reason = await gone;
    const [attempt] = await attempted;
    const [error] = await failed;
    const result = { reason, messages, active: socket.active, attempt, reconnectError: error.message };
    socket.disconnect(); // stops reconnecting
    return result;
  },
};
