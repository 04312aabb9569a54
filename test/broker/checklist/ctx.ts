// The shape of one row of the broker checklist test (/work/shared/broker-checklist.md) and what a
// row gets to work with: a fresh broker on a loopback port driven by a fake clock, raw clients that
// are cleaned up after the row, a well-behaved bystander, and the assertions most rows share
// ("closed, v5 with reason 0xNN first", "refused at CONNECT", "nothing reached a subscriber").
import type { Test } from "tap";
import type { IPublishPacket, Packet } from "mqtt-packet";
import type { BrokerLimits } from "../../../hub/broker/core.js";
import type { Session } from "../../../hub/broker/session.js";
import { startBroker, type TestBroker } from "../../support/broker.js";
import { type AuthFixture, type AuthRow, installAuth } from "./auth-fixture.js";
import { type FakeClock, fakeClock } from "../../support/fake-clock.js";
import {
  type ConnectOptions,
  connectClient,
  type Level,
  publishesUntil,
  type RawClient,
  rawClient,
  subscribe,
  summary,
} from "../../support/raw-client.js";

export interface Row {
  /** Checklist id, e.g. "A4"; several rows may share one id (one per case). */
  id: string;
  title: string;
  limits?: Partial<BrokerLimits>;
  /** Users and an ACL on the row's broker (auth-fixture.ts); absent: anonymous, everything allowed. */
  auth?: AuthRow;
  /** Set when the row cannot pass yet: "bug: ..." (a broker defect) or a reason it is out of scope. */
  todo?: string;
  /** Absent only for todo rows that have nothing to run yet. */
  run?: (ctx: Ctx) => Promise<void>;
}

export interface Watcher {
  c: RawClient;
  /** Publishes a marker and returns the PUBLISHes this watcher got before it (acknowledged). */
  before(): Promise<IPublishPacket[]>;
}

export interface Ctx {
  t: Test;
  b: TestBroker;
  clock: FakeClock;
  port: number;
  /** The row's limits merged over the defaults. */
  limits: BrokerLimits;
  /** Present when the row has `auth`. */
  auth: AuthFixture | undefined;
  /** A raw TCP connection, destroyed at the end of the row. */
  open(v?: Level): Promise<RawClient>;
  /** A connected client (CONNACK success), destroyed at the end of the row. Client ids default to unique ones. */
  connect(v?: Level, o?: ConnectOptions): Promise<RawClient>;
  /** A connected client subscribed to `filters` (QoS 2) and to a private marker topic. */
  watch(filters: string[], v?: Level): Promise<Watcher>;
  /** A PINGREQ round trip on the bystander: once it returns, the broker has handled every socket event that was ready before it. */
  sync(): Promise<void>;
  session(clientId: string): Session | undefined;
  /** A unique client id with a readable prefix. */
  id(prefix: string): string;
}

const BYSTANDER = "bystander";

export async function createCtx(t: Test, row: Row): Promise<{ ctx: Ctx; healthCheck(): Promise<void>; close(): Promise<void> }> {
  const clock = fakeClock();
  const b = await startBroker({ limits: row.limits, clock });
  const limits = b.broker.core.limits;
  const auth = row.auth ? await installAuth(b.broker.core, clock, row.auth) : undefined;
  const clients: RawClient[] = [];
  let n = 0;
  const track = (c: RawClient) => {
    clients.push(c);
    return c;
  };
  const keepalive = Math.min(300, limits.maxKeepalive);
  // The bystander is connected before the row's clients and must still work after them.
  const { c: bystander } = await connectClient(b.port, 4, { clientId: BYSTANDER, keepalive });
  track(bystander);
  await subscribe(bystander, "health/#", 1);

  const ctx: Ctx = {
    t,
    b,
    clock,
    port: b.port,
    limits,
    auth,
    open: async (v = 4) => track(await rawClient(b.port, { version: v })),
    async connect(v = 4, o = {}) {
      const { c } = await connectClient(b.port, v, { keepalive, clientId: ctx.id(`v${v}`), ...o });
      return track(c);
    },
    async watch(filters, v = 4) {
      const c = await ctx.connect(v, { clientId: ctx.id("watcher") });
      const marker = `marker/${c.nextId()}-${n}`;
      const granted = await subscribe(c, [...filters.map((f) => [f, 2] as [string, number]), [marker, 1]]);
      if (granted.some((g) => g >= 0x80)) throw new Error(`watcher subscription refused: ${granted}`);
      return {
        c,
        async before() {
          bystander.send({ cmd: "publish", topic: marker, payload: Buffer.from("marker"), qos: 0, retain: false, dup: false });
          // Other watchers' markers reach a watcher of '#': they are not part of what the row sent.
          return (await publishesUntil(c, marker)).filter((p) => !p.topic.startsWith("marker/"));
        },
      };
    },
    async sync() {
      bystander.send({ cmd: "pingreq" });
      await bystander.expectPacket("pingresp");
    },
    session: (id) => b.broker.core.sessions.get(id),
    id: (prefix) => `${prefix}-${++n}`,
  };

  return {
    ctx,
    // One bad client never harms another (checklist intro): the bystander still receives, and a new
    // client still connects and publishes, on the same broker.
    async healthCheck() {
      t.notOk(bystander.closed, "bystander still connected");
      const fresh = await ctx.connect(5, { clientId: ctx.id("fresh") });
      t.equal(await publishRc(fresh, "health/after"), 0, "a new client publishes (PUBACK 0x00)");
      const p = await bystander.expectPacket("publish");
      t.equal(p.topic, "health/after", "the bystander receives it");
      bystander.send({ cmd: "puback", messageId: p.messageId! });
      await ctx.sync();
      fresh.send({ cmd: "disconnect" });
      await fresh.expectClose();
    },
    async close() {
      await Promise.all(clients.map((c) => c.destroy()));
      await b.stop();
    },
  };
}

async function publishRc(c: RawClient, topic: string): Promise<number> {
  const messageId = c.nextId();
  c.send({ cmd: "publish", topic, payload: Buffer.from("ok"), qos: 1, retain: false, dup: false, messageId });
  return (await c.expectPacket("puback")).reasonCode ?? 0;
}

/**
 * The connection is closed by the broker. 3.1.1: nothing is sent first (optionally a CONNACK with
 * `v3Connack`). MQTT 5: exactly one DISCONNECT (or CONNACK when `atConnect`) with `v5` first
 * (MQTT-4.13.1-1). Packets the test did not take before count as unexpected.
 */
export async function gone(
  t: Test,
  c: RawClient,
  e: { v5?: number; v3Connack?: number; atConnect?: boolean; what?: string } = {},
): Promise<void> {
  const rest = await c.expectClose();
  const what = e.what ? `${e.what}: ` : "";
  const got = rest.map(summary);
  if (c.version === 5 && e.v5 !== undefined) {
    const cmd = e.atConnect ? "connack" : "disconnect";
    t.same(got, [summary({ cmd, reasonCode: e.v5 } as Packet)], `${what}v5 ${cmd.toUpperCase()} 0x${e.v5.toString(16)} then close`);
  } else if (c.version !== 5 && e.v3Connack !== undefined) {
    t.same(got, [`connack rc=0x${e.v3Connack.toString(16)}`], `${what}v3 CONNACK 0x${e.v3Connack.toString(16).padStart(2, "0")} then close`);
  } else {
    t.same(got, [], `${what}v${c.version} closed without a reply`);
  }
}

/** A CONNECT was refused: closed, and if anything was sent it was a CONNACK failure (MQTT-3.2.2-5). */
export async function refusedLoosely(t: Test, c: RawClient, what: string): Promise<void> {
  const rest = await c.expectClose();
  const ok = rest.every((p) => p.cmd === "connack" && ((p.reasonCode ?? 0) >= 0x80 || (p.returnCode ?? 0) > 0));
  t.ok(ok, `${what}: v${c.version} closed with no success reply (${JSON.stringify(rest.map(summary))})`);
}

export const VERSIONS = [4, 5] as const;
