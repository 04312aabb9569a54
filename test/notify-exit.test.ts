// STOPPING=1 at process exit (hub/notify.ts): under a real systemd (systemd/container-test.sh) the
// hub exits a few ms after stopping(), and the systemd-notify child still sending STOPPING=1 was
// killed with the service's cgroup, so systemd never heard it. The notifier now sends an undelivered
// STOPPING=1 once more, synchronously, from a process "exit" hook. Fakes for spawn, spawnSync and
// the exit hook; one test runs the real systemd-notify synchronously against a fake notify socket.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { memoryLogger } from "../hub/log.js";
import { createNotifier, defaultSpawnSync, EXIT_NOTIFY_TIMEOUT_MS, type SpawnFn, type SpawnSyncFn } from "../hub/notify.js";
import { fakeClock } from "./support/fake-clock.js";
import { notifySocket, notifySocketSkip } from "./support/notify-socket.js";

const PID = 4242;
const env = { NOTIFY_SOCKET: "/run/systemd/notify" };

/** Async children the test finishes by hand; sync children recorded; the exit hook captured. */
function fakes(syncCode: number | null = 0) {
  const pending: Array<{ args: readonly string[]; finish: (code: number | null) => void }> = [];
  const spawn: SpawnFn = (_file, args) =>
    new Promise((resolve) => {
      pending.push({ args, finish: (code) => resolve({ code, stderr: "" }) });
    });
  const sync: Array<{ args: readonly string[]; timeoutMs: number }> = [];
  const spawnSync: SpawnSyncFn = (_file, args, _env, timeoutMs) => {
    sync.push({ args, timeoutMs });
    return { code: syncCode, stderr: syncCode === 0 ? "" : "Failed to notify init system" };
  };
  const hooks: Array<() => void> = [];
  const onExit = (fn: () => void) => void hooks.push(fn);
  const settle = () => new Promise<void>((r) => setImmediate(r));
  /** Finishes the oldest running child with this exit code (null: killed by a signal). */
  const finish = async (code: number | null) => {
    pending.shift()!.finish(code);
    await settle();
  };
  return { spawn, spawnSync, onExit, pending, sync, hooks, finish, settle };
}

t.test("a STOPPING=1 child killed before systemd read it is sent again, synchronously, at exit", async (t) => {
  const f = fakes();
  const log = memoryLogger();
  const n = createNotifier({ env, clock: fakeClock(), log, pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  n.ready();
  await f.finish(0);
  t.equal(f.hooks.length, 0, "no exit hook before stopping()");
  n.stopping();
  n.stopping();
  t.equal(f.hooks.length, 1, "one exit hook, however often stopping() is called");
  t.same(f.pending[0]!.args, [`--pid=${PID}`, "STOPPING=1"]);
  await f.finish(null); // SIGTERM from systemd's cgroup kill
  t.same(f.sync, [], "nothing synchronous before exit");
  f.hooks[0]!();
  t.same(f.sync, [{ args: [`--pid=${PID}`, "STOPPING=1"], timeoutMs: EXIT_NOTIFY_TIMEOUT_MS }]);
  t.same(log.lines, [], "the killed child is not logged as a failure: the exit hook took over");
});

t.test("a STOPPING=1 child still running at exit: sent synchronously", async (t) => {
  const f = fakes();
  const n = createNotifier({ env, clock: fakeClock(), log: memoryLogger(), pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  n.stopping();
  f.hooks[0]!();
  t.equal(f.sync.length, 1);
});

t.test("a delivered STOPPING=1 is not sent again", async (t) => {
  const f = fakes();
  const n = createNotifier({ env, clock: fakeClock(), log: memoryLogger(), pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  n.stopping();
  await f.finish(0);
  f.hooks[0]!();
  t.same(f.sync, []);
});

t.test("not under systemd, or systemd-notify missing: no exit hook", async (t) => {
  const f = fakes();
  const off = createNotifier({ env: {}, clock: fakeClock(), log: memoryLogger(), pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  off.stopping();
  t.equal(f.hooks.length, 0, "no NOTIFY_SOCKET");

  const enoent = Object.assign(new Error("spawn systemd-notify ENOENT"), { code: "ENOENT" });
  const g = fakes();
  const missing = createNotifier({
    env,
    clock: fakeClock(),
    log: memoryLogger(),
    pid: PID,
    spawn: () => Promise.reject(enoent),
    spawnSync: g.spawnSync,
    onExit: g.onExit,
  });
  missing.stopping();
  await g.settle();
  for (const hook of g.hooks) hook();
  t.same(g.sync, [], "the missing program is not run again at exit");
});

t.test("a child killed by systemd's SIGTERM to the cgroup is not logged as a failure", async (t) => {
  const f = fakes();
  const log = memoryLogger("info");
  const n = createNotifier({ env, clock: fakeClock(), log, pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  n.ready();
  await f.finish(0);
  n.status("broker listening on 127.0.0.1:1883");
  await f.finish(null); // `systemctl stop` right after the start: the STATUS= child is killed too
  n.status("again");
  await f.finish(1);
  t.equal(log.lines.length, 1, "only the real failure (exit 1) is a warning");
  t.match(log.lines[0], /WARN.*systemd-notify failed.*STATUS=again.*code=1/);
});

t.test("a failing synchronous STOPPING=1 is logged", async (t) => {
  const f = fakes(1);
  const log = memoryLogger();
  const n = createNotifier({ env, clock: fakeClock(), log, pid: PID, spawn: f.spawn, spawnSync: f.spawnSync, onExit: f.onExit });
  n.stopping();
  await f.finish(null);
  f.hooks[0]!();
  t.match(log.lines.join("\n"), /systemd-notify failed.*STOPPING=1.*Failed to notify init system/);
});


t.test("integration: the real systemd-notify, run synchronously, reaches a notify socket", { skip: notifySocketSkip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hub-notify-exit-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const socketPath = join(dir, "notify");
  // Plays PID 1: prints each datagram and closes the fd of BARRIER=1, which ends systemd-notify's wait.
  const receiver = await notifySocket(t, socketPath);
  const r = defaultSpawnSync("systemd-notify", [`--pid=${process.pid}`, "STOPPING=1"], { ...process.env, NOTIFY_SOCKET: socketPath }, EXIT_NOTIFY_TIMEOUT_MS);
  t.equal(r.code, 0, `systemd-notify exited 0 (its barrier was answered): ${r.stderr} ${r.error ?? ""}`);
  const msg = await receiver.waitFor(/^msg .*STOPPING=1/);
  t.match(msg, `MAINPID=${process.pid}`);
});
