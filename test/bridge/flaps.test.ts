// Fault test "Uplink flaps" (shared/broker-checklist.md, Fault tests 5): the bridge's uplink goes
// through blackhole 30 s, reset, refuse 10 s, latency 500 ± 200 ms, 2 KiB/s, and a connection cut
// mid-packet, while sensors publish 10 messages per (fake) second at QoS 1 and QoS 2. Then: the
// blackhole was detected at 1.5 × keepalive, reconnects were backed off, nothing was dropped,
// every QoS 1 message arrived upstream in order (repeats allowed) and every QoS 2 one exactly once,
// and local delivery never stopped. Bridge time (keep-alive, backoff) is a fake clock advanced one
// second per "tick"; the proxy's latency and bandwidth are real time.
import t from "tap";
import { collect, connect, end } from "../support/mqtt.js";
import { type Cloud, missingTools, startMosquitto } from "./fixtures/cloud.js";
import { harness, tempDir, until } from "./fixtures/harness.js";

const missing = missingTools();
if (missing) {
  t.test("uplink flaps", { skip: missing }, async () => {});
} else {
  let cloud: Cloud;
  t.before(async () => {
    cloud = await startMosquitto(tempDir(t));
  });
  t.teardown(() => cloud?.stop());

  t.test("uplink flaps: detection, backoff, and afterwards every message delivered (QoS 1 in order, QoS 2 exactly once)", async (t) => {
    const watcher = await connect(cloud.url, { protocolVersion: 5, clientId: "watch-flaps" });
    t.teardown(() => end(watcher));
    const rx = collect(watcher);
    await watcher.subscribeAsync("cf/#", { qos: 2 });
    const h = await harness(t, cloud.port, {
      client_id: "hub-flaps",
      keepalive: "10s",
      connect_timeout: "5s",
      max_inflight: 64,
      topics: [
        { pattern: "q1/#", qos: 1, local_prefix: "f/", remote_prefix: "cf/" },
        { pattern: "q2/#", qos: 2, local_prefix: "f/", remote_prefix: "cf/" },
      ],
    });
    const local = await h.watch("f/#");
    const count = (re: RegExp) => h.log.lines.filter((l) => re.test(l)).length;
    let n = 0;
    /** One fake second: 5 readings at QoS 1 and 5 at QoS 2, then the clock moves on. */
    const tick = async () => {
      for (let i = 0; i < 5; i++, n++) {
        await h.pub("f/q1/s", String(n), 1);
        await h.pub("f/q2/s", String(n), 2);
      }
      h.clock.advance(1_000);
      await new Promise((r) => setImmediate(r));
    };
    const ticks = async (k: number) => {
      for (let i = 0; i < k; i++) await tick();
    };
    /** Fires pending retries (only once every attempt so far has ended) until the bridge is online. */
    const online = () =>
      until(
        "online",
        () => {
          if (h.bridge.stats().online) return true;
          if (count(/ connecting url=/) === count(/cannot connect upstream|uplink lost/)) h.clock.advance(4_000);
          return false;
        },
        20_000,
      );
    const settled = () =>
      until("everything acknowledged", () => h.bridge.stats().sent === 2 * n, 20_000).catch((err) => {
        h.bridge.queue()?.flush();
        throw new Error(`${(err as Error).message}: published ${2 * n}, ${JSON.stringify(h.bridge.stats())}\n${h.log.lines.slice(-15).join("\n")}`);
      });

    await ticks(3);
    await settled(); // nothing unanswered: no late ack can restart the keep-alive count below

    // Blackhole 30 s: given up at 15 s (1.5 x 10 s keepalive) although readings keep coming.
    h.proxy.blackhole();
    await ticks(14);
    t.ok(h.bridge.stats().online, "still online after 14 s of silence");
    await tick();
    await h.status("offline");
    t.pass("offline once 15 s of silence had passed");
    await ticks(15);
    h.bridge.queue()!.flush();
    t.ok(h.bridge.stats().queueDepth >= 150, "readings queue while down");
    h.proxy.restore();
    await online();

    // Reset.
    h.proxy.cut();
    h.proxy.restore();
    await h.status("offline");
    await tick();
    await online();

    // Refuse 10 s: attempts are backed off (reconnect_min 1 s, max 4 s).
    const before = h.proxy.accepted;
    h.proxy.cut();
    await h.status("offline");
    for (let i = 0; i < 10; i++) {
      await tick();
      const attempts = count(/ connecting url=/);
      await until("the attempt ended", () => count(/cannot connect upstream|uplink lost/) === attempts);
    }
    const tries = h.proxy.accepted - before;
    t.ok(tries >= 2 && tries <= 10, `${tries} attempts in 10 s of refusal: at most one per reconnect_min on average`);
    h.proxy.restore();
    await online();
    await settled(); // the backlog is drained before the slow phases

    // Latency 500 ± 200 ms (seeded), then 2 KiB/s: slow is not dead, nothing reordered.
    let seed = 42;
    h.proxy.delay(500, 200, () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    });
    await ticks(3);
    await settled();
    h.proxy.throttle(2048);
    await ticks(3);
    await settled();
    t.ok(h.bridge.stats().online, "a slow link stayed up");

    // Cut mid-packet.
    h.proxy.restore();
    h.proxy.limitData(25);
    await ticks(2);
    await h.status("offline");
    await online();
    await ticks(2);

    await until("every reading upstream", () => new Set(rx.got.map((m) => `${m.topic}:${m.payload}`)).size === 2 * n, 20_000);
    await settled();
    const upstream = (topic: string) => rx.got.filter((m) => m.topic === topic).map((m) => m.payload);
    const want = Array.from({ length: n }, (_, i) => String(i));
    const q1 = upstream("cf/q1/s");
    t.same(
      q1.filter((p, i) => q1.indexOf(p) === i),
      want,
      `QoS 1: all ${n} in order (${q1.length - n} repeats, which QoS 1 allows)`,
    );
    t.same(upstream("cf/q2/s"), want, `QoS 2: all ${n} exactly once, in order`);
    t.equal(h.bridge.stats().dropped, 0, "nothing dropped");
    t.equal(h.bridge.stats().reconnects, 4, "back after each of the four faults that drop the link");
    t.equal(local.length, 2 * n, "local delivery went on throughout");
  });
}
