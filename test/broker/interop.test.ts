// The embedded broker against Debian's mosquitto_pub/mosquitto_sub (a second, independent MQTT
// implementation) and the `mqtt` npm client, at MQTT 3.1.1 and 5.0: retained messages, QoS 1/2
// exactly once with payloads intact, wills, persistent sessions and v5 user properties.
// Synchronised on process output (`-d` traces the SUBACK), exits, messages and broker state; never sleeps.
import { writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { startBroker, type TestBroker } from "../support/broker.js";
import { collect, connect, end } from "../support/mqtt.js";
import { killOnTeardown, runProcess, type Spawned, spawnProcess } from "../support/spawn.js";

const VERSIONS = [{ flag: "mqttv311" }, { flag: "mqttv5" }] as const;

type Flag = (typeof VERSIONS)[number]["flag"];

const base = (port: number, flag: Flag) => ["-h", "127.0.0.1", "-p", String(port), "-V", flag];

/**
 * mosquitto_sub with debug output; `ready` resolves once the broker acknowledged the subscription.
 * It waits for "Subscribed (mid: n)", printed after "received SUBACK" once the SUBACK is handled:
 * mosquitto_sub 2.0.11's SIGINT handler calls mosquitto_disconnect_v5(), which deadlocks on a
 * futex if the signal lands while libmosquitto is still processing the SUBACK (15 of 40 runs hung
 * when signalled at "received SUBACK"; 0 of 400 at "Subscribed").
 */
function mosquittoSub(t: Tap, port: number, flag: Flag, args: string[]): { p: Spawned; ready: Promise<string> } {
  const p = spawnProcess("mosquitto_sub", [...base(port, flag), "-d", ...args], { lineBuffered: true });
  killOnTeardown(t, p);
  return { p, ready: p.waitFor(/^Subscribed \(mid: \d+\)/, { stream: "stdout" }) };
}

async function mosquittoPub(port: number, flag: Flag, args: string[], stdin?: string) {
  const r = await runProcess("mosquitto_pub", [...base(port, flag), ...args], stdin === undefined ? {} : { stdin });
  if (r.code !== 0) throw new Error(`mosquitto_pub ${args.join(" ")} exited ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/**
 * `-F` output of mosquitto_sub: QoS, retain flag, topic, payload in hex (so binary payloads
 * survive). `@` starts a date format in -F, hence a word as the prefix.
 */
const FORMAT = ["-F", "MSG %q %r %t %x"];
function parseFormatted(lines: string[]) {
  const msgs: Array<{ qos: number; retain: boolean; topic: string; payload: Buffer }> = [];
  for (const l of lines) {
    const m = /^MSG (\d) (\d) (\S+) ([0-9a-f]*)$/.exec(l);
    if (m) msgs.push({ qos: Number(m[1]), retain: m[2] === "1", topic: m[3]!, payload: Buffer.from(m[4]!, "hex") });
  }
  return msgs;
}

/** What the helpers need of a tap test: somewhere to register cleanup. */
type Tap = Parameters<typeof killOnTeardown>[0];

/** Every byte value, and text that is not ASCII: payloads that must arrive unchanged. */
const BINARY = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
const TEXTS = ["plain", "with spaces and = signs", "ünïcödé ✓ 🙂", "x".repeat(3000), '{"json":[1,2,3]}'];

t.test("retained: mosquitto_pub -r is stored and replayed; -n -r deletes it", async (t) => {
  t.setTimeout(30_000);
  const b = await startBroker();
  t.teardown(b.stop);
  for (const { flag } of VERSIONS) {
    const topic = `ret/${flag}/lamp`;
    await mosquittoPub(b.port, flag, ["-r", "-q", "1", "-t", topic, "-m", "first"]);
    await mosquittoPub(b.port, flag, ["-r", "-q", "1", "-t", topic, "-m", "on ✓"]);
    const later = await runProcess("mosquitto_sub", [...base(b.port, flag), "-t", topic, "-C", "1", "-v"]);
    t.equal(later.code, 0, `${flag}: mosquitto_sub -C 1 exits after the retained message`);
    t.equal(later.stdout, `${topic} on ✓`, `${flag}: the latest retained message, once`);

    // Deleted: a subscriber to both the topic and a marker sees the marker first (nothing retained).
    await mosquittoPub(b.port, flag, ["-n", "-r", "-t", topic]);
    const marker = `ret/${flag}/marker`;
    const s = mosquittoSub(t, b.port, flag, ["-t", topic, "-t", marker, "-C", "1", "-v"]);
    await s.ready;
    await mosquittoPub(b.port, flag, ["-t", marker, "-m", "m"]);
    t.equal((await s.p.waitExit()).code, 0);
    t.same(
      s.p.out.filter((l) => l.startsWith("ret/")),
      [`${marker} m`],
      `${flag}: after -n -r nothing is retained on ${topic}`,
    );
  }
});

for (const { flag } of VERSIONS) {
  for (const qos of [1, 2] as const) {
    t.test(`QoS ${qos} mosquitto_pub (${flag}) -> mqtt v5 subscriber: intact, in order, exactly once`, async (t) => {
      t.setTimeout(30_000);
      const b = await startBroker();
      t.teardown(b.stop);
      const dir = await mkdtemp(join(tmpdir(), "hub-interop-"));
      t.teardown(() => rm(dir, { recursive: true, force: true }));
      const sub = await connect(b.url, { protocolVersion: 5 });
      const other = await connect(b.url, { protocolVersion: 5 });
      t.teardown(() => end(sub, other));
      const rx = collect(sub);
      const prefix = `q/${flag}/${qos}`;
      await sub.subscribeAsync(`${prefix}/#`, { qos: 2 });

      // -l: one connection, one message per stdin line.
      await mosquittoPub(b.port, flag, ["-q", String(qos), "-t", `${prefix}/lines`, "-l"], `${TEXTS.join("\n")}\n`);
      const file = join(dir, "payload.bin");
      writeFileSync(file, BINARY);
      await mosquittoPub(b.port, flag, ["-q", String(qos), "-t", `${prefix}/file`, "-f", file]);
      // Anything duplicated would arrive before this marker, published after both publishers finished.
      await other.publishAsync(`${prefix}/marker`, "end", { qos: 1 });
      const got = await rx.count(TEXTS.length + 2);
      const payloads = got.map((m) => Buffer.from(m.packet.payload));
      t.same(
        got.map((m) => m.topic),
        [...TEXTS.map(() => `${prefix}/lines`), `${prefix}/file`, `${prefix}/marker`],
        "each message once, in order, nothing before the marker twice",
      );
      t.same(
        payloads.slice(0, TEXTS.length).map((p) => p.toString("utf8")),
        TEXTS,
        "text payloads intact",
      );
      t.ok(payloads[TEXTS.length]!.equals(BINARY), "binary payload (every byte value) intact");
      t.same(
        got.slice(0, -1).map((m) => m.packet.qos),
        got.slice(0, -1).map(() => qos),
        `delivered at QoS ${qos} (min of publish and granted QoS 2)`,
      );
    });

    t.test(`QoS ${qos} mqtt v5 -> mosquitto_sub -q 2 -C n (${flag}): intact, in order, exactly once`, async (t) => {
      t.setTimeout(30_000);
      const b = await startBroker();
      t.teardown(b.stop);
      const prefix = `q/${flag}/${qos}`;
      const payloads = [...TEXTS.map((s) => Buffer.from(s)), BINARY, Buffer.alloc(0)];
      const s = mosquittoSub(t, b.port, flag, ["-q", "2", "-t", `${prefix}/#`, "-C", String(payloads.length), ...FORMAT]);
      await s.ready;
      const pub = await connect(b.url, { protocolVersion: 5 });
      t.teardown(() => end(pub));
      for (const [i, p] of payloads.entries()) await pub.publishAsync(`${prefix}/${i}`, p, { qos });
      t.equal((await s.p.waitExit()).code, 0, "mosquitto_sub exits after n messages");
      const got = parseFormatted(s.p.out);
      t.same(
        got.map((m) => m.topic),
        payloads.map((_, i) => `${prefix}/${i}`),
        "each message once, in order",
      );
      t.same(
        got.map((m) => m.payload.toString("hex")),
        payloads.map((p) => p.toString("hex")),
        "payloads intact (including every byte value and an empty one)",
      );
      t.same(
        got.map((m) => m.qos),
        payloads.map(() => qos),
        `delivered at QoS ${qos}`,
      );
      t.ok(
        got.every((m) => !m.retain),
        "live messages carry RETAIN=0",
      );
      // Its own debug trace: every PUBLISH arrived once, without DUP (no redelivery was needed).
      t.equal(s.p.out.filter((l) => /received PUBLISH \(d0, q\d/.test(l)).length, payloads.length);
      t.equal(s.p.out.filter((l) => /received PUBLISH \(d1/.test(l)).length, 0);
    });
  }
}

/** A watcher subscribed to `will/<flag>/#`, recording what arrives. */
async function watcher(t: Tap, url: string, flag: Flag) {
  const c = await connect(url, { protocolVersion: 5 });
  t.teardown(() => end(c));
  const rx = collect(c);
  await c.subscribeAsync(`will/${flag}/#`, { qos: 1 });
  /** Publishes a marker and returns the topics received since `from`, up to and including it. */
  const throughMarker = async (name: string, from: number) => {
    const topic = `will/${flag}/marker/${name}`;
    await c.publishAsync(topic, "m", { qos: 1 });
    for (let n = from + 1; ; n++) {
      const got = await rx.count(n);
      if (got[n - 1]!.topic === topic) return got.slice(from).map((m) => m.topic);
    }
  };
  /** The first message on `topic` received since `from`. */
  const next = async (topic: string, from: number) => {
    for (let n = from + 1; ; n++) {
      const got = await rx.count(n);
      if (got[n - 1]!.topic === topic) return got[n - 1]!;
    }
  };
  return { c, rx, throughMarker, next };
}

/**
 * Resolves once the broker has handled the end of `clientId`'s connection (its clean session is
 * removed in the same step that publishes or discards the will). The DISCONNECT and the socket's
 * close arrive in separate turns of the event loop, so without this a marker published by another
 * client could overtake a wrongly published will and hide it.
 */
async function sessionGone(b: TestBroker, clientId: string): Promise<void> {
  while (b.broker.core.sessions.has(clientId)) await new Promise((resolve) => setImmediate(resolve));
}

function willArgs(flag: Flag, name: string): string[] {
  return ["--will-topic", `will/${flag}/${name}`, "--will-payload", `${name} gone`, "--will-qos", "1", "-i", willId(flag, name)];
}
const willId = (flag: Flag, name: string) => `will-${flag}-${name}`;

for (const { flag } of VERSIONS) {
  t.test(`will (${flag}): published when mosquitto_sub is killed, not when it ends normally`, async (t) => {
    t.setTimeout(30_000);
    const b = await startBroker();
    t.teardown(b.stop);
    const w = await watcher(t, b.url, flag);

    const killed = mosquittoSub(t, b.port, flag, ["-t", "nothing", ...willArgs(flag, "killed")]);
    await killed.ready;
    let from = w.rx.got.length;
    killed.p.kill("SIGKILL");
    t.equal((await killed.p.waitExit()).signal, "SIGKILL");
    const will = await w.next(`will/${flag}/killed`, from);
    t.equal(will.payload, "killed gone", "SIGKILL (no DISCONNECT): the will is published");
    t.equal(will.packet.qos, 1, "at the will QoS");
    t.equal(will.packet.retain, false);

    // -C 1: mosquitto_sub sends a normal DISCONNECT (reason 0x00 in v5) and exits.
    const counted = mosquittoSub(t, b.port, flag, ["-t", `in/${flag}`, "-C", "1", ...willArgs(flag, "counted")]);
    await counted.ready;
    await w.c.publishAsync(`in/${flag}`, "go", { qos: 0 });
    t.equal((await counted.p.waitExit()).code, 0);
    await sessionGone(b, willId(flag, "counted"));
    from = w.rx.got.length;
    t.same(await w.throughMarker("after-count", from), [`will/${flag}/marker/after-count`], "-C 1 exit: no will (MQTT-3.1.2-10)");

    // SIGINT: mosquitto_sub 2.0 disconnects cleanly. At 3.1.1 a DISCONNECT discards the will. At v5
    // it sends reason 0x04 "Disconnect with Will Message" (seen on the wire: e0 01 04), which asks
    // the broker to publish the will all the same (MQTT-3.14.4-3 / §3.14.2.1).
    const interrupted = mosquittoSub(t, b.port, flag, ["-t", "nothing", ...willArgs(flag, "interrupted")]);
    await interrupted.ready;
    from = w.rx.got.length;
    interrupted.p.kill("SIGINT");
    t.equal((await interrupted.p.waitExit()).code, 0);
    if (flag === "mqttv5") {
      const m = await w.next(`will/${flag}/interrupted`, from);
      t.equal(m.payload, "interrupted gone", "v5 SIGINT (DISCONNECT 0x04): the will is published");
    } else {
      await sessionGone(b, willId(flag, "interrupted"));
      t.same(await w.throughMarker("after-sigint", from), [`will/${flag}/marker/after-sigint`], "3.1.1 SIGINT: DISCONNECT, no will");
    }
  });
}

for (const { flag } of VERSIONS) {
  t.test(`persistent session (${flag}): mosquitto_sub -c gets what was queued while it was offline`, async (t) => {
    t.setTimeout(30_000);
    const b = await startBroker();
    t.teardown(b.stop);
    const id = `keeper-${flag}`;
    const topic = `ps/${flag}`;
    const args = ["-c", "-i", id, "-q", "1", "-t", topic, "-C", "1", "-v"];

    const first = mosquittoSub(t, b.port, flag, args);
    await first.ready;
    await mosquittoPub(b.port, flag, ["-q", "1", "-t", topic, "-m", "while online"]);
    t.equal((await first.p.waitExit()).code, 0);
    t.ok(first.p.out.includes(`${topic} while online`));

    await mosquittoPub(b.port, flag, ["-q", "1", "-t", topic, "-m", "while offline"]);
    await mosquittoPub(b.port, flag, ["-q", "0", "-t", topic, "-m", "qos 0 offline"]);
    const again = await runProcess("mosquitto_sub", [...base(b.port, flag), ...args]);
    t.equal(again.code, 0);
    t.equal(again.stdout, `${topic} while offline`, "the queued QoS 1 message, and not the one already acknowledged");
  });
}

t.test("v5 user properties from mosquitto_pub -D reach an mqtt v5 subscriber, in order, duplicates kept", async (t) => {
  t.setTimeout(30_000);
  const b = await startBroker();
  t.teardown(b.stop);
  const sub = await connect(b.url, { protocolVersion: 5 });
  t.teardown(() => end(sub));
  const rx = collect(sub);
  await sub.subscribeAsync("up/#", { qos: 1 });
  const prop = (k: string, v: string) => ["-D", "publish", "user-property", k, v];
  await mosquittoPub(b.port, "mqttv5", ["-t", "up/a", "-q", "1", "-m", "x", ...prop("k", "v"), ...prop("room", "küche 2"), ...prop("k", "w")]);
  const [m] = await rx.count(1);
  t.equal(m!.payload, "x");
  // MQTT-3.3.2-17/18: forwarded unaltered, order kept; mqtt-packet groups a repeated key into an array.
  t.same(m!.packet.properties?.userProperties, { k: ["v", "w"], room: "küche 2" });
});
