// A tiny raw MQTT client for end-to-end tests of the broker's gate: writes arbitrary bytes to a real
// TCP socket on 127.0.0.1 and reads the replies with mqtt-packet's parser for the protocol version
// the test speaks. Every wait is bounded by a timeout and resolved by socket events, never by
// sleeping. Also: byte builders for hand-made packets (the codec cannot produce invalid UTF-8 or
// bad headers), so a test states exactly the bytes it sends.
import net from "node:net";
import mqtt from "mqtt-packet";
import type { IConnackPacket, IConnectPacket, IPublishPacket, Packet, PacketCmd } from "mqtt-packet";
import { vbi as vbiBytes } from "./bytes.js";

export type Level = 3 | 4 | 5;
/** Bytes for a field: a Buffer, a byte array, or a JS string (encoded as UTF-8). */
export type Bytes = Buffer | Uint8Array | readonly number[] | string;
export type PacketOf<C extends PacketCmd> = Extract<Packet, { cmd: C }>;

const DEFAULT_TIMEOUT_MS = 3_000;

/** `"30 03 00"` → bytes (whitespace ignored). */
export function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ""), "hex");
}

export function bytes(b: Bytes): Buffer {
  if (typeof b === "string") return Buffer.from(b, "utf8");
  return Buffer.isBuffer(b) ? b : Buffer.from(b as Uint8Array);
}

/** MQTT Variable Byte Integer (MQTT 5 §1.5.5), minimal encoding. */
export function vbi(n: number): Buffer {
  return Buffer.from(vbiBytes(n));
}

export function u16(n: number): Buffer {
  return Buffer.from([(n >> 8) & 0xff, n & 0xff]);
}

/** A length-prefixed string or binary field (§1.5.4 / §1.5.6). */
export function str(b: Bytes): Buffer {
  const raw = bytes(b);
  return Buffer.concat([u16(raw.length), raw]);
}

/** A whole packet: first byte, remaining length, body. */
export function frame(b0: number, ...body: Bytes[]): Buffer {
  const rest = Buffer.concat(body.map(bytes));
  return Buffer.concat([Buffer.from([b0]), vbi(rest.length), rest]);
}

/** v5 property builders (MQTT 5 §2.2.2.2); `props(...)` prefixes the block with its length. */
export const prop = {
  byte: (id: number, v: number) => Buffer.from([id, v]),
  u16: (id: number, v: number) => Buffer.concat([Buffer.from([id]), u16(v)]),
  u32: (id: number, v: number) => {
    const b = Buffer.alloc(5);
    b[0] = id;
    b.writeUInt32BE(v, 1);
    return b;
  },
  vbi: (id: number, v: number) => Buffer.concat([Buffer.from([id]), vbi(v)]),
  string: (id: number, v: Bytes) => Buffer.concat([Buffer.from([id]), str(v)]),
  pair: (k: Bytes, v: Bytes) => Buffer.concat([Buffer.from([38]), str(k), str(v)]),
};
export function props(...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([vbi(body.length), body]);
}

export interface ConnectFields {
  v?: Level;
  clientId?: Bytes;
  clean?: boolean;
  keepalive?: number;
  /** Raw v5 CONNECT properties (without the length prefix). */
  properties?: Buffer[];
  will?: { topic: Bytes; payload?: Bytes; qos?: number; retain?: boolean; properties?: Buffer[] };
  username?: Bytes;
  password?: Bytes;
  /** Overrides for hostile CONNECTs. */
  protocolName?: string;
  level?: number;
  orFlags?: number;
}

/** A CONNECT built byte by byte (MQTT 3.1.1 §3.1, 5 §3.1), so any field may hold invalid bytes. */
export function connectFrame(o: ConnectFields = {}): Buffer {
  const v = o.v ?? 4;
  let flags = o.clean === false ? 0 : 0x02;
  if (o.will) flags |= 0x04 | ((o.will.qos ?? 0) << 3) | (o.will.retain ? 0x20 : 0);
  if (o.username !== undefined) flags |= 0x80;
  if (o.password !== undefined) flags |= 0x40;
  flags |= o.orFlags ?? 0;
  const parts: Buffer[] = [
    str(o.protocolName ?? (v === 3 ? "MQIsdp" : "MQTT")),
    Buffer.from([o.level ?? v, flags]),
    u16(o.keepalive ?? 60),
  ];
  if (v === 5) parts.push(props(...(o.properties ?? [])));
  parts.push(str(o.clientId ?? ""));
  if (o.will) {
    if (v === 5) parts.push(props(...(o.will.properties ?? [])));
    parts.push(str(o.will.topic), str(o.will.payload ?? ""));
  }
  if (o.username !== undefined) parts.push(str(o.username));
  if (o.password !== undefined) parts.push(str(o.password));
  return frame(0x10, ...parts);
}

export interface PublishFields {
  v?: Level;
  topic: Bytes;
  qos?: number;
  id?: number;
  dup?: boolean;
  retain?: boolean;
  properties?: Buffer[];
  payload?: Bytes;
}

export function publishFrame(o: PublishFields): Buffer {
  const qos = o.qos ?? 0;
  const b0 = 0x30 | (o.dup ? 0x08 : 0) | (qos << 1) | (o.retain ? 1 : 0);
  const parts: Buffer[] = [str(o.topic)];
  if (qos > 0) parts.push(u16(o.id ?? 1));
  if ((o.v ?? 4) === 5) parts.push(props(...(o.properties ?? [])));
  parts.push(bytes(o.payload ?? ""));
  return frame(b0, ...parts);
}

/** SUBSCRIBE with `[filter, options byte]` pairs. */
export function subscribeFrame(o: { v?: Level; id?: number; filters: Array<[Bytes, number]>; properties?: Buffer[] }): Buffer {
  const parts: Buffer[] = [u16(o.id ?? 1)];
  if ((o.v ?? 4) === 5) parts.push(props(...(o.properties ?? [])));
  for (const [f, opts] of o.filters) parts.push(str(f), Buffer.from([opts]));
  return frame(0x82, ...parts);
}

export function unsubscribeFrame(o: { v?: Level; id?: number; filters: Bytes[] }): Buffer {
  const parts: Buffer[] = [u16(o.id ?? 1)];
  if ((o.v ?? 4) === 5) parts.push(props());
  for (const f of o.filters) parts.push(str(f));
  return frame(0xa2, ...parts);
}

interface Waiter {
  match: (p: Packet) => boolean;
  resolve: (p: Packet) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

export interface RawClient {
  readonly socket: net.Socket;
  readonly version: Level;
  /** Every packet received, in arrival order (taken by an expect* or not). */
  readonly received: Packet[];
  readonly closed: boolean;
  /** Writes bytes as they are (ignored once the socket is gone). */
  write(b: Bytes): void;
  /** Writes one byte per write() call, each after the previous one was handed to the kernel. */
  writeBytewise(b: Bytes): Promise<void>;
  /** Encodes a packet with mqtt-packet for this client's version and writes it. */
  send(p: Packet): void;
  /** A fresh packet identifier (1, 2, ...). */
  nextId(): number;
  /** The oldest not yet taken packet of that type (waits for it). Other packets stay queued. */
  expectPacket<C extends PacketCmd>(cmd: C, timeoutMs?: number): Promise<PacketOf<C>>;
  /** The oldest `n` not yet taken packets of that type, once that many have arrived. */
  expectMany<C extends PacketCmd>(cmd: C, n: number, timeoutMs?: number): Promise<Array<PacketOf<C>>>;
  /** The oldest not yet taken packet of any type. */
  next(timeoutMs?: number): Promise<Packet>;
  /** Waits for the socket to close; resolves with the packets not taken before it closed. */
  expectClose(timeoutMs?: number): Promise<Packet[]>;
  /** Packets received and not taken yet (no waiting). */
  untaken(): Packet[];
  /** Destroys the socket and waits for it to close. */
  destroy(): Promise<void>;
}

/** Opens a TCP connection to the broker; resolves once connected. */
export function rawClient(port: number, o: { version?: Level; host?: string } = {}): Promise<RawClient> {
  const version = o.version ?? 4;
  const socket = net.connect({ host: o.host ?? "127.0.0.1", port, noDelay: true });
  // Server packets have the same layout in 3.1 and 3.1.1.
  const parser = mqtt.parser({ protocolVersion: version === 5 ? 5 : 4 });
  const received: Packet[] = [];
  const queue: Packet[] = [];
  const waiters: Waiter[] = [];
  const closeWaiters: Array<() => void> = [];
  // expectMany: one waiter at a time is enough for tests; counts queued packets of its type.
  let many: { cmd: PacketCmd; n: number; have: number; done: () => void; fail: (e: Error) => void } | undefined;
  let closed = false;
  let failure: Error | undefined;
  let ids = 0;

  const describe = () => `received so far: ${JSON.stringify(received.map(summary))}`;
  const failAll = (e: Error) => {
    many?.fail(e);
    for (const w of waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(e);
    }
  };
  parser.on("packet", (p: Packet) => {
    received.push(p);
    const i = waiters.findIndex((w) => w.match(p));
    if (i < 0) {
      queue.push(p);
      if (many && p.cmd === many.cmd && ++many.have >= many.n) many.done();
      return;
    }
    const [w] = waiters.splice(i, 1);
    clearTimeout(w!.timer);
    w!.resolve(p);
  });
  parser.on("error", (e: Error) => {
    failure = new Error(`client parser: ${e.message}`);
    failAll(failure);
  });
  socket.on("data", (chunk: Buffer) => parser.parse(chunk));
  socket.on("error", () => {
    // ECONNRESET/EPIPE after the broker closed: the close event follows and is what tests check.
  });
  socket.on("close", () => {
    closed = true;
    failAll(new Error(`connection closed while waiting; ${describe()}`));
    for (const r of closeWaiters.splice(0)) r();
  });

  const take = (match: (p: Packet) => boolean, what: string, timeoutMs: number): Promise<Packet> => {
    const i = queue.findIndex(match);
    if (i >= 0) return Promise.resolve(queue.splice(i, 1)[0]!);
    if (failure) return Promise.reject(failure);
    if (closed) return Promise.reject(new Error(`connection closed before ${what}; ${describe()}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const k = waiters.indexOf(w);
        if (k >= 0) waiters.splice(k, 1);
        reject(new Error(`no ${what} within ${timeoutMs} ms; ${describe()}`));
      }, timeoutMs);
      const w: Waiter = { match, resolve, reject, timer };
      waiters.push(w);
    });
  };

  const client: RawClient = {
    socket,
    version,
    received,
    get closed() {
      return closed;
    },
    write(b) {
      if (!socket.destroyed && socket.writable) socket.write(bytes(b));
    },
    async writeBytewise(b) {
      for (const byte of bytes(b)) {
        if (socket.destroyed || !socket.writable) return;
        await new Promise<void>((resolve) => socket.write(Buffer.from([byte]), () => resolve()));
      }
    },
    send(p) {
      client.write(mqtt.generate(p, { protocolVersion: version }));
    },
    nextId: () => (ids = ids === 65535 ? 1 : ids + 1),
    expectPacket<C extends PacketCmd>(cmd: C, timeoutMs = DEFAULT_TIMEOUT_MS) {
      return take((p) => p.cmd === cmd, cmd.toUpperCase(), timeoutMs) as Promise<PacketOf<C>>;
    },
    expectMany<C extends PacketCmd>(cmd: C, n: number, timeoutMs = DEFAULT_TIMEOUT_MS) {
      const takeN = () => {
        const out: Packet[] = [];
        let w = 0;
        for (const p of queue) {
          if (p.cmd === cmd && out.length < n) out.push(p);
          else queue[w++] = p;
        }
        queue.length = w;
        return out as Array<PacketOf<C>>;
      };
      const have = queue.reduce((k, p) => (p.cmd === cmd ? k + 1 : k), 0);
      if (have >= n) return Promise.resolve(takeN());
      if (closed || failure) return Promise.reject(failure ?? new Error(`closed with ${have}/${n} ${cmd}`));
      return new Promise<Array<PacketOf<C>>>((resolve, reject) => {
        const timer = setTimeout(() => {
          many = undefined;
          reject(new Error(`only ${queue.filter((p) => p.cmd === cmd).length}/${n} ${cmd} within ${timeoutMs} ms`));
        }, timeoutMs);
        many = {
          cmd,
          n,
          have,
          done: () => {
            clearTimeout(timer);
            many = undefined;
            resolve(takeN());
          },
          fail: (e) => {
            clearTimeout(timer);
            many = undefined;
            reject(e);
          },
        };
      });
    },
    next: (timeoutMs = DEFAULT_TIMEOUT_MS) => take(() => true, "packet", timeoutMs),
    expectClose(timeoutMs = DEFAULT_TIMEOUT_MS) {
      const rest = () => queue.splice(0);
      if (closed) return Promise.resolve(rest());
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still open after ${timeoutMs} ms; ${describe()}`)), timeoutMs);
        closeWaiters.push(() => {
          clearTimeout(timer);
          resolve(rest());
        });
      });
    },
    untaken: () => queue.slice(),
    destroy() {
      if (closed) return Promise.resolve();
      const done = new Promise<void>((resolve) => closeWaiters.push(resolve));
      socket.destroy();
      return done;
    },
  };

  return new Promise((resolve, reject) => {
    const onError = (e: Error) => reject(e);
    socket.once("error", onError);
    socket.once("connect", () => {
      socket.off("error", onError);
      resolve(client);
    });
  });
}

/** A short description of a packet for failure messages and order assertions. */
export function summary(p: Packet): string {
  const x = p as Packet & { reasonCode?: number; returnCode?: number; granted?: number[]; topic?: string; qos?: number; dup?: boolean };
  let s: string = p.cmd;
  if (x.messageId !== undefined) s += ` id=${x.messageId}`;
  if (p.cmd === "publish") s += ` ${JSON.stringify(x.topic)} q${x.qos}${x.dup ? " dup" : ""} ${JSON.stringify(String(p.payload))}`;
  if (x.returnCode !== undefined) s += ` rc=0x${x.returnCode.toString(16)}`;
  if (x.reasonCode !== undefined) s += ` reason=0x${x.reasonCode.toString(16)}`;
  if (x.granted) s += ` granted=${JSON.stringify(x.granted)}`;
  return s;
}

export interface ConnectOptions extends Omit<IConnectPacket, "cmd" | "clientId" | "protocolVersion" | "protocolId"> {
  clientId?: string;
}

/**
 * Opens a socket, sends a codec-built CONNECT and waits for CONNACK; throws unless it is a success.
 * The reader is attached before the CONNECT is written, so packets queued behind CONNACK are kept.
 */
export async function connectClient(
  port: number,
  version: Level,
  o: ConnectOptions = {},
): Promise<{ c: RawClient; connack: IConnackPacket }> {
  const c = await rawClient(port, { version });
  c.send({
    cmd: "connect",
    protocolId: version === 3 ? "MQIsdp" : "MQTT",
    protocolVersion: version,
    clean: true,
    keepalive: 60,
    ...o,
    clientId: o.clientId ?? "",
  });
  const connack = await c.expectPacket("connack");
  const rc = connack.reasonCode ?? connack.returnCode ?? 0;
  if (rc !== 0) throw new Error(`CONNACK refused: 0x${rc.toString(16)}`);
  return { c, connack };
}

/** SUBSCRIBE and wait for its SUBACK; returns the granted codes. */
export async function subscribe(c: RawClient, filters: Array<[string, number]> | string, qos = 1): Promise<number[]> {
  const list = typeof filters === "string" ? [[filters, qos] as [string, number]] : filters;
  const messageId = c.nextId();
  c.send({ cmd: "subscribe", messageId, subscriptions: list.map(([topic, q]) => ({ topic, qos: q as 0 | 1 | 2 })) });
  const ack = await c.expectPacket("suback");
  if (ack.messageId !== messageId) throw new Error(`SUBACK id ${ack.messageId}, expected ${messageId}`);
  return ack.granted as number[];
}

/** PUBLISH and complete its flow (PUBACK, or PUBREC/PUBREL/PUBCOMP); returns the ack's reason code. */
export async function publish(
  c: RawClient,
  topic: string,
  payload: string | Buffer,
  qos: 0 | 1 | 2 = 0,
  extra: Partial<IPublishPacket> = {},
): Promise<number> {
  const messageId = qos > 0 ? c.nextId() : undefined;
  c.send({ cmd: "publish", topic, payload, qos, retain: false, dup: false, messageId, ...extra });
  if (qos === 1) return (await c.expectPacket("puback")).reasonCode ?? 0;
  if (qos === 2) {
    const rec = await c.expectPacket("pubrec");
    if ((rec.reasonCode ?? 0) >= 0x80) return rec.reasonCode!;
    c.send({ cmd: "pubrel", messageId: messageId! });
    await c.expectPacket("pubcomp");
    return rec.reasonCode ?? 0;
  }
  return 0;
}

/**
 * Takes PUBLISH packets until one on `marker` arrives; returns those before it. Acknowledges them
 * (PUBACK, or PUBREC: the broker's PUBREL then stays queued for the test to look at or ignore).
 */
export async function publishesUntil(c: RawClient, marker: string): Promise<IPublishPacket[]> {
  const got: IPublishPacket[] = [];
  for (;;) {
    const p = await c.expectPacket("publish");
    if (p.qos === 1) c.send({ cmd: "puback", messageId: p.messageId! });
    if (p.qos === 2) c.send({ cmd: "pubrec", messageId: p.messageId! });
    if (p.topic === marker) return got;
    got.push(p);
  }
}
