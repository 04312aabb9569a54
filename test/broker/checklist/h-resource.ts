// Checklist section H (resource / DoS) rows that fit the per-row broker. H1–H4 have focused tests
// (limits.test.ts, retained.test.ts, flow-control.test.ts); H5, reconnect flapping, is a row here:
// a client id in a reconnect loop is banned (CONNACK 0x8A / 3.1.1 code 5) before authentication,
// logged once per ban, while connected clients, including the one holding that id, are unaffected;
// CONNECTs that fail authentication do not count (a stranger cannot get a device's id banned).
import { RC, V3_CONNACK } from "../../../hub/broker/reason-codes.js";
import { connectFrame, publish, subscribe } from "../../support/raw-client.js";
import { connectAs } from "./g-security.js";
import { gone, type Row } from "./ctx.js";

const FLAP = { maxConnects: 5, windowMs: 60_000, banMs: 300_000 };

export const rowsH: Row[] = [
  {
    id: "H5",
    title: "reconnect loop with one client id → banned (0x8A) before auth, logged once; others unaffected",
    limits: { flapping: FLAP },
    run: async (ctx) => {
      const { t } = ctx;
      const flappy = ctx.id("flappy");
      // Refused connections are logged at debug level only; the ban is one warning.
      const banLines = () => ctx.b.lines.filter((l) => l.includes(" WARN ") && l.includes("reconnects too often")).length;
      // A steady client, connected before the loop and subscribed to what the flappy one publishes.
      const steady = await ctx.connect(5, { clientId: ctx.id("steady") });
      await subscribe(steady, "h5/#", 1);
      // maxConnects attempts within the window are fine (the loop at 100/s of the checklist, with the
      // fake clock standing still: all inside one window).
      for (let i = 0; i < FLAP.maxConnects - 1; i++) {
        const c = await ctx.connect(4, { clientId: flappy });
        c.send({ cmd: "disconnect" });
        await c.expectClose();
      }
      const holder = await ctx.connect(5, { clientId: flappy });
      t.equal(banLines(), 0, "no ban within the limit");
      // The next attempts are refused at once, whatever the version or the credentials.
      for (const v of [5, 4] as const) {
        const c = await ctx.open(v);
        c.socket.write(connectFrame({ v, clientId: flappy, username: "someone", password: "guess" }));
        await gone(t, c, { v5: RC.BANNED, v3Connack: V3_CONNACK.NOT_AUTHORIZED, atConnect: true, what: `v${v} attempt while banned` });
      }
      t.equal(banLines(), 1, "one log line (warning) for the ban, not one per attempt");
      t.ok(ctx.b.lines.some((l) => l.includes(" WARN ") && l.includes(`client=${flappy} `)), "the line names the client id");
      // The connection that holds the id was not taken over, and keeps working.
      t.notOk(holder.closed, "the connected client with that id is not disconnected");
      t.equal(await publish(holder, "h5/still", "here", 1), 0, "and still publishes");
      const p = await steady.expectPacket("publish");
      t.equal(p.topic, "h5/still", "the steady client receives it");
      steady.send({ cmd: "puback", messageId: p.messageId! });
      // Another client id is not affected.
      const other = await ctx.connect(4, { clientId: ctx.id("other") });
      t.notOk(other.closed, "another client id connects");
      // After the ban the id may connect again (the holder is then taken over, as usual).
      ctx.clock.advance(FLAP.banMs + 1);
      const again = await ctx.connect(5, { clientId: flappy });
      t.notOk(again.closed, "accepted again once the ban has ended");
      await gone(t, holder, { v5: RC.SESSION_TAKEN_OVER, what: "the old connection" });
    },
  },
  {
    id: "H5",
    title: "CONNECTs with a device's client id that fail authentication do not count towards its flapping ban",
    limits: { flapping: { maxConnects: 2, windowMs: 60_000, banMs: 300_000 } },
    auth: { users: { dev: "dev-pw" } },
    run: async (ctx) => {
      const { t } = ctx;
      const id = ctx.id("device");
      // Four wrong passwords: below the failed-login limit (5), above the flapping limit (2).
      for (let i = 0; i < 4; i++) {
        const c = await ctx.open(5);
        c.socket.write(connectFrame({ v: 5, clientId: id, username: "dev", password: "wrong" }));
        await gone(t, c, { v5: RC.BAD_USERNAME_OR_PASSWORD, atConnect: true, what: `wrong password ${i + 1}` });
      }
      for (let i = 0; i < 2; i++) {
        const c = await connectAs(ctx, 5, "dev", { clientId: id });
        t.notOk(c.closed, `the device connects (${i + 1})`);
        c.send({ cmd: "disconnect" });
        await c.expectClose();
      }
      const c = await ctx.open(5);
      c.socket.write(connectFrame({ v: 5, clientId: id, username: "dev", password: "dev-pw" }));
      await gone(t, c, { v5: RC.BANNED, atConnect: true, what: "its third accepted connection in the window" });
    },
  },
];
