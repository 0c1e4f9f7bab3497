// Rooms and broadcasts across many clients: each client counts every tagged message it
// receives, so the Rust side can check exact counts (no loss, no duplicates).

import { connected, event, once } from "../lib.mjs";

export default {
  // params: { n, pollingEvery, leaveEvery }: client i uses polling if
  // i % pollingEvery == pollingEvery - 1, WebSocket otherwise; it joins "dyn-<i % 5>" and
  // "temp" through events, and leaves "temp" if i % leaveEvery == 0.
  async rooms({ url, params, io }) {
    const sockets = [];
    const counts = [];
    for (let i = 0; i < params.n; i++) {
      const polling = i % params.pollingEvery === params.pollingEvery - 1;
      const socket = io(url, {
        forceNew: true,
        transports: [polling ? "polling" : "websocket"],
        reconnection: false,
        auth: { i },
      });
      const mine = {};
      counts.push(mine);
      socket.on("m", (tag) => {
        mine[tag] = (mine[tag] ?? 0) + 1;
      });
      socket.on("sync", (_data, cb) => cb(i));
      // asked by the server: emit an event whose handler broadcasts to the others
      socket.on("please-shout", () => socket.emit("shout", `from ${i}`));
      sockets.push(socket);
    }
    await Promise.all(sockets.map((s) => connected(s)));
    await Promise.all(
      sockets.map(async (s, i) => {
        await s.emitWithAck("join", `dyn-${i % 5}`);
        await s.emitWithAck("join", "temp");
        if (i % params.leaveEvery === 0) await s.emitWithAck("leave", "temp");
      }),
    );
    const done = Promise.all(sockets.map((s) => once(s, "done", 20000)));
    event("ready", { ids: sockets.map((s) => s.id) });
    await done;
    sockets.forEach((s) => s.disconnect());
    return { counts };
  },
};
