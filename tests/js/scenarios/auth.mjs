// Handshake auth, query, and namespace middlewares (accepting, refusing, async).

import { connectError, connected, eq, once } from "../lib.mjs";

export default {
  // params: { auth, query }: connects, returns what the server echoed.
  async auth({ url, params, io }) {
    const socket = io(url, { auth: params.auth, query: params.query, reconnection: false });
    const hello = once(socket, "hello");
    await connected(socket);
    const [helloMsg] = await hello;
    const whoami = await socket.emitWithAck("whoami");
    const id = socket.id; // cleared on disconnect
    socket.disconnect();
    return { id, hello: helloMsg, whoami };
  },

  // params: { badAuth, goodAuth }: a refused connection, then an accepted one.
  async "auth-refused"({ url, params, io }) {
    const refused = io(url, { auth: params.badAuth, forceNew: true, reconnection: false });
    const err = await connectError(refused);
    const afterRefusal = { connected: refused.connected, active: refused.active };
    refused.close();

    const accepted = io(url, { auth: params.goodAuth, forceNew: true, reconnection: false });
    await connected(accepted);
    const whoami = await accepted.emitWithAck("whoami");
    const id = accepted.id;
    accepted.disconnect();
    return {
      error: { message: err.message, data: err.data, isError: err instanceof Error },
      afterRefusal,
      accepted: { id, whoami },
    };
  },

  // Two namespaces on one connection, each behind an async middleware: one accepts after
  // its wait, the other refuses after its wait.
  async "slow-middleware"({ url, Manager }) {
    const manager = new Manager(url, { reconnection: false, transports: ["websocket"] });
    const slow = manager.socket("/slow");
    const refused = manager.socket("/slow-refuse");
    // emitted before the namespace is connected: buffered by the client until it is
    const early = slow.emitWithAck("early", "sent before connect");
    const [err] = await Promise.all([connectError(refused), connected(slow)]);
    eq(await early, "handled: sent before connect");
    const now = await slow.emitWithAck("early", "sent after connect");
    slow.disconnect();
    refused.close();
    return { refused: { message: err.message, data: err.data ?? null }, early: await early, now };
  },
};
