// End-to-end fault tests of the broker's durable state with the built hub as a child process
// (`npm run build` first): kill -9 during a QoS 1 stream (mosquitto_pub -> persistent mosquitto_sub,
// the acceptance test), a torn database tail, a full disk on a small tmpfs, SIGTERM under
// load. The 20 seeded kill -9 cycles are in faults-kill.test.ts (a file of their own, so tap runs
// both in parallel). Synchronised on log lines, acks and messages, never on sleeps.
import { execFileSync } from "node:child_process";
import { closeSync, cpSync, mkdirSync, openSync, readSync, rmSync, statSync, truncateSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import mqtt from "mqtt";
import t from "tap";
import { freePort, killOnTeardown, spawnProcess } from "../../support/spawn.js";
import { kill9, startHub, tempDir as dir, writeConfig } from "./fault-support.js";

t.test("kill -9 during a QoS 1 stream from mosquitto_pub -q 1 to a persistent mosquitto_sub -c -q 1: every acknowledged message arrives", async (t) => {
  const d = dir(t);
  const port = await freePort();
  const config = writeConfig(d, port);
  let hub = await startHub(t, config);
  const subArgs = ["-h", "127.0.0.1", "-p", String(port), "-c", "-q", "1", "-i", "sub1", "-t", "stream/#", "-d"];
  let sub = spawnProcess("mosquitto_sub", subArgs, { lineBuffered: true });
  killOnTeardown(t, sub);
  await sub.waitFor(/^Subscribed \(mid: \d+\)/);
  const N = 1500;
  const lines = Array.from({ length: N }, (_, i) => `m${i + 1}`).join("\n");
  const pub = spawnProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", String(port), "-q", "1", "-i", "pub1", "-t", "stream/x", "-l", "-d"], {
    stdin: `${lines}\n`,
    lineBuffered: true,
  });
  killOnTeardown(t, pub);
  // Kill in the middle of the stream: after 300 PUBACKs.
  await pub.waitForCount(/received PUBACK/, 300, { timeoutMs: 30_000 });
  await kill9(hub);
  pub.kill("SIGKILL");
  await pub.exited.catch(() => undefined);
  // mosquitto_pub -l numbers its messages 1, 2, ... in line order: mid n carries "m<n>".
  const acked = new Set<string>();
  for (const l of pub.out) {
    const m = /received PUBACK \(Mid: (\d+), RC:0\)/.exec(l);
    if (m) acked.add(`m${m[1]}`);
  }
  t.ok(acked.size >= 300 && acked.size < N, `killed mid-stream (${acked.size} of ${N} acknowledged)`);

  hub = await startHub(t, config);
  t.match(hub.out.join("\n"), /broker state restored/);
  // mosquitto_sub reconnects by itself (clean session off); restart it if it gave up.
  if (sub.hasExited()) {
    sub = spawnProcess("mosquitto_sub", subArgs, { lineBuffered: true });
    killOnTeardown(t, sub);
  }
  const have = () => {
    const got = new Set(sub.out.filter((l) => /^m\d+$/.test(l)));
    return [...acked].every((m) => got.has(m));
  };
  await sub.waitFor(() => have(), { timeoutMs: 30_000 }).catch(() => undefined);
  const got = new Set(sub.out.filter((l) => /^m\d+$/.test(l)));
  const missing = [...acked].filter((m) => !got.has(m));
  t.same(missing, [], "every acknowledged message reached the persistent subscriber");
});

t.test("a torn database tail: the hub starts, logs what it did, and works", async (t) => {
  const d = dir(t);
  const cases: Array<[string, (db: string) => void]> = [
    ["WAL truncated by 123 bytes", (db) => truncateSync(`${db}-wal`, Math.max(0, statSync(`${db}-wal`).size - 123))],
    ["main file cut in half", (db) => truncateSync(db, Math.floor(statSync(db).size / 2))],
    [
      "a byte flipped in the WAL's last 4 KiB and the main file's header page",
      (db) => {
        for (const [f, at] of [
          [`${db}-wal`, Math.max(0, statSync(`${db}-wal`).size - 2000)],
          [db, 100],
        ] as const) {
          const fd = openSync(f, "r+");
          const b = Buffer.alloc(1);
          readSync(fd, b, 0, 1, at);
          b[0] = b[0]! ^ 0xff;
          writeSync(fd, b, 0, 1, at);
          closeSync(fd);
        }
      },
    ],
  ];
  // One state file written by a hub and cut off by kill -9, copied for each way of tearing it.
  const port = await freePort();
  const src = join(d, "src");
  mkdirSync(src);
  const hub = await startHub(t, writeConfig(src, port));
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { clientId: "tear", clean: false, reconnectPeriod: 0 });
  await c.subscribeAsync("x/#", { qos: 1 });
  c.end(true);
  const p = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { reconnectPeriod: 0 });
  for (let i = 0; i < 200; i += 20) {
    await Promise.all(Array.from({ length: 20 }, (_, j) => p.publishAsync(`x/${i + j}`, Buffer.alloc(300, i + j), { qos: 1, retain: (i + j) % 2 === 0 })));
  }
  p.end(true);
  await kill9(hub);
  const walSize = statSync(join(src, "state", "broker.db-wal"), { throwIfNoEntry: false })?.size ?? 0;
  if (walSize === 0) t.comment("no WAL after kill -9 (a checkpoint emptied it): the WAL cases tear nothing");

  for (const [name, tear] of cases) {
    const sd = join(d, name.replace(/\W+/g, "-"));
    cpSync(src, sd, { recursive: true });
    const db = join(sd, "state", "broker.db");
    if (walSize > 0) tear(db);
    const port2 = await freePort();
    const h = await startHub(t, writeConfig(sd, port2));
    t.match(h.out.join("\n"), /broker state restored|moved it aside/, `${name}: started and said what it did`);
    const q = await mqtt.connectAsync(`mqtt://127.0.0.1:${port2}`, { reconnectPeriod: 0 });
    await q.subscribeAsync("after", { qos: 1 });
    const arrived = new Promise<string>((resolve) => q.once("message", (_t, m) => resolve(m.toString())));
    await q.publishAsync("after", "works", { qos: 1 });
    t.equal(await arrived, "works", `${name}: QoS 1 round trip after recovery`);
    q.end(true);
    h.kill("SIGTERM");
    t.equal((await h.waitExit()).code, 0, `${name}: clean stop`);
  }
});

t.test("a full disk: QoS 1 refused with 0x97, QoS 0 flows, the fault is reported, writes resume by themselves", async (t) => {
  if (process.getuid?.() !== 0) {
    t.comment("skipped: needs root to mount a small tmpfs (not root here)");
    t.plan(0, "needs root to mount a small tmpfs");
    return;
  }
  const d = dir(t);
  const mnt = join(d, "tmpfs");
  mkdirSync(mnt);
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mnt], { stdio: "pipe" });
  } catch (err) {
    const why = `cannot mount a tmpfs here: ${String((err as Error).message).split("\n")[0]}`;
    t.comment(`skipped: ${why}`);
    t.plan(0, why);
    return;
  }
  t.teardown(() => {
    try {
      execFileSync("umount", ["-l", mnt], { stdio: "pipe" });
    } catch {
      // already gone
    }
  });
  const port = await freePort();
  const config = writeConfig(d, port, join(mnt, "state"));
  let hub = await startHub(t, config);
  // Leave ~600 KiB free.
  writeFileSync(join(mnt, "filler"), Buffer.alloc(1_400_000, 1));
  const url = `mqtt://127.0.0.1:${port}`;
  const watch = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  await watch.subscribeAsync(["$SYS/broker/store/status", "live/#"], { qos: 0 });
  const seen: string[] = [];
  watch.on("message", (topic, m) => seen.push(`${topic} ${m.toString()}`));
  const pub = await mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 0 });
  let refusedAt = -1;
  for (let i = 0; i < 100 && refusedAt < 0; i++) {
    const rc = await new Promise<number>((resolve) =>
      pub.publish(`big/${i}`, Buffer.alloc(64 * 1024, i), { qos: 1, retain: true }, (err, packet) => {
        resolve(err ? ((err as { code?: number }).code ?? 0x80) : ((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0));
      }),
    );
    if (rc === 0x97) refusedAt = i;
  }
  t.ok(refusedAt > 0, `QoS 1 refused with 0x97 once the disk was full (message ${refusedAt})`);
  await hub.waitFor(/cannot write the broker state file/);
  const live = new Promise<void>((resolve) => watch.on("message", (topic) => topic === "live/x" && resolve()));
  pub.publish("live/x", "qos0", { qos: 0 });
  await live;
  t.pass("QoS 0 keeps flowing");
  t.ok(seen.some((s) => /^\$SYS\/broker\/store\/status failing/.test(s)), "status topic says failing");
  rmSync(join(mnt, "filler"));
  await hub.waitFor(/durable operation resumed/, { timeoutMs: 20_000 });
  const rc = await new Promise<number>((resolve) =>
    pub.publish("ok/1", "ok", { qos: 1 }, (err, packet) => resolve(err ? 0x80 : ((packet as { reasonCode?: number } | undefined)?.reasonCode ?? 0))),
  );
  t.equal(rc, 0, "QoS 1 acknowledged again without a restart");
  pub.end(true);
  watch.end(true);
  hub.kill("SIGTERM");
  await hub.waitExit();
  hub = await startHub(t, config);
  t.match(hub.out.join("\n"), /broker state restored/, "the file is intact after the episode");
  t.notMatch(hub.out.join("\n"), /moved it aside/);
});

t.test("SIGTERM under load: acknowledged messages survive", async (t) => {
  const d = dir(t);
  const port = await freePort();
  const config = writeConfig(d, port);
  let hub = await startHub(t, config);
  const url = `mqtt://127.0.0.1:${port}`;
  const s = await mqtt.connectAsync(url, { clientId: "term-sub", clean: false, reconnectPeriod: 0 });
  await s.subscribeAsync("load/#", { qos: 1 });
  s.end(true); // offline: everything goes to its stored queue
  const pubs = await Promise.all([1, 2, 3].map((i) => mqtt.connectAsync(url, { clientId: `term-p${i}`, reconnectPeriod: 0 })));
  const acked = new Set<string>();
  let n = 0;
  let signalled = false;
  const exited = new Promise<void>((resolve) => {
    for (const [i, p] of pubs.entries()) {
      const loop = () => {
        if (signalled) return;
        const payload = `p${i}-${++n}`;
        p.publish("load/x", payload, { qos: 1 }, (err) => {
          if (!err) acked.add(payload);
          if (acked.size === 300 && !signalled) {
            signalled = true;
            hub.kill("SIGTERM");
            resolve();
          }
          loop();
        });
      };
      for (let w = 0; w < 5; w++) loop();
    }
  });
  await exited;
  t.equal((await hub.waitExit()).code, 0, "clean exit under load");
  for (const p of pubs) p.end(true);
  hub = await startHub(t, config);
  // The handler is attached before CONNACK: queued messages follow it in the same read.
  const s2 = mqtt.connect(url, { clientId: "term-sub", clean: false, reconnectPeriod: 0 });
  const got = new Set<string>();
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${[...acked].filter((m) => got.has(m)).length} of ${acked.size}`)), 20_000);
    const check = () => {
      if ([...acked].every((m) => got.has(m))) {
        clearTimeout(timer);
        resolve();
      }
    };
    s2.on("message", (_t, m) => {
      got.add(m.toString());
      check();
    });
    check();
  });
  t.pass(`all ${acked.size} acknowledged messages arrived after the restart`);
  s2.end(true);
});
