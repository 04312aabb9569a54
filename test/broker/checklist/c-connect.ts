// Checklist section C (CONNECT, identity, session takeover) as table rows.
import { RC, V3_CONNACK } from "../../../hub/broker/reason-codes.js";
import { connectClient, connectFrame, publishFrame, subscribe, summary } from "../../support/raw-client.js";
import { gone, refusedLoosely, type Row, VERSIONS } from "./ctx.js";
import { connectAs } from "./g-security.js";

const PROTO_NAMES = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype", "__defineGetter__"];

export const rowsC: Row[] = [
  {
    id: "C1",
    title: "CONNECT reserved flag = 1 → close (MQTT-3.1.2-3)",
    run: async (ctx) => {
      for (const v of VERSIONS) {
        const c = await ctx.open(v);
        c.write(connectFrame({ v, clientId: ctx.id("c1"), orFlags: 0x01 }));
        await refusedLoosely(ctx.t, c, "reserved flag");
      }
    },
  },
  {
    id: "C2",
    title: "unsupported protocol level → CONNACK 0x01 (3.1.1 format) then close",
    run: async (ctx) => {
      // The client's version is unknown, so the answer uses the 3.1.1 layout (20 02 00 01), as
      // mosquitto does; a v5 CONNACK 0x84 would not parse for an older client (packet-rules.ts).
      for (const [name, level] of [["MQTT", 9], ["MQTT", 6], ["MQTT", 3], ["MQIsdp", 4]] as const) {
        const c = await ctx.open(4);
        c.write(connectFrame({ clientId: ctx.id("c2"), protocolName: name, level }));
        await gone(ctx.t, c, { v3Connack: V3_CONNACK.UNACCEPTABLE_PROTOCOL_VERSION, what: `${name} level ${level}` });
      }
    },
  },
  {
    id: "C3",
    title: "second CONNECT on the connection → close (v5: 0x82)",
    run: async (ctx) => {
      for (const v of VERSIONS) {
        const id = ctx.id("c3");
        const c = await ctx.connect(v, { clientId: id });
        c.write(connectFrame({ v, clientId: id }));
        await gone(ctx.t, c, { v5: RC.PROTOCOL_ERROR });
      }
    },
  },
  {
    id: "C4",
    title: "3.1.1 zero-length client id with clean=0 (and 3.1 with any) → CONNACK 0x02 then close",
    run: async (ctx) => {
      const c = await ctx.open(4);
      c.write(connectFrame({ v: 4, clientId: "", clean: false }));
      await gone(ctx.t, c, { v3Connack: V3_CONNACK.IDENTIFIER_REJECTED, what: "3.1.1 clean=0" });
      const c3 = await ctx.open(3);
      c3.write(connectFrame({ v: 3, clientId: "", clean: true }));
      await gone(ctx.t, c3, { v3Connack: V3_CONNACK.IDENTIFIER_REJECTED, what: "3.1 (MQIsdp)" });
    },
  },
  {
    id: "C5",
    title: "zero-length client id with clean start → accepted, unique id assigned (v5: Assigned Client Identifier), no accumulation",
    run: async (ctx) => {
      const { t, b } = ctx;
      const sessions = b.broker.core.sessions;
      const before = sessions.size;
      const durable = await ctx.connect(5, { clientId: "c5-durable", properties: { sessionExpiryInterval: 300 } });
      const assigned = new Set<string>();
      for (let i = 0; i < 20; i++) {
        for (const v of VERSIONS) {
          const { c, connack } = await connectClient(ctx.port, v, { clientId: "", clean: true });
          if (v === 5) {
            const id = connack.properties?.assignedClientIdentifier;
            t.ok(id && !assigned.has(id) && id !== "c5-durable", `v5 assigned a fresh id (${id})`);
            if (id) assigned.add(id);
          }
          t.equal(sessions.size, before + 2, "one live session for it");
          c.send({ cmd: "disconnect" });
          await c.expectClose();
        }
      }
      t.equal(assigned.size, 20, "20 distinct assigned ids");
      t.equal(sessions.size, before + 1, "sessions do not accumulate (only the durable one is left)");
      durable.send({ cmd: "pingreq" });
      await durable.expectPacket("pingresp");
    },
  },
  {
    id: "C6",
    title: "client id over the cap or containing + # / → CONNACK 0x02 (v5: 0x85)",
    limits: { maxClientIdLength: 23 },
    run: async (ctx) => {
      for (const v of VERSIONS) {
        for (const id of ["x".repeat(24), "a+b", "a#", "a/b", "+", "#"]) {
          const c = await ctx.open(v);
          c.write(connectFrame({ v, clientId: id }));
          await gone(ctx.t, c, { v3Connack: V3_CONNACK.IDENTIFIER_REJECTED, v5: RC.CLIENT_IDENTIFIER_NOT_VALID, atConnect: true, what: JSON.stringify(id) });
        }
        await ctx.connect(v, { clientId: `${"y".repeat(22)}${v}` });
        ctx.t.pass(`v${v}: 23 characters accepted`);
      }
    },
  },
  {
    id: "C7",
    title: "client ids and user names from the prototype list behave like any other string",
    run: async (ctx) => {
      const { t, b } = ctx;
      const before = b.broker.core.sessions.size;
      for (const [i, name] of PROTO_NAMES.entries()) {
        const v = i % 2 === 0 ? 5 : 4;
        const first = await ctx.connect(v, { clientId: name, username: name, password: Buffer.from("x") });
        t.equal(b.broker.core.sessions.get(name)?.clientId, name, `${name}: own session`);
        await subscribe(first, `${name}/#`, 1);
        const pub = await ctx.connect(4);
        pub.write(publishFrame({ topic: `${name}/x`, payload: name }));
        t.equal(String((await first.expectPacket("publish")).payload), name, `${name}: subscription routes`);
        // Takeover by the same id (MQTT-3.1.4-2/3).
        const second = await ctx.connect(v, { clientId: name, username: name, password: Buffer.from("x") });
        await gone(t, first, { v5: RC.SESSION_TAKEN_OVER, what: `${name} taken over` });
        second.send({ cmd: "pingreq" });
        await second.expectPacket("pingresp");
      }
      t.equal(b.broker.core.sessions.size, before + 2 * PROTO_NAMES.length, "one session per name (plus the publishers)");
      t.equal(Object.getPrototypeOf({}).constructor, Object, "Object.prototype untouched");
    },
  },
  {
    id: "C8",
    title: "existing client id connects again → old connection closed (v5: DISCONNECT 0x8E), old will published",
    run: async (ctx) => {
      const w = await ctx.watch(["c8/#"]);
      for (const v of VERSIONS) {
        const id = ctx.id("c8");
        const old = await ctx.connect(v, { clientId: id, will: { topic: `c8/will-v${v}`, payload: Buffer.from("gone"), qos: 1, retain: false } });
        const fresh = await ctx.connect(v, { clientId: id });
        await gone(ctx.t, old, { v5: RC.SESSION_TAKEN_OVER });
        fresh.write(publishFrame({ v, topic: `c8/new-v${v}`, payload: "hi" }));
      }
      ctx.t.same((await w.before()).map((p) => p.topic), ["c8/will-v4", "c8/new-v4", "c8/will-v5", "c8/new-v5"], "wills published once; the new connections publish");
    },
  },
  {
    id: "C9",
    title: "existing client id with a refused CONNECT → rejected; the existing session untouched",
    run: async (ctx) => {
      // No credentials yet (security issue); a will on $SYS is refused at CONNECT with NOT_AUTHORIZED
      // after the id is known, which is the same code path a wrong password will take.
      const { t } = ctx;
      for (const v of VERSIONS) {
        const id = ctx.id("c9");
        const owner = await ctx.connect(v, { clientId: id });
        await subscribe(owner, "c9/#", 1);
        const session = ctx.session(id);
        const intruder = await ctx.open(v);
        intruder.write(connectFrame({ v, clientId: id, will: { topic: "$SYS/c9", payload: "x" } }));
        await gone(t, intruder, { v3Connack: V3_CONNACK.NOT_AUTHORIZED, v5: RC.NOT_AUTHORIZED, atConnect: true });
        t.equal(ctx.session(id), session, `v${v}: same session object`);
        const pub = await ctx.connect(4);
        pub.write(publishFrame({ topic: "c9/x", payload: "still here" }));
        t.equal(String((await owner.expectPacket("publish")).payload), "still here", `v${v}: owner still connected and subscribed`);
        t.same(owner.untaken().map(summary), [], `v${v}: owner got no DISCONNECT`);
      }
    },
  },
  {
    id: "C9",
    title: "existing client id with wrong credentials or a will denied by the ACL → rejected, session untouched",
    auth: { users: { owner: "owner-pw" }, acl: "user owner\ntopic readwrite c9/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      for (const v of VERSIONS) {
        const id = ctx.id("c9");
        const owner = await connectAs(ctx, v, "owner", { clientId: id });
        await subscribe(owner, "c9/#", 1);
        const session = ctx.session(id);
        const cases = [
          ["wrong password", { username: "owner", password: "nope" }, RC.BAD_USERNAME_OR_PASSWORD, V3_CONNACK.BAD_USERNAME_OR_PASSWORD],
          ["unknown user", { username: "nobody", password: "x" }, RC.BAD_USERNAME_OR_PASSWORD, V3_CONNACK.BAD_USERNAME_OR_PASSWORD],
          ["will denied by the ACL", { username: "owner", password: "owner-pw", will: { topic: "elsewhere", payload: "x" } }, RC.NOT_AUTHORIZED, V3_CONNACK.NOT_AUTHORIZED],
        ] as const;
        for (const [what, creds, v5, v3] of cases) {
          const intruder = await ctx.open(v);
          intruder.write(Buffer.concat([connectFrame({ v, clientId: id, ...creds }), publishFrame({ v, topic: "c9/intruder", payload: "x" })]));
          await gone(t, intruder, { v5, v3Connack: v3, atConnect: true, what });
        }
        t.equal(ctx.session(id), session, `v${v}: same session object`);
        const pub = await connectAs(ctx, 4, "owner");
        pub.write(publishFrame({ topic: "c9/x", payload: "still here" }));
        t.equal(String((await owner.expectPacket("publish")).payload), "still here", `v${v}: owner still connected and subscribed; nothing from the intruders`);
        t.same(owner.untaken().map(summary), [], `v${v}: owner got no DISCONNECT`);
      }
    },
  },
  {
    id: "C10",
    title: "client id whose session belongs to user A, used by user B or anonymously → rejected",
    auth: { users: { a: "a-pw", b: "b-pw" } },
    run: async (ctx) => {
      const { t } = ctx;
      for (const v of VERSIONS) {
        const id = ctx.id("c10");
        const a = await connectAs(ctx, v, "a", { clientId: id, clean: false, ...(v === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}) });
        for (const [who, creds] of [["user b", { username: "b", password: "b-pw" }], ["anonymous", {}]] as const) {
          const c = await ctx.open(v);
          c.write(connectFrame({ v, clientId: id, ...creds }));
          await gone(t, c, { v5: RC.NOT_AUTHORIZED, v3Connack: V3_CONNACK.NOT_AUTHORIZED, atConnect: true, what: `${who}, A connected` });
        }
        t.notOk(a.closed, `v${v}: A keeps its connection`);
        a.send({ cmd: "disconnect" });
        await a.expectClose();
        const c = await ctx.open(v);
        c.write(connectFrame({ v, clientId: id, clean: false, username: "b", password: "b-pw" }));
        await gone(t, c, { v5: RC.NOT_AUTHORIZED, v3Connack: V3_CONNACK.NOT_AUTHORIZED, atConnect: true, what: "user b, A's session offline" });
        const back = await connectAs(ctx, v, "a", { clientId: id, clean: false });
        t.ok(back, `v${v}: A resumes its session`);
      }
    },
  },
  {
    id: "C11",
    title: "keep-alive above the max → v3 CONNACK 0x02; v5 CONNACK with Server Keep Alive",
    limits: { maxKeepalive: 60 },
    run: async (ctx) => {
      const { t } = ctx;
      for (const keepalive of [61, 65535, 0]) {
        const c = await ctx.open(4);
        c.write(connectFrame({ v: 4, clientId: ctx.id("c11"), keepalive }));
        await gone(t, c, { v3Connack: V3_CONNACK.IDENTIFIER_REJECTED, what: `v3 keep-alive ${keepalive}` });
      }
      await ctx.connect(4, { keepalive: 60 });
      t.pass("v3 keep-alive 60 accepted");
      for (const [keepalive, told] of [[61, 60], [0, 60], [30, undefined]] as const) {
        const { c, connack } = await connectClient(ctx.port, 5, { clientId: ctx.id("c11"), keepalive });
        t.equal(connack.properties?.serverKeepAlive, told, `v5 keep-alive ${keepalive}: Server Keep Alive ${told}`);
        await c.destroy();
      }
    },
  },
  {
    id: "C12",
    title: "no traffic for 1.5 × keep-alive → closed (v5: 0x8D) and the will published",
    run: async (ctx) => {
      const { t, clock } = ctx;
      const w = await ctx.watch(["c12/#"]);
      const clients = [];
      for (const v of VERSIONS) {
        clients.push(await ctx.connect(v, { keepalive: 2, will: { topic: `c12/will-v${v}`, payload: Buffer.from("x"), qos: 0, retain: false } }));
      }
      // Fake time: connected at 0. A PINGREQ at 2 s and at 5 s keeps them alive (5 - 2 = 3 s is not > 3 s).
      for (const at of [2_000, 5_000]) {
        clock.advance(at - clock.monotonic());
        for (const c of clients) {
          c.send({ cmd: "pingreq" });
          await c.expectPacket("pingresp");
        }
      }
      t.pass("alive at 5 s after PINGREQs");
      clock.advance(4_000); // 9 s: 4 s of silence > 1.5 × 2 s
      for (const c of clients) await gone(t, c, { v5: RC.KEEP_ALIVE_TIMEOUT });
      t.same((await w.before()).map((p) => p.topic), ["c12/will-v4", "c12/will-v5"], "both wills published");
    },
  },
  {
    id: "C13",
    title: "client refused at CONNECT sends PUBLISH right behind it → nothing processed",
    run: async (ctx) => {
      const w = await ctx.watch(["c13/#"]);
      const cases = [
        ["3.1.1 empty id, clean=0", 4, connectFrame({ v: 4, clientId: "", clean: false }), { v3Connack: V3_CONNACK.IDENTIFIER_REJECTED }],
        ["v5 id with '/'", 5, connectFrame({ v: 5, clientId: "c13/x" }), { v5: RC.CLIENT_IDENTIFIER_NOT_VALID, atConnect: true }],
        ["v5 will on $SYS", 5, connectFrame({ v: 5, clientId: "c13", will: { topic: "$SYS/x", payload: "w" } }), { v5: RC.NOT_AUTHORIZED, atConnect: true }],
        ["unknown level", 4, connectFrame({ clientId: "c13", level: 7 }), { v3Connack: V3_CONNACK.UNACCEPTABLE_PROTOCOL_VERSION }],
      ] as const;
      for (const [what, v, connect, e] of cases) {
        const c = await ctx.open(v);
        c.write(Buffer.concat([connect, publishFrame({ v, topic: "c13/leak", qos: 1, id: 1, payload: what }), publishFrame({ v, topic: "c13/leak", payload: what })]));
        await gone(ctx.t, c, { ...e, what });
      }
      ctx.t.same((await w.before()).map(summary), [], "no PUBLISH behind a refused CONNECT was routed");
    },
  },
  {
    id: "C14",
    title: "wrong password ×N from one address → refused before hashing for the ban period; one log line",
    auth: { users: { u: "u-pw" }, rateLimit: { maxFailures: 3, windowMs: 60_000, banMs: 300_000 } },
    run: async (ctx) => {
      const { t } = ctx;
      const attempt = async (v: 4 | 5, password: string, clientId = ctx.id("c14")) => {
        const c = await ctx.open(v);
        c.write(connectFrame({ v, clientId, username: "u", password }));
        const ack = await c.expectPacket("connack");
        await c.destroy();
        return ack.reasonCode ?? ack.returnCode;
      };
      t.same([await attempt(5, "a"), await attempt(4, "b"), await attempt(5, "c")], [RC.BAD_USERNAME_OR_PASSWORD, V3_CONNACK.BAD_USERNAME_OR_PASSWORD, RC.BAD_USERNAME_OR_PASSWORD], "three failures");
      t.equal(await attempt(5, "u-pw"), RC.BANNED, "v5: the right password is refused now (0x8A Banned)");
      t.equal(await attempt(4, "u-pw"), V3_CONNACK.NOT_AUTHORIZED, "v3: refused (not authorized)");
      for (let i = 0; i < 20; i++) await attempt(5, `guess${i}`);
      // Decided synchronously: no hashing is started for a banned address.
      const r = ctx.auth!.auth.authenticate({ clientId: "x", username: "u", password: Buffer.from("u-pw"), address: "127.0.0.1", listener: { name: "t", allowAnonymous: true, identityAsUsername: false }, certName: undefined });
      t.notOk(r instanceof Promise, "a banned address is refused without hashing");
      t.equal(ctx.auth!.lines.filter((l) => l.includes("too many failed logins")).length, 1, "one log line for the ban, none for the 20 attempts during it");
      ctx.clock.advance(300_001);
      t.equal(await attempt(5, "u-pw"), 0, "after the ban period the right password works");
    },
  },
];
