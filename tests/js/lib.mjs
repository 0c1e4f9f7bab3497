// Small helpers shared by the scenarios.

import assert from "node:assert/strict";

export const eq = assert.deepStrictEqual;
export const ok = assert.ok;

/** Prints one JSON line on stdout. */
export function out(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

/** Tells the Rust test that something happened: `{"event": name, ...data}`. */
export function event(name, data = {}) {
  out({ event: name, ...data });
}

/** Fails the scenario: the reason on stderr, exit code 1. */
export function fail(reason) {
  process.stderr.write(`scenario failed: ${reason}\n`);
  process.exit(1);
}

/** Resolves with the arguments of the next `ev` on `emitter`; rejects after `ms`. */
export function once(emitter, ev, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off(ev, handler);
      reject(new Error(`no ${JSON.stringify(ev)} within ${ms} ms`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(ev, handler);
  });
}

/** Resolves once `socket` is connected; rejects on `connect_error` or after `ms`. */
export function connected(socket, ms = 10000) {
  if (socket.connected) return Promise.resolve(socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`not connected within ${ms} ms`)), ms);
    const onConnect = () => done(null);
    const onError = (err) => done(new Error(`connect_error: ${err.message} ${JSON.stringify(err.data)}`));
    function done(err) {
      clearTimeout(timer);
      socket.off("connect", onConnect);
      socket.off("connect_error", onError);
      if (err) reject(err);
      else resolve(socket);
    }
    socket.on("connect", onConnect);
    socket.on("connect_error", onError);
  });
}

/** Resolves with the error of the next `connect_error`; rejects if `socket` connects. */
export function connectError(socket, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no connect_error within ${ms} ms`)), ms);
    socket.once("connect", () => {
      clearTimeout(timer);
      reject(new Error("connected although a connect_error was expected"));
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}

/** A promise with its resolve and reject functions. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** A JSON-printable view of a value: Buffers become `{"$bin": "<hex>"}`. */
export function describe(value) {
  if (Buffer.isBuffer(value)) return { $bin: value.toString("hex") };
  if (value instanceof ArrayBuffer) return { $bin: Buffer.from(value).toString("hex") };
  if (ArrayBuffer.isView(value)) return { $bin: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("hex") };
  if (Array.isArray(value)) return value.map(describe);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, describe(v)]));
  }
  return value;
}
