// The sd_notify path (hub/notify.ts): what systemd hears and when. Unit tests drive a fake spawn and
// a fake clock; one integration test runs the real `systemd-notify` against a fake notify socket
// (a python3 unix datagram receiver that, like PID 1, closes the fd of a BARRIER=1 message so that
// systemd-notify's wait for the manager ends) and checks READY, WATCHDOG and STOPPING arrive.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { memoryLogger } from "../hub/log.js";
import { createNotifier, defaultSpawn, type SpawnFn, watchdogInterval } from "../hub/notify.js";
import { fakeClock } from "./support/fake-clock.js";
import { notifySocket, notifySocketSkip } from "./support/notify-socket.js";

const PID = 4242;

/** A spawn that records argv and finishes each child when the test says so (or at once). */
function fakeSpawn(o: { auto?: boolean; fail?: NodeJS.ErrnoException; code?: number } = {}) {
  const calls: string[][] = [];
  const pending: Array<() => void> = [];
  const spawn: SpawnFn = (file, args) => {
    calls.push([file, ...args]);
    if (o.fail) return Promise.reject(o.fail);
    return new Promise((resolve) => {
      const done = () => resolve({ code: o.code ?? 0, stderr: o.code ? "boom" : "" });
      if (o.auto ?? true) done();
      else pending.push(done);
    });
  };
  /** Lets queued promise callbacks (the notifier's pump) run. */
  const settle = () => new Promise<void>((r) => setImmediate(r));
  return { spawn, calls, pending, settle, sent: () => calls.map((c) => c[2]) };
}

const env = (extra: Record<string, string> = {}) => ({ NOTIFY_SOCKET: "/run/systemd/notify", ...extra });

t.test("without NOTIFY_SOCKET every call is a no-op", async (t) => {
  const f = fakeSpawn();
  const clock = fakeClock();
  const n = createNotifier({ env: { WATCHDOG_USEC: "30000000" }, clock, log: memoryLogger(), pid: PID, spawn: f.spawn });
  t.equal(n.enabled, false);
  n.ready();
  n.status("hello");
  clock.advance(60_000);
  n.watchdog();
  n.stopping();
  await f.settle();
  t.same(f.calls, []);
  t.equal(clock.pending(), 0, "no watchdog timer");
});

t.test("READY=1 runs systemd-notify --pid=<hub pid>", async (t) => {
  const f = fakeSpawn();
  const n = createNotifier({ env: env(), clock: fakeClock(), log: memoryLogger(), pid: PID, spawn: f.spawn });
  t.equal(n.enabled, true);
  n.ready();
  await f.settle();
  t.same(f.calls, [["systemd-notify", `--pid=${PID}`, "READY=1"]]);
});

t.test("watchdog interval is WATCHDOG_USEC / 2, and only for our pid", async (t) => {
  t.equal(watchdogInterval({ WATCHDOG_USEC: "30000000" }, PID), 15_000);
  t.equal(watchdogInterval({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: String(PID) }, PID), 15_000);
  t.equal(watchdogInterval({ WATCHDOG_USEC: "30000000", WATCHDOG_PID: "1" }, PID), 0, "meant for another process");
  t.equal(watchdogInterval({}, PID), 0);
  t.equal(watchdogInterval({ WATCHDOG_USEC: "soon" }, PID), 0);
});

t.test("the watchdog is fed every WATCHDOG_USEC/2 after READY, only while healthy", async (t) => {
  const f = fakeSpawn();
  const clock = fakeClock();
  const log = memoryLogger();
  let healthy = true;
  const n = createNotifier({ env: env({ WATCHDOG_USEC: "30000000" }), clock, log, pid: PID, spawn: f.spawn, healthy: () => healthy });
  t.equal(n.watchdogIntervalMs, 15_000);
  clock.advance(60_000);
  t.same(f.sent(), [], "nothing before READY: systemd starts the watchdog clock at READY");
  n.ready();
  await f.settle();
  clock.advance(14_999);
  await f.settle();
  t.same(f.sent(), ["READY=1"]);
  clock.advance(1);
  await f.settle();
  t.same(f.sent(), ["READY=1", "WATCHDOG=1"]);
  healthy = false;
  clock.advance(15_000);
  clock.advance(15_000);
  await f.settle();
  t.same(f.sent(), ["READY=1", "WATCHDOG=1"], "unhealthy: no ping, so systemd restarts the hub");
  t.equal(log.lines.filter((l) => l.includes("unhealthy")).length, 1, "logged once, not every tick");
  healthy = true;
  clock.advance(15_000);
  await f.settle();
  t.same(f.sent(), ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]);
  n.stopping();
  clock.advance(60_000);
  await f.settle();
  t.same(f.sent(), ["READY=1", "WATCHDOG=1", "WATCHDOG=1", "STOPPING=1"], "no ping after STOPPING");
  t.equal(clock.pending(), 0);
});

t.test("without WATCHDOG_USEC no timer runs", async (t) => {
  const f = fakeSpawn();
  const clock = fakeClock();
  const n = createNotifier({ env: env(), clock, log: memoryLogger(), pid: PID, spawn: f.spawn });
  n.ready();
  t.equal(clock.pending(), 0);
  n.close();
});

t.test("messages go one child at a time, in order; pings do not pile up", async (t) => {
  const f = fakeSpawn({ auto: false });
  const clock = fakeClock();
  const n = createNotifier({ env: env({ WATCHDOG_USEC: "2000000" }), clock, log: memoryLogger(), pid: PID, spawn: f.spawn });
  n.ready();
  n.status("listening on 127.0.0.1:1883");
  clock.advance(1_000);
  clock.advance(1_000);
  clock.advance(1_000);
  n.stopping();
  t.same(f.sent(), ["READY=1"], "the rest wait for the first child");
  for (let i = 0; i < 5 && f.pending.length > 0; i++) {
    f.pending.shift()!();
    await f.settle();
  }
  t.same(f.sent(), ["READY=1", "STATUS=listening on 127.0.0.1:1883", "WATCHDOG=1", "STOPPING=1"]);
});

t.test("status text is one line", async (t) => {
  const f = fakeSpawn();
  const n = createNotifier({ env: env(), clock: fakeClock(), log: memoryLogger(), pid: PID, spawn: f.spawn });
  n.status("a\nREADY=1");
  await f.settle();
  t.same(f.sent(), ["STATUS=a READY=1"], "a newline cannot smuggle in another assignment");
});

t.test("systemd-notify missing: logged once, then nothing", async (t) => {
  const enoent = Object.assign(new Error("spawn systemd-notify ENOENT"), { code: "ENOENT" });
  const f = fakeSpawn({ fail: enoent });
  const log = memoryLogger();
  const clock = fakeClock();
  const n = createNotifier({ env: env({ WATCHDOG_USEC: "2000000" }), clock, log, pid: PID, spawn: f.spawn });
  n.ready();
  await f.settle();
  clock.advance(10_000);
  n.stopping();
  await f.settle();
  t.equal(f.calls.length, 1, "not retried");
  const errors = log.lines.filter((l) => l.includes("systemd-notify not found"));
  t.equal(errors.length, 1);
  t.match(errors[0], /ERROR/);
});

t.test("a failing systemd-notify is logged when it starts and stops failing", async (t) => {
  let code = 1;
  const calls: string[] = [];
  const spawn: SpawnFn = async (_f, args) => {
    calls.push(args[1]!);
    return { code, stderr: code ? "Failed to notify init system" : "" };
  };
  const log = memoryLogger();
  const clock = fakeClock();
  const settle = () => new Promise<void>((r) => setImmediate(r));
  const n = createNotifier({ env: env({ WATCHDOG_USEC: "2000000" }), clock, log, pid: PID, spawn });
  n.ready();
  await settle();
  for (let i = 0; i < 3; i++) {
    clock.advance(1_000);
    await settle();
  }
  code = 0;
  clock.advance(1_000);
  await settle();
  t.equal(calls.length, 5);
  t.equal(log.lines.filter((l) => l.includes("systemd-notify failed")).length, 1);
  t.match(log.lines.join("\n"), /Failed to notify init system/);
  t.equal(log.lines.filter((l) => l.includes("works again")).length, 1);
  n.close();
});

t.test("a blocked event loop is reported", async (t) => {
  const f = fakeSpawn();
  // A clock whose timer the test fires by hand, late, as a blocked event loop would.
  let mono = 0;
  const clock = { now: () => mono, monotonic: () => mono, after: () => () => {}, every: () => () => {} };
  const log = memoryLogger();
  const n = createNotifier({ env: env({ WATCHDOG_USEC: "20000000" }), clock, log, pid: PID, spawn: f.spawn });
  n.ready();
  mono = 10_000;
  n.watchdog();
  t.notMatch(log.lines.join("\n"), /blocked/, "a tick on time");
  await f.settle();
  // As if a synchronous call held the loop for 15 s: the tick comes 25 s after the last one.
  mono = 35_000;
  n.watchdog();
  t.match(log.lines.join("\n"), /event loop was blocked.* ms=15000/);
  await f.settle();
  t.same(f.sent(), ["READY=1", "WATCHDOG=1", "WATCHDOG=1"], "still fed: the hub is running again");
});

t.test("integration: the real systemd-notify reaches a notify socket", { skip: notifySocketSkip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hub-notify-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, "notify");
  const receiver = await notifySocket(t, socketPath);

  const clock = fakeClock();
  const log = memoryLogger();
  // The real spawn, watched: each systemd-notify's exit code, and when all four have finished.
  const codes: Array<number | null> = [];
  let allDone = () => {};
  const finished = new Promise<void>((resolve) => {
    allDone = resolve;
  });
  const spawn: SpawnFn = async (file, args, childEnv) => {
    const r = await defaultSpawn(file, args, childEnv);
    codes.push(r.code);
    if (codes.length === 4) allDone();
    return r;
  };
  const n = createNotifier({ env: { NOTIFY_SOCKET: socketPath, WATCHDOG_USEC: "2000000" }, clock, log, pid: process.pid, spawn });
  n.ready();
  const ready = await receiver.waitFor(/^msg .*READY=1/);
  t.match(ready, `MAINPID=${process.pid}`, "the hub's pid is the main pid");
  clock.advance(1_000);
  await receiver.waitFor(/^msg .*WATCHDOG=1/);
  n.status("broker listening");
  n.stopping();
  await receiver.waitFor(/^msg .*STOPPING=1/);
  const msgs = receiver.out.filter((l) => l.startsWith("msg ") && !l.startsWith("msg BARRIER"));
  t.same(
    msgs.map((l) => /(READY|WATCHDOG|STATUS|STOPPING)=[^|]*/.exec(l)?.[0]),
    ["READY=1", "WATCHDOG=1", "STATUS=broker listening", "STOPPING=1"],
    "in order",
  );
  await finished;
  t.same(codes, [0, 0, 0, 0], "systemd-notify exited 0 every time: its wait for the manager (BARRIER) was answered");
  t.same(log.lines, [], "nothing logged");
});
