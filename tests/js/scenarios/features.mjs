// Scenarios of crates/shoal/tests/features_*.rs: the official client against a Shoal
// server mounted in axum, and large messages over a permessage-deflate WebSocket.

import { connected, once } from "../lib.mjs";

export default {
  // params: { transports?: string[], waitUpgrade?: boolean, payload: any }
  // Connects, takes the "welcome" the server emits on connect, optionally waits for the
  // upgrade to WebSocket, then emits "hello" with an acknowledgement; the server answers
  // with a "hello-back" event and the ack.
  async "features-hello"({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnection: false, forceNew: true });
    const welcome = once(socket, "welcome");
    await connected(socket);
    const [welcomeMsg] = await welcome;
    const engine = socket.io.engine;
    if (params.waitUpgrade && engine.transport.name !== "websocket") {
      await once(engine, "upgrade");
    }
    const back = once(socket, "hello-back");
    const ack = await socket.timeout(5000).emitWithAck("hello", params.payload);
    const [backMsg] = await back;
    const result = { id: socket.id, welcome: welcomeMsg, ack, back: backMsg, transport: engine.transport.name };
    socket.disconnect();
    return result;
  },

  // params: { up: string, down: string }
  // Over WebSocket only: emits `up` as "big" with an acknowledgement, receives "big-back"
  // (the server sends `down`). Reports the negotiated extensions and how many bytes
  // crossed the TCP connection each way while doing so.
  async "features-deflate"({ url, params, io }) {
    const socket = io(url, { transports: ["websocket"], reconnection: false, forceNew: true });
    await connected(socket);
    const ws = socket.io.engine.transport.ws;
    const tcp = ws._socket;
    const written0 = tcp.bytesWritten;
    const read0 = tcp.bytesRead;
    const back = once(socket, "big-back");
    const ack = await socket.timeout(10000).emitWithAck("big", params.up);
    const [down] = await back;
    const result = {
      extensions: ws.extensions,
      ack,
      downEqual: down === params.down,
      downLength: typeof down === "string" ? down.length : null,
      bytesWritten: tcp.bytesWritten - written0,
      bytesRead: tcp.bytesRead - read0,
    };
    socket.disconnect();
    return result;
  },
};
