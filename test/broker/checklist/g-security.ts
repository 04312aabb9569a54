// Checklist section G (authorization, retained messages, wills, sessions) as table rows, plus the
// helpers the auth rows of sections C and E share. Users and ACLs come from auth-fixture.ts; an
// in-process part of the hub (unrestricted by default) observes what was really routed.
import type { IPublishPacket } from "mqtt-packet";
import { createAcl, parseAclFile } from "../../../hub/broker/auth/acl.js";
import { createAuthService } from "../../../hub/broker/auth/load.js";
import { RC, V3_CONNACK } from "../../../hub/broker/reason-codes.js";
import { memoryLogger } from "../../../hub/log.js";
import { connectFrame, publish, publishesUntil, type Level, type RawClient, subscribe } from "../../support/raw-client.js";
import { type Ctx, gone, type Row, VERSIONS } from "./ctx.js";

const pw = (s: string) => Buffer.from(s);

/** Connects as `user` (password = user name + "-pw" unless given). */
export async function connectAs(ctx: Ctx, v: Level, user: string, o: Parameters<Ctx["connect"]>[1] = {}): Promise<RawClient> {
  return ctx.connect(v, { clientId: ctx.id(user), username: user, password: pw(`${user}-pw`), ...o });
}

/** Everything a part of the hub subscribed to `filter` receives (it may read everything). */
export function observe(ctx: Ctx, filter: string): string[] {
  const got: string[] = [];
  void ctx.b.broker.bus("observer").subscribe(filter, (m) => got.push(`${m.topic} ${m.payload}`));
  return got;
}

/** A client subscribed to `filters` and a marker topic; before() returns what arrived ahead of the marker. */
export async function watchAs(ctx: Ctx, c: RawClient, filters: string[]): Promise<{ granted: number[]; before(): Promise<IPublishPacket[]> }> {
  const marker = `marker/${ctx.id("m")}`;
  const granted = await subscribe(c, [...filters.map((f) => [f, 2] as [string, number]), [marker, 1]]);
  return {
    granted: granted.slice(0, filters.length),
    async before() {
      // From a part of the hub: routed at once, after everything the row awaited.
      await ctx.b.broker.bus("marker").publish({ topic: marker, payload: Buffer.from("marker"), qos: 0, retain: false });
      return publishesUntil(c, marker);
    },
  };
}

const topics = (ps: IPublishPacket[]) => ps.map((p) => `${p.topic} ${p.payload}`);
/** v5: 0x87; v3: 0x80 (SUBACK) or the v3 PUBACK, which has no reason code (0). */
const denied = (v: Level, what: "sub" | "pub") => (v === 5 ? RC.NOT_AUTHORIZED : what === "sub" ? 0x80 : 0);

const users = (...names: string[]) => Object.fromEntries(names.map((n) => [n, `${n}-pw`]));

export const rowsG: Row[] = [
  {
    id: "G1",
    title: "empty or comment-only ACL → every publish and subscribe denied",
    auth: { users: users("u"), acl: "# nothing for anyone\n\n" },
    run: async (ctx) => {
      const seen = observe(ctx, "g1/#");
      for (const v of VERSIONS) {
        const c = await connectAs(ctx, v, "u");
        ctx.t.equal(await publish(c, "g1/x", "x", 1), denied(v, "pub"), `v${v}: PUBLISH denied`);
        ctx.t.same(await subscribe(c, [["g1/#", 1], ["#", 0]]), [denied(v, "sub"), denied(v, "sub")], `v${v}: SUBSCRIBE denied`);
      }
      await ctx.sync();
      ctx.t.same(seen, [], "nothing was routed");
    },
  },
  {
    id: "G2",
    title: "blank or malformed line in the password file → load fails with file:line; an empty user name is refused",
    auth: { users: users("u") },
    run: async (ctx) => {
      const { t } = ctx;
      const files: Record<string, string> = {
        "/etc/hub/passwd": "u:$7$101$mc161BF7JOmqjvtR$aknCX9XNZ8Hn7zRaRxu8bvxX1dTItCqtjKz5nRx5fKIRjoK6lJLtf+NqSFab1ZJv0FxdR0K9Dd7ukkmha25MVA==\n\n:x\n",
      };
      const log = memoryLogger("debug");
      const svc = createAuthService(
        { passwd_file: "/etc/hub/passwd", login_failures: { max: 5, window: 60_000, ban: 300_000 } },
        { core: ctx.b.broker.core, clock: ctx.clock, log, readFile: (f) => files[f]! },
      );
      const err = await svc.start().then(() => undefined, (e: Error) => e.message);
      t.match(err, /\/etc\/hub\/passwd:2:1: expected user:hash, found a blank line.*\/etc\/hub\/passwd:3:1: expected a user name before ":", found an empty user name/, "start fails, naming file and lines");
      t.equal(ctx.b.broker.core.auth, ctx.auth!.auth, "the broker's policy is unchanged");
      for (const v of VERSIONS) {
        const c = await ctx.open(v);
        c.write(connectFrame({ v, clientId: ctx.id("g2"), username: "", password: "" }));
        await gone(t, c, { v5: RC.BAD_USERNAME_OR_PASSWORD, v3Connack: V3_CONNACK.BAD_USERNAME_OR_PASSWORD, atConnect: true, what: "empty user name" });
      }
    },
  },
  {
    id: "G3",
    title: "retained message whose publisher lost write access → not delivered to a new subscriber",
    auth: { users: users("writer", "reader"), acl: "user writer\ntopic readwrite g3/#\nuser reader\ntopic read g3/#\ntopic read marker/#\n" },
    run: async (ctx) => {
      const w = await connectAs(ctx, 5, "writer");
      ctx.t.equal(await publish(w, "g3/state", "on", 1, { retain: true }), 0, "retained publish accepted");
      const r1 = await watchAs(ctx, await connectAs(ctx, 4, "reader"), ["g3/#"]);
      ctx.t.same(topics(await r1.before()), ["g3/state on"], "delivered while the writer may write");
      ctx.auth!.setAcl("user writer\ntopic read g3/#\nuser reader\ntopic read g3/#\ntopic read marker/#\n");
      const r2 = await watchAs(ctx, await connectAs(ctx, 4, "reader"), ["g3/#"]);
      ctx.t.same(topics(await r2.before()), [], "not replayed once the writer lost write access");
    },
  },
  {
    id: "G4",
    title: "durable client's read access revoked → on reconnect nothing of that topic is delivered, not even what was queued before",
    auth: { users: users("d", "p"), acl: "user d\ntopic read g4/#\ntopic read marker/#\nuser p\ntopic write g4/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      const p = await connectAs(ctx, 5, "p");
      // Two ways the ACL changes under a durable session: a reload (sessions re-checked at once)
      // and a policy the session meets only at its next CONNECT (a restart with stored sessions).
      for (const how of ["reload", "at reconnect"] as const) {
        const id = ctx.id("g4");
        const d = await connectAs(ctx, 4, "d", { clientId: id, clean: false });
        t.same(await subscribe(d, "g4/#", 1), [1], `${how}: subscribed while allowed`);
        d.send({ cmd: "disconnect" });
        await d.expectClose();
        // Queued for the offline session while it could still read it: dropped with the right.
        await publish(p, "g4/queued", "q", 1);
        t.equal(ctx.session(id)!.queue.length - ctx.session(id)!.queueHead, 1, `${how}: queued while allowed`);
        const revoked = "topic read nothing\nuser d\ntopic read marker/#\nuser p\ntopic write g4/#\n";
        if (how === "reload") ctx.auth!.setAcl(revoked);
        else ctx.auth!.auth.setPolicy({ ...ctx.auth!.auth.policy, acl: aclFrom(revoked) });
        await publish(p, "g4/offline", "x", 1);
        const back = await connectAs(ctx, 4, "d", { clientId: id, clean: false });
        const w = await watchAs(ctx, back, []);
        await publish(p, "g4/online", "y", 1);
        t.same(topics(await w.before()), [], `${how}: nothing from g4/# delivered`);
        t.equal([...ctx.b.broker.core.tree.subscriptionsOf(ctx.session(id)!)].filter((s) => s.filter === "g4/#").length, 0, `${how}: subscription dropped`);
        ctx.auth!.setAcl("user d\ntopic read g4/#\ntopic read marker/#\nuser p\ntopic write g4/#\n");
        back.send({ cmd: "disconnect" });
        await back.expectClose();
      }
    },
  },
  {
    id: "G5",
    title: "half-finished inbound QoS 2, write access revoked, PUBREL after reconnect → not forwarded",
    auth: { users: users("w"), acl: "user w\ntopic write g5/#\n" },
    run: async (ctx) => {
      // The hub forwards a QoS 2 message when its PUBLISH arrives (MQTT 5 §4.3.3 method A), while
      // access was granted; a PUBREL only completes the flow and never forwards anything.
      const { t } = ctx;
      const seen = observe(ctx, "g5/#");
      const id = ctx.id("g5");
      const w = await connectAs(ctx, 5, "w", { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
      w.send({ cmd: "publish", topic: "g5/t", payload: Buffer.from("once"), qos: 2, messageId: 7, retain: false, dup: false });
      t.equal((await w.expectPacket("pubrec")).reasonCode ?? 0, 0, "PUBREC while allowed");
      w.socket.destroy();
      await w.expectClose();
      ctx.auth!.setAcl("user w\ntopic read g5/#\n");
      const back = await connectAs(ctx, 5, "w", { clientId: id, clean: false, properties: { sessionExpiryInterval: 60 } });
      back.send({ cmd: "pubrel", messageId: 7 });
      t.equal((await back.expectPacket("pubcomp")).reasonCode ?? 0, 0, "PUBREL completes the flow");
      t.equal(await publish(back, "g5/t", "new", 2), RC.NOT_AUTHORIZED, "a new QoS 2 PUBLISH is refused (PUBREC 0x87)");
      await ctx.sync();
      t.same(seen, ["g5/t once"], "forwarded once, before the revocation; nothing at PUBREL");
    },
  },
  {
    id: "G6",
    title: "will topic not permitted → refused at CONNECT; revoked later → never published",
    auth: { users: users("u"), acl: "user u\ntopic write g6/allowed/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      const seen = observe(ctx, "g6/#");
      for (const v of VERSIONS) {
        const c = await ctx.open(v);
        c.write(connectFrame({ v, clientId: ctx.id("g6"), username: "u", password: "u-pw", will: { topic: "g6/forbidden", payload: "x" } }));
        await gone(t, c, { v5: RC.NOT_AUTHORIZED, v3Connack: V3_CONNACK.NOT_AUTHORIZED, atConnect: true, what: "forbidden will" });
      }
      const c = await connectAs(ctx, 4, "u", { will: { topic: "g6/allowed/w", payload: Buffer.from("w"), qos: 1, retain: false } });
      ctx.auth!.setAcl("user u\ntopic read g6/#\n");
      c.socket.destroy(); // abnormal close: the will is due
      await c.expectClose();
      await ctx.sync();
      t.same(seen, [], "the will was not published");
    },
  },
  {
    id: "G7",
    title: "a will published later (Will Delay; or restored from the store) is re-authorized first",
    auth: { users: users("u"), acl: "user u\ntopic write g7/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      const seen = observe(ctx, "g7/#");
      const will = (topic: string) => ({ topic, payload: Buffer.from("bye"), qos: 0 as const, retain: false, properties: { willDelayInterval: 10 } });
      const props = { sessionExpiryInterval: 60 };
      const a = await connectAs(ctx, 5, "u", { will: will("g7/a"), properties: props });
      a.socket.destroy();
      await a.expectClose();
      await ctx.sync();
      ctx.clock.advance(11_000);
      await ctx.sync();
      t.same(seen, ["g7/a bye"], "control: a delayed will is published while allowed");
      const b = await connectAs(ctx, 5, "u", { will: will("g7/b"), properties: props });
      b.socket.destroy();
      await b.expectClose();
      await ctx.sync();
      ctx.auth!.setAcl("user u\ntopic read g7/#\n");
      ctx.clock.advance(11_000);
      await ctx.sync();
      t.same(seen, ["g7/a bye"], "revoked before it was due: not published");
    },
  },
  {
    id: "G8",
    title: "normal DISCONNECT discards the will; v5 DISCONNECT 0x04 publishes it",
    run: async (ctx) => {
      const seen = observe(ctx, "g8/#");
      const w = (topic: string) => ({ topic, payload: Buffer.from("w"), qos: 0 as const, retain: false });
      for (const v of VERSIONS) {
        const c = await ctx.connect(v, { will: w(`g8/normal-v${v}`) });
        c.send({ cmd: "disconnect" });
        await c.expectClose();
      }
      const c = await ctx.connect(5, { will: w("g8/with-will") });
      c.send({ cmd: "disconnect", reasonCode: RC.DISCONNECT_WITH_WILL });
      await c.expectClose();
      await ctx.sync();
      ctx.t.same(seen, ["g8/with-will w"]);
    },
  },
  {
    id: "G9",
    title: "pattern home/%c/# (and %u) with + # / in the client id or user name → no access beyond the literal",
    auth: { users: { "x/+": "p", "y#": "p" }, acl: "pattern readwrite home/%c/#\npattern readwrite users/%u/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      for (const v of VERSIONS) {
        for (const clientId of ["+", "#", "a/b"]) {
          const c = await ctx.open(v);
          c.write(connectFrame({ v, clientId }));
          await gone(t, c, { v5: RC.CLIENT_IDENTIFIER_NOT_VALID, v3Connack: V3_CONNACK.IDENTIFIER_REJECTED, atConnect: true, what: `client id ${clientId}` });
        }
      }
      const seen = observe(ctx, "#");
      for (const user of ["x/+", "y#"]) {
        const c = await ctx.connect(5, { clientId: ctx.id("g9"), username: user, password: pw("p") });
        t.equal(await publish(c, "users/x/y/z", "1", 1), RC.NOT_AUTHORIZED, `${user}: no write below users/`);
        t.same(await subscribe(c, [["users/#", 1], ["home/#", 1]]), [RC.NOT_AUTHORIZED, RC.NOT_AUTHORIZED], `${user}: no wide subscriptions`);
      }
      const ok = await ctx.connect(5, { clientId: "dev1", username: "x/+", password: pw("p") });
      t.equal(await publish(ok, "home/dev1/t", "1", 1), 0, "a plain client id gets its own subtree");
      await ctx.sync();
      t.same(seen, ["home/dev1/t 1"]);
    },
  },
  {
    id: "G10",
    title: "receive-side check: a subscription wider than the read rights delivers only what may be read",
    auth: { users: users("x", "alice"), acl: "user x\ntopic read home/x/#\ntopic read marker/#\nuser alice\ntopic readwrite home/#\n" },
    run: async (ctx) => {
      const { t } = ctx;
      const alice = await connectAs(ctx, 5, "alice");
      // The checklist's case: home/+/status is wider than home/x/#, so it is refused outright.
      const x1 = await watchAs(ctx, await connectAs(ctx, 5, "x"), ["home/+/status"]);
      t.same(x1.granted, [RC.NOT_AUTHORIZED], "SUBACK 0x87");
      await publish(alice, "home/alice/status", "a", 1);
      t.same(topics(await x1.before()), [], "nothing delivered");
      // Read home/# minus a deny: the subscription is allowed, each message checked on delivery.
      ctx.auth!.setAcl("user x\ntopic read home/#\ntopic deny home/alice/#\ntopic read marker/#\nuser alice\ntopic readwrite home/#\n");
      const x2 = await watchAs(ctx, await connectAs(ctx, 4, "x"), ["home/+/status"]);
      t.same(x2.granted, [2], "allowed: a deny covers only part of it");
      await publish(alice, "home/alice/status", "a", 1);
      await publish(alice, "home/x/status", "x", 1);
      t.same(topics(await x2.before()), ["home/x/status x"], "alice's status is not delivered to x");
    },
  },
  {
    id: "G11",
    title: "$CONTROL/... (and $SYS) written by a client → denied, even with a matching ACL grant",
    auth: { users: users("admin"), acl: "user admin\ntopic readwrite #\ntopic readwrite $CONTROL/#\ntopic readwrite $SYS/#\n" },
    run: async (ctx) => {
      const seen = observe(ctx, "$CONTROL/#");
      const sys = observe(ctx, "$SYS/test/#");
      for (const v of VERSIONS) {
        const c = await connectAs(ctx, v, "admin");
        ctx.t.equal(await publish(c, "$CONTROL/dynamic-security/v1", "{}", 1), denied(v, "pub"), `v${v}: $CONTROL publish denied`);
        ctx.t.equal(await publish(c, "$SYS/test/x", "1", 1), denied(v, "pub"), `v${v}: $SYS publish denied`);
      }
      await ctx.sync();
      ctx.t.same([...seen, ...sys], [], "nothing routed");
    },
  },
  {
    id: "G12",
    title: "reload with an invalid or unreadable file keeps the previous policy (never allow-all)",
    auth: { users: users("u") },
    run: async (ctx) => {
      const { t } = ctx;
      // The harness's anonymous rules come first so the bystander keeps working (auth-fixture.ts).
      const base = "topic readwrite health/#\ntopic readwrite marker/#\n";
      const files: Record<string, string | Error> = { "/acl": `${base}user u\ntopic readwrite g12/ok/#\n` };
      const log = memoryLogger("debug");
      const svc = createAuthService(
        { acl_file: "/acl", login_failures: { max: 5, window: 60_000, ban: 300_000 } },
        {
          core: ctx.b.broker.core,
          clock: ctx.clock,
          log,
          readFile: (f) => {
            const v = files[f]!;
            if (v instanceof Error) throw v;
            return v;
          },
        },
      );
      await svc.start();
      const before = ctx.b.broker.core.auth!.acl;
      const checks = async (what: string) => {
        const c = await ctx.connect(5, { clientId: ctx.id("g12") });
        t.equal(await publish(c, "g12/other", "x", 1), RC.NOT_AUTHORIZED, `${what}: still denied`);
        t.same(await subscribe(c, "#", 0), [RC.NOT_AUTHORIZED], `${what}: # still denied`);
      };
      files["/acl"] = `${base}user u\ntopic readwrite g12/ok/#\ntopik oops\n`;
      await svc.reload!();
      t.equal(ctx.b.broker.core.auth!.acl, before, "invalid file: same ACL object");
      t.match(log.lines.join("\n"), /\/acl:5:1: expected topic, pattern or user.*keeping the previous/);
      await checks("invalid file");
      files["/acl"] = Object.assign(new Error("EMFILE: too many open files"), { code: "EMFILE" });
      await svc.reload!();
      t.equal(ctx.b.broker.core.auth!.acl, before, "unreadable file (fd exhaustion): same ACL object");
      t.match(log.lines.join("\n"), /\/acl: cannot read the ACL file \(EMFILE\)/);
      await checks("unreadable file");
      files["/acl"] = base;
      await svc.reload!();
      t.not(ctx.b.broker.core.auth!.acl, before, "a valid file is taken");
    },
  },
];

/** An ACL with the harness's anonymous rules (auth-fixture.ts), without re-checking sessions. */
function aclFrom(text: string) {
  const r = parseAclFile(`topic readwrite health/#\ntopic readwrite marker/#\n${text}`);
  if (!r.ok) throw new Error("bad acl");
  return createAcl(r.rules);
}
