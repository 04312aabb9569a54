// kill -9 of the built hub during QoS 1 and QoS 2 flows, 20 seeded cycles on one state file: no
// acknowledged message lost, no QoS 2 message delivered twice (issue 4, fault tests). A file of its
// own so that tap runs it next to the other fault tests (faults.test.ts).
// Each cycle kills at a seeded point counted in acknowledged messages (not time), publishers keep
// going across restarts (persistent sessions, the client resends what was unacknowledged).
// Cost: 21 hub start-ups, each ~0.6 s of CPU (Node loading ~380 module files; restore + listen is
// ~50 ms), so ~20 s on an idle 2-core machine. On a shared, overloaded one (load average 11 on 2
// cores) 37-95 s were measured, hence this file's own timeout above tap's 60 s default.
// FAULTS_DEBUG=1 prints per-cycle timings (hub start-up dominates).
import mqtt from "mqtt";
import t from "tap";
import { freePort } from "../../support/spawn.js";
import { kill9, prng, startHub, tempDir, until, writeConfig } from "./fault-support.js";

t.setTimeout(180_000); // the root test: tells tap's runner this file's budget

const CYCLES = 20;
const WINDOW = 8; // PUBLISHes in flight per publisher

t.test(`${CYCLES} seeded kill -9 cycles during QoS 1 and QoS 2 flows: nothing acknowledged lost, no QoS 2 duplicate`, async (t) => {
  const d = tempDir(t);
  const port = await freePort();
  const config = writeConfig(d, port);
  const rnd = prng(20261126);
  const url = `mqtt://127.0.0.1:${port}`;
  const debug = process.env.FAULTS_DEBUG !== undefined;
  let hub = await startHub(t, config);
  // Reconnect quickly: refused connects while the hub is down cost nothing, and the sooner the
  // clients are back, the sooner the next kill point is reached.
  const opts = (clientId: string): mqtt.IClientOptions => ({
    clientId,
    clean: false,
    protocolVersion: 4,
    reconnectPeriod: 25,
    connectTimeout: 5_000,
    keepalive: 30,
  });
  const sub = mqtt.connect(url, opts("fault-sub"));
  const got = new Map<string, number>();
  const events = new Set<() => void>();
  const notify = () => {
    for (const e of [...events]) e();
  };
  const on = (check: () => void) => {
    events.add(check);
    return () => events.delete(check);
  };
  sub.on("message", (_topic, payload) => {
    const k = payload.toString();
    got.set(k, (got.get(k) ?? 0) + 1);
    notify();
  });
  await new Promise<void>((resolve) => sub.once("connect", () => resolve()));
  await sub.subscribeAsync("fault/#", { qos: 2 });
  const p1 = mqtt.connect(url, opts("fault-p1"));
  const p2 = mqtt.connect(url, opts("fault-p2"));
  t.teardown(() => {
    for (const c of [sub, p1, p2]) c.end(true);
  });

  const acked = { 1: new Set<string>(), 2: new Set<string>() };
  const sent = { 1: 0, 2: 0 };
  let stop = false;
  const errors: string[] = [];
  const produce = (c: mqtt.MqttClient, qos: 1 | 2) => {
    let inflight = 0;
    const next = () => {
      while (!stop && inflight < WINDOW) {
        const payload = `q${qos}-${++sent[qos]}`;
        inflight++;
        c.publish(`fault/q${qos}`, payload, { qos }, (err) => {
          inflight--;
          if (!err) acked[qos].add(payload);
          else errors.push(err.message);
          notify();
          // Not re-entrant: a publish that fails at once must not loop here.
          setImmediate(next);
        });
      }
    };
    next(); // at once: mqtt.js queues what is published before the first CONNACK
    return () => inflight;
  };
  const in1 = produce(p1, 1);
  const in2 = produce(p2, 2);
  const total = () => acked[1].size + acked[2].size;

  const starts: number[] = [];
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const target = total() + 3 + Math.floor(rnd() * 20);
    const t0 = performance.now();
    await until(() => total() >= target, on, 20_000, `cycle ${cycle}: ${target} acks`).catch((err: Error) => {
      throw new Error(`${err.message} (${acked[1].size} QoS 1 + ${acked[2].size} QoS 2 acknowledged)\n${hub.transcript()}`);
    });
    const t1 = performance.now();
    await kill9(hub);
    hub = await startHub(t, config);
    starts.push(performance.now() - t1);
    if (debug) t.comment(`cycle ${cycle}: ${total()} acked, ${got.size} received; acks ${(t1 - t0).toFixed(0)} ms, kill+start ${starts.at(-1)!.toFixed(0)} ms`);
  }
  stop = true;
  await until(() => in1() === 0 && in2() === 0, on, 20_000, "publishers' last flows complete");
  await until(() => [...acked[1], ...acked[2]].every((m) => got.has(m)), on, 20_000, "every acknowledged message delivered").catch(() => undefined);
  const lost = [...acked[1], ...acked[2]].filter((m) => !got.has(m));
  t.same(lost, [], `no acknowledged message lost (${acked[1].size} QoS 1, ${acked[2].size} QoS 2 acknowledged)`);
  const dups = [...got].filter(([k, n]) => k.startsWith("q2-") && n > 1);
  t.same(dups, [], "no QoS 2 message delivered twice");
  t.ok(hub.out.some((l) => /broker state restored/.test(l)), "the last start restored the state file");
  if (debug) {
    const sorted = [...starts].sort((a, b) => a - b);
    t.comment(`kill -9 + restart: median ${sorted[sorted.length >> 1]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms; errors seen ${errors.length}`);
  }
});
