// Transports: polling only, WebSocket only, and the default polling → WebSocket upgrade.

import { NodeWebSocket, NodeXHR } from "engine.io-client";
import { connected, deferred, eq, once } from "../lib.mjs";

/**
 * The default transports (polling, then WebSocket), with the WebSocket probe held until
 * `gate` resolves: the scenario exchanges messages over polling first, whatever the
 * timing of the upgrade would have been.
 */
function gatedTransports(gate) {
  class GatedWebSocket extends NodeWebSocket {
    doOpen() {
      gate.then(() => super.doOpen());
    }
  }
  return [NodeXHR, GatedWebSocket];
}

export default {
  // params: { transports?: string[], expectUpgrade: boolean, gateUpgrade: boolean, burst: number }
  async transport({ url, params, io }) {
    const gate = deferred();
    const opts = { reconnection: false };
    if (params.transports) opts.transports = params.transports;
    if (params.gateUpgrade) opts.transports = gatedTransports(gate.promise);
    const socket = io(url, opts);
    const welcome = once(socket, "welcome");
    await connected(socket);
    const engine = socket.io.engine;
    const atConnect = engine.transport.name;

    const before = await socket.emitWithAck("echo", { phase: "before", clientTransport: engine.transport.name });
    const [welcomeMsg] = await welcome;
    eq(welcomeMsg.id, socket.id, "the welcome names this socket");

    // several packets in flight at once (one polling POST may carry them all)
    const burst = await Promise.all(
      Array.from({ length: params.burst ?? 0 }, (_, i) => socket.emitWithAck("echo", { phase: "burst", i })),
    );
    burst.forEach((answer, i) => eq(answer.got, { phase: "burst", i }));

    let upgraded = false;
    if (params.expectUpgrade) {
      if (engine.transport.name !== "websocket") {
        const upgrade = once(engine, "upgrade");
        gate.resolve();
        await upgrade;
      }
      upgraded = true;
    }
    const after = await socket.emitWithAck("echo", { phase: "after", clientTransport: engine.transport.name });
    const pushed = once(socket, "pushed");
    socket.emit("push-me", { n: 42 });
    const [pushedMsg] = await pushed;
    const result = {
      id: socket.id,
      atConnect,
      final: engine.transport.name,
      upgraded,
      before,
      after,
      burst: burst.length,
      welcome: welcomeMsg,
      pushed: pushedMsg,
    };
    socket.disconnect();
    return result;
  },
};
