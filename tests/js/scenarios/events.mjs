// Events and acknowledgements: JSON of every kind, binary attachments, acks both ways,
// timeouts, and broadcasts with acknowledgements.

import { connected, describe, eq, event, once, ok } from "../lib.mjs";

export default {
  // params: { args: any[], transports?: string[] }: sends `args` as the arguments of one
  // event; the server acks them back and re-emits them.
  async "json-echo"({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnection: false });
    const typed = once(socket, "typed");
    await connected(socket);
    const back = once(socket, "echo-back");
    const acked = await new Promise((resolve) => socket.emit("echo", ...params.args, (...a) => resolve(a)));
    const emitted = await back;
    eq(acked, params.args, "acked arguments");
    eq(emitted, params.args, "re-emitted arguments");
    const unicodeEvent = await socket.emitWithAck("événement-🚀", 41);
    const [typedMsg] = await typed;
    socket.disconnect();
    return { acked, emitted, unicodeEvent, typed: typedMsg };
  },

  // Binary attachments both ways, alone and nested in JSON.
  async binary({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnection: false });
    const fromServer = once(socket, "bin-from-server");
    const binDone = once(socket, "bin-done");
    socket.on("bin-question", (data, cb) => {
      ok(Buffer.isBuffer(data.blob), "a Buffer inside an object");
      cb(Buffer.concat([data.blob, Buffer.from([0xff])]), { tag: data.tag });
    });
    await connected(socket);

    const upload = {
      file: Buffer.from([0, 1, 2, 255]),
      meta: { name: "ñame.bin", parts: [Buffer.from("abc"), Buffer.alloc(0), { inner: Buffer.from([9, 9]) }] },
    };
    const sent = [upload, Buffer.from("second-arg"), "plain json", [Buffer.from([7]), 8]];
    const acked = await new Promise((resolve) => socket.emit("bin", ...sent, (...a) => resolve(a)));
    eq(describe(acked), describe(sent), "binary arguments acked back unchanged");
    ok(Buffer.isBuffer(acked[0].file) && Buffer.isBuffer(acked[0].meta.parts[2].inner), "still Buffers");

    const binAck = await socket.emitWithAck("bin-ack", Buffer.from("ping"));
    ok(Buffer.isBuffer(binAck), "a binary ack is a Buffer");
    const [serverMsg] = await fromServer;
    const [done] = await binDone;
    socket.disconnect();
    return { binAck: describe(binAck), fromServer: describe(serverMsg), done };
  },

  // Acks in both directions, with timeouts on both sides.
  async acks({ url, params, io }) {
    const socket = io(url, { transports: params.transports, reconnection: false });
    const ignored = [];
    socket.on("question", (d, cb) => cb(d.n * 2));
    socket.on("multi-question", (a, b, cb) => cb("x", a + 1, { y: b }));
    socket.on("ignored", (d) => ignored.push(d)); // never answers
    socket.on("late", (d, cb) =>
      setTimeout(() => {
        cb(`too late: ${d}`);
        socket.emit("late-answered");
      }, 400),
    );
    socket.on("final", (d, cb) => cb({ final: true, got: d }));
    const serverDone = once(socket, "server-done", 15000);
    await connected(socket);

    const sum = await socket.emitWithAck("sum", 1, 2, 3.5);
    const multi = await new Promise((resolve) => socket.emit("multi", (...a) => resolve(a)));
    let timeout = null;
    try {
      await socket.timeout(300).emitWithAck("no-answer", 1);
    } catch (e) {
      timeout = e.message;
    }
    const [serverSummary] = await serverDone;
    socket.disconnect();
    return { sum, multi, clientSideTimeout: timeout, ignored, serverSummary };
  },

  // params: { n, silent: number[] }: n clients; on "vote" each answers, on "vote2" the
  // ones in `silent` do not. Finishes on "done".
  async "broadcast-ack"({ url, params, io }) {
    const sockets = [];
    const received = [];
    for (let i = 0; i < params.n; i++) {
      const socket = io(url, { forceNew: true, transports: ["websocket"], reconnection: false, auth: { i } });
      received.push({ vote: 0, vote2: 0 });
      socket.on("vote", (d, cb) => {
        received[i].vote++;
        cb({ i, choice: d.options[i % d.options.length] });
      });
      socket.on("vote2", (d, cb) => {
        received[i].vote2++;
        if (!params.silent.includes(i)) cb({ i, round: d.round });
      });
      sockets.push(socket);
    }
    await Promise.all(sockets.map((s) => connected(s)));
    const done = Promise.all(sockets.map((s) => once(s, "done", 15000)));
    event("ready", { ids: sockets.map((s) => s.id) });
    await done;
    sockets.forEach((s) => s.disconnect());
    return { received };
  },
};
