// Benchmark load-generator client: raw `net` sockets, packets pre-encoded once with mqtt-packet's
// `generate`, and a streaming parser that only looks at fixed headers (plus packet ids / payload
// markers where a scenario needs them). It must never be the bottleneck, so the hot path (PUBLISH,
// PUBACK) allocates nothing per message.
import net from "node:net";
import {
  type Bitmap,
  bitmapSet,
  encodeConnect,
  encodePublish,
  encodeSubscribe,
  newBitmap,
  PAYLOAD_BYTES,
  type Proto,
  publishLayout,
  walkProps,
} from "./codec.js";

/** QoS 1 publisher with a fixed window of in-flight PUBLISHes (fan-in QoS 1). */
export interface WindowPub {
  template: Buffer; // one PUBLISH, patched in place: packet id and payload (publisher id, seq)
  pidOff: number;
  payOff: number;
  pubId: number;
  window: number;
  nextSeq: number;
  inflight: number;
  seqOfPid: Uint32Array;
  acked: number;
  nacked: number;
  ackedBits: Bitmap;
  running: boolean;
}

export interface Client {
  sock: net.Socket;
  proto: Proto;
  // parser state: a packet split across chunks is completed in `carry`
  carry: Buffer | null;
  carryLen: number;
  hdrLen: number;
  // what we learnt from the server
  connack: { code: number; receiveMax: number } | null;
  subacks: number[]; // granted QoS / reason codes of every SUBACK
  closed: boolean;
  error: string | null;
  // receive side
  received: number;
  retained: number;
  pubacks: number;
  track: Bitmap[] | null; // per-publisher bitmaps of delivered seqs (QoS 1 fan-in)
  dupes: number;
  lat: Float64Array | null; // publish→delivery latency in µs (latency scenario)
  latN: number;
  ack: Buffer | null; // PUBACKs staged during one chunk, written once per chunk
  ackLen: number;
  // publish side
  win: WindowPub | null;
  out: Buffer | null; // PUBLISHes staged during one chunk
  outLen: number;
  wake: (() => void) | null;
}

export function newClient(sock: net.Socket, proto: Proto): Client {
  return {
    sock,
    proto,
    carry: null,
    carryLen: 0,
    hdrLen: 0,
    connack: null,
    subacks: [],
    closed: false,
    error: null,
    received: 0,
    retained: 0,
    pubacks: 0,
    track: null,
    dupes: 0,
    lat: null,
    latN: 0,
    ack: null,
    ackLen: 0,
    win: null,
    out: null,
    outLen: 0,
    wake: null,
  };
}

/** Total length of the packet starting at `off`, or -1 if its fixed header is incomplete. Sets c.hdrLen. */
function packetTotal(c: Client, buf: Buffer, off: number, end: number): number {
  let len = 0;
  let mul = 1;
  for (let i = off + 1; i < end && i <= off + 4; i++) {
    const b = buf[i]!;
    len += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      c.hdrLen = i + 1 - off;
      return c.hdrLen + len;
    }
    mul *= 128;
  }
  if (end - off > 4) throw new Error("malformed remaining length from broker");
  return -1;
}

function ensureCarry(c: Client, size: number): Buffer {
  if (c.carry === null || c.carry.length < size) {
    const grown = Buffer.allocUnsafe(Math.max(size, 4096));
    if (c.carry !== null && c.carryLen > 0) c.carry.copy(grown, 0, 0, c.carryLen);
    c.carry = grown;
  }
  return c.carry;
}

/** Feeds one chunk from the socket; dispatches every complete packet; flushes staged replies. */
export function feed(c: Client, chunk: Buffer): void {
  let off = 0;
  const end = chunk.length;
  while (c.carryLen > 0 && off < end) {
    const carry = c.carry!;
    const total = packetTotal(c, carry, 0, c.carryLen);
    if (total < 0) {
      ensureCarry(c, c.carryLen + 1)[c.carryLen++] = chunk[off++]!;
      continue;
    }
    const take = Math.min(total - c.carryLen, end - off);
    chunk.copy(ensureCarry(c, total), c.carryLen, off, off + take);
    c.carryLen += take;
    off += take;
    if (c.carryLen === total) {
      c.carryLen = 0;
      dispatch(c, c.carry!, 0, total);
    }
  }
  while (off < end) {
    const total = packetTotal(c, chunk, off, end);
    if (total < 0 || off + total > end) {
      const rest = end - off;
      chunk.copy(ensureCarry(c, rest), 0, off, end);
      c.carryLen = rest;
      break;
    }
    dispatch(c, chunk, off, total);
    off += total;
  }
  flush(c);
  if (c.wake !== null) c.wake();
}

function flush(c: Client): void {
  if (c.ackLen > 0) {
    c.sock.write(Buffer.from(c.ack!.subarray(0, c.ackLen)));
    c.ackLen = 0;
  }
  if (c.outLen > 0) {
    c.sock.write(Buffer.from(c.out!.subarray(0, c.outLen)));
    c.outLen = 0;
  }
}

function dispatch(c: Client, buf: Buffer, off: number, total: number): void {
  const type = buf[off]! >> 4;
  if (type === 3) onPublish(c, buf, off, off + c.hdrLen, off + total);
  else if (type === 4) onPuback(c, buf, off + c.hdrLen, off + total);
  else onControl(c, buf, off + c.hdrLen, off + total, type);
}

function onPublish(c: Client, buf: Buffer, off: number, body: number, end: number): void {
  c.received++;
  const flags = buf[off]!;
  if (flags & 1) c.retained++;
  const qos = (flags >> 1) & 3;
  let p = body + 2 + buf.readUInt16BE(body);
  if (qos > 0) {
    const pid = buf.readUInt16BE(p);
    p += 2;
    // MQTT-3.4.2: a v5 PUBACK with reason 0 and no properties may be just the packet id
    if (c.ack === null || c.ackLen + 4 > c.ack.length) growAck(c);
    const a = c.ack!;
    a[c.ackLen] = 0x40;
    a[c.ackLen + 1] = 2;
    a[c.ackLen + 2] = pid >> 8;
    a[c.ackLen + 3] = pid & 0xff;
    c.ackLen += 4;
  }
  if (c.proto === 5) {
    // skip the property block (varint length + properties)
    let len = 0;
    let mul = 1;
    for (let b = 0x80; b & 0x80; mul *= 128) {
      b = buf[p++]!;
      len += (b & 0x7f) * mul;
    }
    p += len;
  }
  if (c.track !== null && p + 8 <= end) {
    const bm = c.track[buf.readUInt32BE(p)];
    if (bm !== undefined && !bitmapSet(bm, buf.readUInt32BE(p + 4))) c.dupes++;
  } else if (c.lat !== null && p + 8 <= end && c.latN < c.lat.length) {
    c.lat[c.latN++] = Number(process.hrtime.bigint() - buf.readBigUInt64BE(p)) / 1000;
  }
}

function growAck(c: Client): void {
  const grown = Buffer.allocUnsafe(c.ack === null ? 4096 : c.ack.length * 2);
  if (c.ack !== null) c.ack.copy(grown, 0, 0, c.ackLen);
  c.ack = grown;
}

function onPuback(c: Client, buf: Buffer, body: number, end: number): void {
  c.pubacks++;
  const w = c.win;
  if (w === null) return;
  const pid = buf.readUInt16BE(body);
  const ok = end - body < 3 || buf[body + 2]! < 0x80; // v5 reason code ≥ 0x80 = not accepted
  if (pid < 1 || pid > w.window) return;
  w.inflight--;
  if (ok) {
    w.acked++;
    bitmapSet(w.ackedBits, w.seqOfPid[pid]!);
  } else w.nacked++;
  if (w.running) stageWindowed(c, w, pid);
}

/** Patches the template with a new seq under packet id `pid` and stages it for the next flush. */
function stageWindowed(c: Client, w: WindowPub, pid: number): void {
  const t = w.template;
  t.writeUInt16BE(pid, w.pidOff);
  t.writeUInt32BE(w.nextSeq, w.payOff + 4);
  w.seqOfPid[pid] = w.nextSeq++;
  w.inflight++;
  if (c.out === null || c.outLen + t.length > c.out.length) {
    const grown = Buffer.allocUnsafe(Math.max(t.length * (w.window + 1), (c.out?.length ?? 0) * 2));
    if (c.out !== null) c.out.copy(grown, 0, 0, c.outLen);
    c.out = grown;
  }
  t.copy(c.out, c.outLen);
  c.outLen += t.length;
}

/** CONNACK, SUBACK and DISCONNECT (handshakes only); anything else is ignored. */
function onControl(c: Client, buf: Buffer, body: number, end: number, type: number): void {
  if (type === 2) {
    const code = buf[body + 1]!;
    // v5 Receive Maximum absent = 65535 (MQTT 5 §3.2.2.3.3)
    const receiveMax = c.proto === 5 && end > body + 2 ? walkProps(buf, body + 2, 65535)[0] : 65535;
    c.connack = { code, receiveMax };
  } else if (type === 9) {
    let p = body + 2;
    if (c.proto === 5) p = walkProps(buf, p, 0)[1];
    for (; p < end; p++) c.subacks.push(buf[p]!);
  } else if (type === 14) {
    c.error = `broker sent DISCONNECT (reason 0x${(end > body ? buf[body]! : 0).toString(16)})`;
  }
}

/** Starts the QoS 1 windowed publisher on a connected client (fills the window at once). */
export function startWindowed(c: Client, topic: string, pubId: number, window: number): WindowPub {
  const template = encodePublish(topic, Buffer.alloc(PAYLOAD_BYTES, 0x61), 1, false, 1, c.proto);
  const { pidOff, payOff } = publishLayout(template, c.proto);
  template.writeUInt32BE(pubId, payOff);
  const w: WindowPub = {
    template,
    pidOff,
    payOff,
    pubId,
    window,
    nextSeq: 0,
    inflight: 0,
    seqOfPid: new Uint32Array(window + 1),
    acked: 0,
    nacked: 0,
    ackedBits: newBitmap(),
    running: true,
  };
  c.win = w;
  for (let pid = 1; pid <= window; pid++) stageWindowed(c, w, pid);
  flush(c);
  return w;
}

/** Resolves when `pred()` holds (checked after every chunk and now); rejects on close or timeout. */
export function waitFor(c: Client, pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: Error | null) => {
      clearTimeout(timer);
      c.wake = null;
      if (err) reject(err);
      else resolve();
    };
    const check = () => {
      if (pred()) done(null);
      else if (c.error !== null) done(new Error(`${what}: ${c.error}`));
      else if (c.closed) done(new Error(`${what}: connection closed by broker`));
    };
    const timer = setTimeout(() => done(new Error(`${what}: timed out after ${timeoutMs} ms`)), timeoutMs);
    c.wake = check;
    check();
  });
}

/** TCP connect + CONNECT/CONNACK. Rejects on refusal, timeout or a non-zero CONNACK code. */
export async function openClient(port: number, clientId: string, proto: Proto, timeoutMs: number, persistent = false): Promise<Client> {
  const sock = net.connect({ host: "127.0.0.1", port, noDelay: true });
  const c = newClient(sock, proto);
  sock.on("data", (chunk: Buffer) => {
    try {
      feed(c, chunk);
    } catch (e) {
      c.error = (e as Error).message;
      sock.destroy();
    }
  });
  sock.on("error", (e) => {
    c.error = e.message;
    c.wake?.();
  });
  sock.on("close", () => {
    c.closed = true;
    c.wake?.();
  });
  sock.write(encodeConnect(clientId, proto, persistent));
  try {
    await waitFor(c, () => c.connack !== null, timeoutMs, `CONNECT ${clientId}`);
  } catch (e) {
    sock.destroy();
    throw e;
  }
  if (c.connack!.code !== 0) {
    sock.destroy();
    throw new Error(`CONNACK ${clientId}: code ${c.connack!.code}`);
  }
  return c;
}

/** SUBSCRIBE one filter and wait for a SUBACK granting it. */
export async function subscribe(c: Client, topic: string, qos: 0 | 1, timeoutMs: number): Promise<void> {
  const before = c.subacks.length;
  c.sock.write(encodeSubscribe(topic, qos, 1 + (before % 65535), c.proto));
  await waitFor(c, () => c.subacks.length > before, timeoutMs, `SUBSCRIBE ${topic}`);
  const granted = c.subacks[before]!;
  if (granted >= 0x80) throw new Error(`SUBSCRIBE ${topic}: refused (0x${granted.toString(16)})`);
}

/** Polite close: DISCONNECT then FIN; destroyed if the broker has not closed within 1 s. */
export function closeClient(c: Client): void {
  if (c.closed || c.sock.destroyed) return;
  c.sock.end(Buffer.from([0xe0, 0]));
  setTimeout(() => c.sock.destroy(), 1000).unref();
}
