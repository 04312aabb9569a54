// sd_notify(3) for Type=notify units: READY=1 once the broker listens, WATCHDOG=1 while healthy,
// STOPPING=1 at shutdown, STATUS= for `systemctl status`. Node cannot send a datagram to the unix
// socket in $NOTIFY_SOCKET without a native module, so each message is sent by running
// `systemd-notify --pid=<hub pid> VAR=VALUE`; the message then comes from a child process, which is
// why the unit says NotifyAccess=all. systemd-notify waits until the manager has processed the
// message (sd_notify_barrier), so the child's short life does not lose it.
// STOPPING=1 is the exception: under a real systemd (252, seen with systemd/container-test.sh) its
// child is often killed before the manager reads it, either by the SIGTERM that `systemctl stop`
// sends to every process of the service (the child was spawned while that went round) or with the
// rest of the cgroup once the hub, a few ms later, has exited ("systemd-notify failed ... code=null").
// So at process exit an undelivered STOPPING=1 is sent again with a synchronous spawn.
// Without $NOTIFY_SOCKET (not under systemd) every call is a no-op.
import { spawn as nodeSpawn, spawnSync as nodeSpawnSync } from "node:child_process";
import type { Cancel, Clock, Logger } from "./contracts.js";

/** Runs a program to completion; rejects when it cannot be started (e.g. ENOENT). */
export type SpawnFn = (
  file: string,
  args: readonly string[],
  env: Record<string, string | undefined>,
) => Promise<{ code: number | null; stderr: string }>;

/** Runs a program to completion synchronously, killing it after timeoutMs (code null then). */
export type SpawnSyncFn = (
  file: string,
  args: readonly string[],
  env: Record<string, string | undefined>,
  timeoutMs: number,
) => { code: number | null; stderr: string; error?: string };

export interface NotifierDeps {
  env: Record<string, string | undefined>;
  clock: Clock;
  log: Logger;
  /** The hub's pid: sent as --pid so systemd attributes the message to the main process. */
  pid: number;
  /** Whether the hub is healthy enough to feed the watchdog (started, not stopping, parts alive). */
  healthy?: () => boolean;
  spawn?: SpawnFn;
  /** For the last STOPPING=1 at process exit, when no event loop turn is left. */
  spawnSync?: SpawnSyncFn;
  /** Runs fn when the process exits (default: process.once("exit")); registered by stopping(). */
  onExit?: (fn: () => void) => void;
  /** Program to run; default `systemd-notify` from PATH. */
  command?: string;
}

export interface Notifier {
  /** Whether $NOTIFY_SOCKET is set (we run under a Type=notify unit). */
  readonly enabled: boolean;
  /** Watchdog ping period in ms (WATCHDOG_USEC / 2), or 0 when no watchdog is asked for us. */
  readonly watchdogIntervalMs: number;
  /** READY=1, then feeds the watchdog every watchdogIntervalMs while healthy() holds. */
  ready(): void;
  /** One watchdog tick: WATCHDOG=1 if healthy(); the timer started by ready() calls this. */
  watchdog(): void;
  /** STOPPING=1; stops feeding the watchdog. */
  stopping(): void;
  /** STATUS=text, shown by `systemctl status hub`. */
  status(text: string): void;
  /** Stops the watchdog timer (tests; stopping() does it too). */
  close(): void;
}

export const defaultSpawn: SpawnFn = (file, args, env) =>
  new Promise((resolve, reject) => {
    const child = nodeSpawn(file, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8");
    child.stderr!.on("data", (s: string) => {
      if (stderr.length < 1000) stderr += s;
    });
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stderr: stderr.trim() }));
  });

export const defaultSpawnSync: SpawnSyncFn = (file, args, env, timeoutMs) => {
  const r = nodeSpawnSync(file, args, { env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8", timeout: timeoutMs });
  return { code: r.status, stderr: (r.stderr ?? "").trim().slice(0, 1000), error: r.error?.message };
};

/** How long the hub's exit may wait for systemd to read STOPPING=1 (TimeoutStopSec is 15 s). */
export const EXIT_NOTIFY_TIMEOUT_MS = 2_000;

/**
 * WATCHDOG_USEC / 2 in ms, as sd_watchdog_enabled(3) reads it: 0 when unset, invalid, or meant for
 * another process (WATCHDOG_PID set to a pid that is not ours).
 */
export function watchdogInterval(env: Record<string, string | undefined>, pid: number): number {
  const usec = env.WATCHDOG_USEC;
  if (!usec || !/^[0-9]+$/.test(usec)) return 0;
  const wpid = env.WATCHDOG_PID;
  if (wpid !== undefined && wpid !== "" && wpid !== String(pid)) return 0;
  return Math.max(1, Math.floor(Number(usec) / 2000));
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const { clock, log } = deps;
  const enabled = !!deps.env.NOTIFY_SOCKET;
  const intervalMs = enabled ? watchdogInterval(deps.env, deps.pid) : 0;
  const healthy = deps.healthy ?? (() => true);
  const run = deps.spawn ?? defaultSpawn;
  const command = deps.command ?? "systemd-notify";
  const runSync = deps.spawnSync ?? defaultSpawnSync;
  const onExit = deps.onExit ?? ((fn: () => void) => void process.once("exit", fn));

  // One child at a time, in order: READY must reach systemd before STOPPING. At most one watchdog
  // ping is pending at a time, so a slow manager cannot make children pile up.
  const queue: string[] = [];
  let inFlight: string | undefined;
  let missing = false;
  let failing = false;
  let cancelTimer: Cancel | undefined;
  let lastTick: number | undefined;
  let unhealthyLogged = false;
  let stoppingSent = false; // systemd-notify STOPPING=1 exited 0: the manager has read it
  let exitHooked = false;

  // At exit: STOPPING=1 again, synchronously, unless a child already delivered it (see the header).
  const stoppingAtExit = () => {
    if (stoppingSent || missing) return;
    const r = runSync(command, [`--pid=${deps.pid}`, "STOPPING=1"], deps.env, EXIT_NOTIFY_TIMEOUT_MS);
    if (r.code !== 0) log.warn("systemd-notify failed", { message: "STOPPING=1", code: r.code, stderr: r.stderr, error: r.error });
  };

  const pump = () => {
    if (inFlight !== undefined || missing) return;
    const assignment = queue.shift();
    if (assignment === undefined) return;
    inFlight = assignment;
    // NOTIFY_SOCKET (and the rest of the environment) is passed on: systemd-notify reads it.
    run(command, [`--pid=${deps.pid}`, assignment], deps.env).then(
      ({ code, stderr }) => {
        inFlight = undefined;
        if (assignment === "STOPPING=1") {
          // Not logged here: unless delivered, stoppingAtExit sends it again and logs a failure.
          stoppingSent = code === 0;
        } else if (code === null) {
          // Killed by a signal: systemd's SIGTERM to every process of the service when it stops
          // (e.g. a STATUS= child still running when `systemctl stop` follows the start). Not a fault.
          log.debug("systemd-notify was killed by a signal (the service is stopping)", { message: assignment });
        } else {
          if (code !== 0 && !failing) log.warn("systemd-notify failed", { message: assignment, code, stderr });
          else if (code === 0 && failing) log.info("systemd-notify works again");
          failing = code !== 0;
        }
        pump();
      },
      (err: NodeJS.ErrnoException) => {
        inFlight = undefined;
        if (err.code === "ENOENT") {
          // Logged once: without it systemd never hears READY and times the start out.
          missing = true;
          queue.length = 0;
          log.error(`${command} not found; systemd will not be told the hub is ready (install the systemd package)`);
          return;
        }
        if (!failing) log.warn("could not run systemd-notify", { error: err.message });
        failing = true;
        pump();
      },
    );
  };

  const send = (assignment: string) => {
    if (!enabled || missing) return;
    if (assignment === "WATCHDOG=1" && (inFlight === assignment || queue.includes(assignment))) return;
    queue.push(assignment);
    pump();
  };

  const stopTimer = () => {
    cancelTimer?.();
    cancelTimer = undefined;
  };

  const notifier: Notifier = {
    enabled,
    watchdogIntervalMs: intervalMs,
    ready() {
      send("READY=1");
      if (intervalMs === 0 || cancelTimer) return;
      lastTick = clock.monotonic();
      cancelTimer = clock.every(intervalMs, () => notifier.watchdog());
    },
    watchdog() {
      if (!enabled) return;
      const now = clock.monotonic();
      // A tick a whole period late means the event loop was blocked that long: worth a log line,
      // as a longer block is what the watchdog kills us for.
      if (lastTick !== undefined && now - lastTick > 2 * intervalMs) {
        log.warn("event loop was blocked; the watchdog was nearly missed", { ms: Math.round(now - lastTick - intervalMs) });
      }
      lastTick = now;
      if (!healthy()) {
        if (!unhealthyLogged) log.warn("hub unhealthy; not feeding the systemd watchdog");
        unhealthyLogged = true;
        return;
      }
      if (unhealthyLogged) log.info("hub healthy again; feeding the systemd watchdog");
      unhealthyLogged = false;
      send("WATCHDOG=1");
    },
    stopping() {
      stopTimer();
      if (enabled && !missing && !exitHooked) {
        exitHooked = true;
        onExit(stoppingAtExit);
      }
      send("STOPPING=1");
    },
    status(text) {
      // One assignment per line in the protocol: a newline would start another variable.
      send(`STATUS=${text.replace(/[\r\n]+/g, " ")}`);
    },
    close: stopTimer,
  };
  return notifier;
}
