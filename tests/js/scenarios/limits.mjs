// Limits: an oversized message cuts its sender only.

import { connected, event, eq, once } from "../lib.mjs";

export default {
  // params: { offenders: string[] (their transports), others: string[], size, rounds }:
  // every client connects; each offender sends one message of `size` characters and is
  // cut; then every other client exchanges `rounds` acked echoes and receives a broadcast.
  async oversized({ url, params, io }) {
    const connect = (transport, role, i) =>
      io(url, { forceNew: true, transports: [transport], reconnection: false, auth: { role, i } });
    const offenders = params.offenders.map((t, i) => connect(t, "offender", i));
    const others = params.others.map((t, i) => connect(t, "other", i));
    await Promise.all([...offenders, ...others].map((s) => connected(s)));
    const otherIds = others.map((s) => s.id);

    const big = "x".repeat(params.size);
    const offenderReasons = await Promise.all(
      offenders.map((s) => {
        const gone = once(s, "disconnect");
        s.emit("big", big);
        return gone.then(([reason]) => reason);
      }),
    );
    // the offenders are gone; the others carry on
    event("offenders-gone", { reasons: offenderReasons });
    const echoes = await Promise.all(
      others.map(async (s, i) => {
        for (let round = 0; round < params.rounds; round++) {
          eq(await s.emitWithAck("echo", { i, round }), { i, round });
        }
        return params.rounds;
      }),
    );
    const news = Promise.all(others.map((s) => once(s, "news").then(([n]) => n)));
    event("echoed");
    const received = await news;
    const stillConnected = others.map((s) => s.connected);
    others.forEach((s) => s.disconnect());
    return { offenderReasons, echoes, received, stillConnected, otherIds };
  },
};
