// Many clients at once, bursts, and clients next to a slow consumer.

import { connected, eq, event, once } from "../lib.mjs";

/** `n` clients; client i uses polling when i % pollingEvery == pollingEvery - 1. */
function crowd(io, url, n, pollingEvery) {
  return Array.from({ length: n }, (_, i) => {
    const polling = pollingEvery > 0 && i % pollingEvery === pollingEvery - 1;
    return io(url, {
      forceNew: true,
      transports: [polling ? "polling" : "websocket"],
      reconnection: false,
      auth: { i },
    });
  });
}

/** Waits until every socket is connected (they all start connecting when created). */
async function allConnected(sockets) {
  await Promise.all(sockets.map((s) => connected(s, 30000)));
}

export default {
  // params: { n, pollingEvery }: every client echoes with an ack, then answers a
  // broadcast with an ack; finishes on "done".
  async "many-clients"({ url, params, io }) {
    const sockets = crowd(io, url, params.n, params.pollingEvery);
    const news = sockets.map(() => 0);
    sockets.forEach((s, i) =>
      s.on("news", (data, cb) => {
        news[i]++;
        cb({ i, got: data });
      }),
    );
    await allConnected(sockets);
    await Promise.all(
      sockets.map(async (s, i) => {
        const payload = { i, text: `client ${i} ` + "é".repeat(100) };
        eq(await s.emitWithAck("echo", payload), payload);
      }),
    );
    const transports = {};
    for (const s of sockets) {
      const t = s.io.engine.transport.name;
      transports[t] = (transports[t] ?? 0) + 1;
    }
    const done = Promise.all(sockets.map((s) => once(s, "done", 30000)));
    event("echoed", { ids: sockets.map((s) => s.id) });
    await done;
    sockets.forEach((s) => s.disconnect());
    return { echoed: sockets.length, news, transports };
  },

  // params: { n, pollingEvery }: counts the "seq" messages (numbers) and checks they
  // come in order; finishes on "done".
  async burst({ url, params, io }) {
    const sockets = crowd(io, url, params.n, params.pollingEvery);
    const stats = sockets.map(() => ({ received: 0, next: 0, outOfOrder: 0 }));
    sockets.forEach((s, i) =>
      s.on("seq", (k) => {
        const st = stats[i];
        if (k !== st.next) st.outOfOrder++;
        st.next = k + 1;
        st.received++;
      }),
    );
    await allConnected(sockets);
    const done = Promise.all(sockets.map((s) => once(s, "done", 60000)));
    event("ready");
    await done;
    sockets.forEach((s) => s.disconnect());
    return stats.map(({ received, outOfOrder }) => ({ received, outOfOrder }));
  },

  // params: { transports: string[] }: clients that read everything the server sends:
  // "m" (sequence numbers) must come all and in order, "v" (volatile) in order; "sync"
  // is answered with the counts so far. Finishes on "done".
  async steady({ url, params, io }) {
    const sockets = params.transports.map((t, i) =>
      io(url, { forceNew: true, transports: [t], reconnection: false, auth: { i, steady: true } }),
    );
    const stats = sockets.map(() => ({ m: 0, mNext: 0, mOutOfOrder: 0, v: 0, vLast: -1, vOutOfOrder: 0 }));
    const disconnects = sockets.map(() => null);
    sockets.forEach((s, i) => {
      const st = stats[i];
      s.on("m", (k) => {
        if (k.n !== st.mNext) st.mOutOfOrder++;
        st.mNext = k.n + 1;
        st.m++;
      });
      s.on("v", (k) => {
        if (k.n <= st.vLast) st.vOutOfOrder++;
        st.vLast = k.n;
        st.v++;
      });
      s.on("sync", (_d, cb) => cb({ m: st.m, v: st.v }));
      s.on("disconnect", (reason) => {
        disconnects[i] ??= reason;
      });
    });
    await allConnected(sockets);
    const done = Promise.all(sockets.map((s) => once(s, "done", 60000)));
    event("ready");
    await done;
    const result = {
      stats: stats.map(({ m, mOutOfOrder, v, vOutOfOrder }) => ({ m, mOutOfOrder, v, vOutOfOrder })),
      disconnects: [...disconnects], // before the final disconnect() of each
      connectedAtEnd: sockets.map((s) => s.connected),
    };
    sockets.forEach((s) => s.disconnect());
    return result;
  },
};
