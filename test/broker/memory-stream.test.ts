// The connection handler over in-memory streams (no socket, no listener): the broker is created but
// never started, and each client is one side of a duplexPair() whose other side goes to
// broker.accept(). Packets are encoded by hand with mqtt-packet's generate and replies decoded with
// its parser, so these tests pin down the byte-level exchange: CONNECT/CONNACK (3.1.1 and 5),
// SUBSCRIBE/SUBACK, PUBLISH at QoS 0/1/2 with every acknowledgement, PINGREQ/PINGRESP, packets
// split byte by byte or pipelined in one write, DISCONNECT and abrupt ends. Time is a fake clock;
// every wait is resolved by a stream event (the timer in `take` only bounds a failing test).
import type { Duplex } from "node:stream";
import mqtt, { type Packet, type PacketCmd } from "mqtt-packet";
import t, { type Test } from "tap";
import { createBroker, type EmbeddedBroker } from "../../hub/broker/broker.js";
import type { Connection } from "../../hub/broker/connection.js";
import { RC } from "../../hub/broker/reason-codes.js";
import { memoryLogger } from "../../hub/log.js";
import { defaultLimits } from "../support/broker.js";
import { duplexPair } from "../support/duplex-pair.js";
import { fakeClock } from "../support/fake-clock.js";
import { type PacketOf, summary } from "../support/raw-client.js";

type Level = 4 | 5;

interface MemClient {
  readonly conn: Connection;
  /** The client's end of the pair. */
  readonly side: Duplex;
  /** The broker's end: tests count its 'data' events to know how the bytes arrived. */
  readonly server: Duplex;
  /** Every packet received, in order. */
  readonly received: Packet[];
  /** Raw bytes received, in order. */
  readonly bytes: Buffer[];
  readonly closed: boolean;
  write(b: Buffer): void;
  /** One byte per write(), each after the previous one reached the broker's side. */
  writeBytewise(b: Buffer): Promise<void>;
  send(p: Packet): void;
  /** The next packet in arrival order; fails if it is not a `cmd`. */
  expect<C extends PacketCmd>(cmd: C): Promise<PacketOf<C>>;
  /** Takes packets in arrival order up to and including the first `cmd`. */
  through(cmd: PacketCmd): Promise<Packet[]>;
  /** Resolves once the stream closed; with the packets not taken before. */
  whenClosed(): Promise<Packet[]>;
}

function setup(t: Test): { broker: EmbeddedBroker; open(v: Level): MemClient; lines: string[] } {
  const log = memoryLogger("debug");
  const broker = createBroker({ limits: defaultLimits(), listeners: [], sysIntervalMs: 0, version: "test", clock: fakeClock(), log });
  const sides: Duplex[] = [];
  t.teardown(async () => {
    for (const s of sides) s.destroy();
    await broker.stop();
  });
  return { broker, lines: log.lines, open: (v) => open(broker, v, sides) };
}

function open(broker: EmbeddedBroker, v: Level, sides: Duplex[]): MemClient {
  const [side, server] = duplexPair();
  sides.push(side);
  const conn = broker.accept(server);
  if (!conn) throw new Error("accept refused the stream");
  const parser = mqtt.parser({ protocolVersion: v });
  const received: Packet[] = [];
  const bytes: Buffer[] = [];
  const queue: Packet[] = [];
  let wake: (() => void) | undefined;
  let closed = false;
  let parseError: Error | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  parser.on("packet", (p: Packet) => {
    received.push(p);
    queue.push(p);
    poke();
  });
  parser.on("error", (e: Error) => {
    parseError = e;
    poke();
  });
  side.on("data", (chunk: Buffer) => {
    bytes.push(chunk);
    parser.parse(chunk);
  });
  side.on("close", () => {
    closed = true;
    poke();
  });
  const describe = () => JSON.stringify(received.map(summary));
  // Waits for the next stream event (a packet, a parse error, the close), bounded for failing tests.
  const event = () =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nothing happened within 2 s; received ${describe()}`)), 2_000);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  const client: MemClient = {
    conn,
    side,
    server,
    received,
    bytes,
    get closed() {
      return closed;
    },
    write: (b) => void side.write(b),
    async writeBytewise(b) {
      for (const byte of b) await new Promise<void>((resolve) => side.write(Buffer.from([byte]), () => resolve()));
    },
    send: (p) => client.write(mqtt.generate(p, { protocolVersion: v })),
    async expect(cmd) {
      for (;;) {
        if (parseError) throw parseError;
        const p = queue.shift();
        if (p) {
          if (p.cmd !== cmd) throw new Error(`expected ${cmd}, got ${summary(p)}; received ${describe()}`);
          return p as PacketOf<typeof cmd>;
        }
        if (closed) throw new Error(`closed before ${cmd}; received ${describe()}`);
        await event();
      }
    },
    async through(cmd) {
      const taken: Packet[] = [];
      for (;;) {
        if (parseError) throw parseError;
        const p = queue.shift();
        if (p) {
          taken.push(p);
          if (p.cmd === cmd) return taken;
          continue;
        }
        if (closed) throw new Error(`closed before ${cmd}; received ${describe()}`);
        await event();
      }
    },
    async whenClosed() {
      while (!closed) await event();
      return queue.splice(0);
    },
  };
  return client;
}

const connect = (v: Level, clientId: string, extra: Partial<mqtt.IConnectPacket> = {}): mqtt.IConnectPacket => ({
  cmd: "connect",
  protocolId: "MQTT",
  protocolVersion: v,
  clientId,
  clean: true,
  keepalive: 60,
  ...extra,
});

async function connected(c: MemClient, v: Level, clientId: string, extra: Partial<mqtt.IConnectPacket> = {}) {
  c.send(connect(v, clientId, extra));
  return c.expect("connack");
}

/** PINGREQ round trip: once PINGRESP is here, everything the broker sent this client before is too. */
async function sync(c: MemClient): Promise<void> {
  c.send({ cmd: "pingreq" });
  await c.expect("pingresp");
}

t.test("CONNECT → CONNACK, 3.1.1 and 5", async (t) => {
  const { broker, open } = setup(t);
  const v4 = open(4);
  const ack4 = await connected(v4, 4, "mem-v4");
  t.same([ack4.returnCode, ack4.sessionPresent], [0, false], "3.1.1: return code 0, no session present");
  t.same([v4.conn.state, v4.conn.clientId, v4.conn.protocolVersion], ["connected", "mem-v4", 4], "the Connection is connected, with the id and level");
  t.same(Buffer.concat(v4.bytes), Buffer.from([0x20, 0x02, 0x00, 0x00]), "3.1.1 CONNACK is exactly 20 02 00 00");

  const v5 = open(5);
  const ack5 = await connected(v5, 5, "");
  const limits = broker.core.limits;
  t.equal(ack5.reasonCode, 0, "5: reason code 0");
  t.match(ack5.properties?.assignedClientIdentifier, /^auto-/, "empty client id: Assigned Client Identifier (MQTT-3.2.2-16)");
  t.same(
    [ack5.properties?.receiveMaximum, ack5.properties?.maximumPacketSize, ack5.properties?.topicAliasMaximum],
    [limits.receiveMaximum, limits.maxPacketSize, limits.topicAliasMaximum],
    "5: our limits announced",
  );
  t.equal(v5.conn.clientId, ack5.properties?.assignedClientIdentifier, "the connection uses the assigned id");
  t.equal(broker.core.stats.clientsConnected, 2, "two clients counted");
});

t.test("SUBSCRIBE → SUBACK with the packet id and the granted QoS per filter", async (t) => {
  const { broker, open } = setup(t);
  for (const v of [4, 5] as const) {
    const c = open(v);
    await connected(c, v, `sub-v${v}`);
    c.send({
      cmd: "subscribe",
      messageId: 4242,
      subscriptions: [
        { topic: "a", qos: 0 },
        { topic: "b/+", qos: 1 },
        { topic: "c/#", qos: 2 },
      ],
    });
    const ack = await c.expect("suback");
    t.same([ack.messageId, ack.granted], [4242, [0, 1, 2]], `v${v}: SUBACK 4242 granting 0, 1, 2`);
    t.equal(broker.core.tree.countFor(c.conn.session!), 3, `v${v}: three subscriptions stored`);
    c.send({ cmd: "unsubscribe", messageId: 7, unsubscriptions: ["b/+"] });
    const un = await c.expect("unsuback");
    t.equal(un.messageId, 7, `v${v}: UNSUBACK 7`);
    if (v === 5) t.same(un.granted, [0], "v5: UNSUBACK reason 0x00");
    t.equal(broker.core.tree.countFor(c.conn.session!), 2, `v${v}: one removed`);
  }
});

t.test("PUBLISH QoS 0, 1 and 2 between two in-memory clients with every acknowledgement", async (t) => {
  for (const [pv, sv] of [[4, 4], [5, 5], [4, 5], [5, 4]] as const) {
    await t.test(`publisher v${pv}, subscriber v${sv}`, async (t) => {
      const { open } = setup(t);
      const sub = open(sv);
      await connected(sub, sv, "sub");
      sub.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "x/#", qos: 2 }] });
      await sub.expect("suback");
      const pub = open(pv);
      await connected(pub, pv, "pub");
      const payload = Buffer.from([0x00, 0xff, 0x80, 0x0a]);
      const base = { retain: false, dup: false, payload } as const;

      pub.send({ cmd: "publish", topic: "x/0", qos: 0, ...base });
      const p0 = await sub.expect("publish");
      t.same([p0.topic, p0.qos, p0.messageId, (p0.payload as Buffer).equals(payload)], ["x/0", 0, undefined, true], "QoS 0 delivered, no packet id");

      pub.send({ cmd: "publish", topic: "x/1", qos: 1, messageId: 10, ...base });
      t.equal((await pub.expect("puback")).messageId, 10, "QoS 1: PUBACK 10 to the publisher");
      const p1 = await sub.expect("publish");
      t.same([p1.topic, p1.qos, (p1.payload as Buffer).equals(payload)], ["x/1", 1, true], "QoS 1 delivered");
      t.equal(sub.conn.session!.inflight.size, 1, "in flight until the subscriber's PUBACK");
      sub.send({ cmd: "puback", messageId: p1.messageId! });

      pub.send({ cmd: "publish", topic: "x/2", qos: 2, messageId: 11, ...base });
      t.equal((await pub.expect("pubrec")).messageId, 11, "QoS 2: PUBREC 11");
      t.ok(pub.conn.session!.inboundQos2.has(11), "id 11 held until PUBREL");
      const p2 = await sub.expect("publish");
      t.same([p2.topic, p2.qos, (p2.payload as Buffer).equals(payload)], ["x/2", 2, true], "QoS 2 delivered once");
      pub.send({ cmd: "pubrel", messageId: 11 });
      t.equal((await pub.expect("pubcomp")).messageId, 11, "PUBCOMP 11");
      t.notOk(pub.conn.session!.inboundQos2.has(11), "id 11 released");

      sub.send({ cmd: "pubrec", messageId: p2.messageId! });
      t.equal((await sub.expect("pubrel")).messageId, p2.messageId, "the broker answers PUBREC with PUBREL");
      sub.send({ cmd: "pubcomp", messageId: p2.messageId! });
      await sync(sub);
      t.equal(sub.conn.session!.inflight.size, 0, "nothing left in flight after PUBACK and PUBCOMP");
      await sync(pub);
      t.same(pub.received.map((p) => p.cmd), ["connack", "puback", "pubrec", "pubcomp", "pingresp"], "publisher transcript");
      t.same(sub.received.map((p) => p.cmd), ["connack", "suback", "publish", "publish", "publish", "pubrel", "pingresp"], "subscriber transcript");
    });
  }
});

t.test("PINGREQ → PINGRESP (d0 00)", async (t) => {
  const { open } = setup(t);
  for (const v of [4, 5] as const) {
    const c = open(v);
    await connected(c, v, `ping-v${v}`);
    const before = c.bytes.length;
    c.write(Buffer.from([0xc0, 0x00]));
    await c.expect("pingresp");
    t.same(Buffer.concat(c.bytes.slice(before)), Buffer.from([0xd0, 0x00]), `v${v}: PINGRESP is exactly d0 00`);
  }
});

t.test("a script split byte by byte and written whole gives the same replies", async (t) => {
  for (const v of [4, 5] as const) {
    const enc = (p: Packet) => mqtt.generate(p, { protocolVersion: v });
    const script = Buffer.concat([
      enc(connect(v, `script-v${v}`)),
      enc({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "s/#", qos: 2 }] }),
      enc({ cmd: "publish", topic: "s/q0", qos: 0, retain: false, dup: false, payload: Buffer.from("zero") }),
      enc({ cmd: "publish", topic: "s/q1", qos: 1, messageId: 2, retain: false, dup: false, payload: Buffer.from("one") }),
      enc({ cmd: "publish", topic: "s/q2", qos: 2, messageId: 3, retain: false, dup: false, payload: Buffer.from("two") }),
      enc({ cmd: "pubrel", messageId: 3 }),
      enc({ cmd: "pingreq" }),
    ]);
    const transcripts: string[][] = [];
    for (const bytewise of [false, true]) {
      const { open } = setup(t);
      const c = open(v);
      let chunks = 0;
      c.server.on("data", () => chunks++);
      if (bytewise) await c.writeBytewise(script);
      else c.write(script);
      // PINGRESP is the last reply: once it is here, every earlier one is too.
      await c.through("pingresp");
      t.equal(chunks, bytewise ? script.length : 1, `v${v}: the broker read ${bytewise ? "one byte per chunk" : "one chunk"}`);
      transcripts.push(c.received.map(summary));
    }
    t.same(
      transcripts[0]!.map((s) => s.split(" ")[0]),
      ["connack", "suback", "publish", "publish", "puback", "publish", "pubrec", "pubcomp", "pingresp"],
      `v${v}: CONNACK, SUBACK, own QoS 0 copy, QoS 1 copy, PUBACK, QoS 2 copy, PUBREC, PUBCOMP, PINGRESP`,
    );
    t.same(transcripts[1], transcripts[0], `v${v}: byte by byte: the same replies, same order`);
  }
});

t.test("DISCONNECT closes the stream and discards the will; an abrupt end publishes it", async (t) => {
  const { broker, open } = setup(t);
  const watcher = open(4);
  await connected(watcher, 4, "watcher");
  watcher.send({ cmd: "subscribe", messageId: 1, subscriptions: [{ topic: "will/#", qos: 0 }] });
  await watcher.expect("suback");
  const will = (id: string) => ({ will: { topic: `will/${id}`, payload: Buffer.from(id), qos: 0 as const, retain: false } });
  for (const v of [4, 5] as const) {
    const polite = open(v);
    await connected(polite, v, `polite-v${v}`, will(`polite-v${v}`));
    polite.send({ cmd: "disconnect" });
    t.same(await polite.whenClosed(), [], `v${v}: closed by the broker with nothing sent after DISCONNECT`);
    t.equal(polite.conn.state, "closed", `v${v}: the Connection is closed`);
    t.notOk(broker.core.sessions.has(`polite-v${v}`), `v${v}: clean session ended`);

    const rude = open(v);
    await connected(rude, v, `rude-v${v}`, will(`rude-v${v}`));
    rude.side.destroy();
    const p = await watcher.expect("publish");
    t.same([p.topic, String(p.payload)], [`will/rude-v${v}`, `rude-v${v}`], `v${v}: the will of the abrupt close is published, not the polite one's`);
    t.equal(rude.conn.state, "closed", `v${v}: the broker saw the stream close`);
  }
  await sync(watcher);
  t.equal(broker.core.stats.clientsConnected, 1, "only the watcher is left");
});

t.test("protocol errors are answered on the stream, then it is closed", async (t) => {
  const { open } = setup(t);
  const v5 = open(5);
  await connected(v5, 5, "twice");
  v5.send(connect(5, "twice"));
  const rest = await v5.whenClosed();
  t.same(rest.map(summary), [summary({ cmd: "disconnect", reasonCode: RC.PROTOCOL_ERROR })], "v5 second CONNECT: DISCONNECT 0x82 then close");
  const first = open(4);
  first.send({ cmd: "pingreq" });
  t.same(await first.whenClosed(), [], "a first packet other than CONNECT: closed without a reply");
});
