// Brokers under test for the benchmark: writes their config to a temp dir, starts them as child
// processes (own process group, fd limit raised), waits until an MQTT handshake succeeds, samples
// RSS/CPU of the process tree from /proc, counts fsyncs (durable run), and always kills what it started.
// Persistence is off for both brokers except in the durable run, where it is on for both.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { accessSync, constants, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import type { Proto } from "./codec.js";
import { closeClient, openClient } from "./wire.js";

export const WANT_NOFILE = 65536;
const READY_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 3_000;

/** How to start one broker. `cmd` may use {port} and {dir} (both config files are written to {dir}). */
export interface TargetDef {
  label: string;
  kind: "hub" | "mosquitto" | "cmd";
  cmd: string | null;
}

/** Per-scenario broker setup: persistence on or off, and how fsyncs are counted (durable run only). */
export interface TargetOpts {
  durable: boolean;
  fsync: FsyncMode;
}

/**
 * launch: the broker runs under `strace -f --seccomp-bpf -e trace=fsync,fdatasync` from its start; the
 *   seccomp filter stops it only at those calls, so the broker runs at full speed otherwise.
 * attach: `strace -f -p <pid>` for the duration of the load (strace without seccomp support, or
 *   BENCH_FSYNC=attach); every system call of the broker then stops in ptrace, which slows it.
 * commits: no strace; the hub's SQLite commits (its store logs them at shutdown), nothing for mosquitto.
 */
export type FsyncMode = "none" | "launch" | "attach" | "commits";

/** Codes of FsyncMode in Metrics (numbers only) and their labels in the report. */
export const FSYNC_METHOD: Record<FsyncMode, number> = { none: 0, launch: 1, attach: 2, commits: 3 };
export const FSYNC_LABEL = ["not measured", "strace (seccomp)", "strace -p", "SQLite commits"] as const;

export interface Running {
  def: TargetDef;
  port: number;
  dir: string;
  child: ChildProcess;
  pid: number; // the process group leader: strace in "launch" mode, else the broker
  exited: boolean;
  log: string[]; // last lines of stdout+stderr, for diagnostics
  opts: TargetOpts;
  fsyncLog: string; // strace output file (launch and attach modes)
}

/** Children alive right now; owned by the entry point, used by its exit/SIGINT handlers. */
export interface Reaper {
  live: Set<Running>;
}

// Raise the soft fd limit as far as allowed (65536, else the hard limit), then exec the command so
// the broker keeps the pid we measure.
const RAISE_FD = `ulimit -n ${WANT_NOFILE} 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null;`;

/** The reference broker binary: $BENCH_MOSQUITTO (a path, or "none" to skip it), else the usual places. */
export function mosquittoPath(): string | null {
  const env = process.env.BENCH_MOSQUITTO;
  if (env === "none") return null;
  for (const p of env !== undefined && env !== "" ? [env] : ["/usr/sbin/mosquitto", "/usr/bin/mosquitto", "/usr/local/sbin/mosquitto", "/usr/local/bin/mosquitto"]) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

export function mosquittoVersion(bin: string): string {
  try {
    const out = execFileSync(bin, ["-h"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return /version ([\d.]+)/.exec(out)?.[1] ?? "?";
  } catch (e) {
    const out = String((e as { stdout?: string }).stdout ?? "");
    return /version ([\d.]+)/.exec(out)?.[1] ?? "?";
  }
}

/** Settings that differ from mosquitto's defaults, with the defaults that matter for this bench. */
export const MOSQUITTO_NOTES = [
  "mosquitto.conf: `listener <port> 127.0.0.1`, `allow_anonymous true`, `max_queued_messages 100000`, `persistence false` (the default), `log_type error` + `warning` only (the hub logs at warn)",
  "durable run: mosquitto `persistence true`, `persistence_location <tmpdir>/`, `user <the bench's user>` (so it can write there), `autosave_interval` at its default (1800 s: mosquitto snapshots its state then and at shutdown, so kill -9 loses what came since); the hub `broker.storage: { enabled: true, sync: normal }` (commits before it acknowledges). All other runs: hub `storage: { enabled: false }`",
  "mosquitto defaults left as they are: max_inflight_messages 20 (sent as Receive Maximum 20 to v5 publishers; a v5 subscriber's own Receive Maximum governs deliveries), max_connections -1, max_queued_bytes 0, memory_limit 0, set_tcp_nodelay false, sys_interval 10",
];

export function hubYaml(dir: string, port: number, o: TargetOpts): string {
  return [
    "hardware: simulate",
    `state_dir: ${path.join(dir, "state")}`,
    // info only when the store's commit count (logged at shutdown) stands in for strace
    `log: { level: ${o.fsync === "commits" ? "info" : "warn"} }`,
    "broker:",
    `  listeners: [{ host: 127.0.0.1, port: ${port}, protocol: mqtt }]`,
    "  limits: { max_connections: 20000, max_queued_messages: 100000 }",
    // Like with like: mosquitto runs with `persistence false` except in the durable run.
    o.durable ? "  storage: { enabled: true, sync: normal }" : "  storage: { enabled: false }",
    "devices: []",
    "",
  ].join("\n");
}

export function mosquittoConf(port: number, dir: string, o: TargetOpts): string {
  return [
    `listener ${port} 127.0.0.1`,
    "allow_anonymous true",
    "max_queued_messages 100000",
    // autosave_interval stays at its default (1800 s): mosquitto writes its state file then and at exit.
    // `user`: run as root, mosquitto switches to user "mosquitto", which cannot write into our 0700
    // temp dir, and its state file would silently never be saved. Stay the user the hub runs as.
    ...(o.durable ? ["persistence true", `persistence_location ${dir}/`, `user ${userInfo().username}`] : ["persistence false"]),
    "log_dest stderr",
    "log_type error",
    "log_type warning",
    "",
  ].join("\n");
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The strace binary, or null when it is not installed. */
export function stracePath(): string | null {
  for (const p of ["/usr/bin/strace", "/bin/strace", "/usr/local/bin/strace", "/usr/sbin/strace"]) {
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {}
  }
  return null;
}

/** How fsyncs are counted on this machine: BENCH_FSYNC=attach|launch|commits overrides the choice. */
export function fsyncMode(): FsyncMode {
  const env = process.env.BENCH_FSYNC;
  if (env === "attach" || env === "launch" || env === "commits") return env;
  const strace = stracePath();
  if (strace === null) return "commits";
  try {
    // --seccomp-bpf needs strace >= 5.3 and a kernel that allows seccomp filters here.
    execFileSync(strace, ["-f", "--seccomp-bpf", "-qq", "-e", "trace=fsync,fdatasync", "-o", "/dev/null", "true"], { stdio: "ignore" });
    return "launch";
  } catch {
    return "attach";
  }
}

/** The shell command line for a target (after writing both config files into `dir`). */
function commandFor(def: TargetDef, dir: string, port: number, o: TargetOpts): string {
  const line = brokerCommand(def, dir, port);
  if (o.fsync !== "launch") return line;
  // -qq: no attach/exit chatter in the broker's log; lines in the file are flushed per call.
  return `${q(stracePath() ?? "strace")} -f --seccomp-bpf -qq -e trace=fsync,fdatasync -o ${q(path.join(dir, "fsync.log"))} ${line}`;
}

function brokerCommand(def: TargetDef, dir: string, port: number): string {
  if (def.kind === "hub") {
    // The production entry (the `hub` bin, npm start, the systemd unit), not tsc's dist/hub/main.js:
    // the bench measures what users run, and the bundle loads far fewer module files (scripts/bundle.ts).
    const main = path.resolve(process.cwd(), "dist/bundle/hub.mjs");
    // The V8 flag the hub always runs with (npm start, the `hub` bin's shebang, the systemd unit).
    return `${q(process.execPath)} --max-semi-space-size=1 ${q(main)} run --config ${q(path.join(dir, "hub.yaml"))} --simulate`;
  }
  if (def.kind === "mosquitto") return `${q(def.cmd ?? "mosquitto")} -c ${q(path.join(dir, "mosquitto.conf"))}`;
  return (def.cmd ?? "").replaceAll("{port}", String(port)).replaceAll("{dir}", dir);
}

/** Starts a fresh broker on a free loopback port; resolves once an MQTT handshake succeeds. */
export async function startTarget(
  def: TargetDef,
  reaper: Reaper,
  proto: Proto,
  opts: TargetOpts = { durable: false, fsync: "none" },
): Promise<Running> {
  const dir = mkdtempSync(path.join(tmpdir(), "hub-bench-"));
  const port = await freePort();
  writeFileSync(path.join(dir, "hub.yaml"), hubYaml(dir, port, opts));
  writeFileSync(path.join(dir, "mosquitto.conf"), mosquittoConf(port, dir, opts));
  const line = commandFor(def, dir, port, opts);
  const child = spawn("bash", ["-c", `${RAISE_FD} exec ${line}`], {
    detached: true, // own process group: we kill the whole group, and the terminal's ^C reaches only us
    stdio: ["ignore", "pipe", "pipe"],
    cwd: process.cwd(),
  });
  const r: Running = { def, port, dir, child, pid: child.pid ?? -1, exited: false, log: [], opts, fsyncLog: path.join(dir, "fsync.log") };
  reaper.live.add(r);
  const keep = (chunk: Buffer) => {
    for (const l of chunk.toString("utf8").split("\n")) if (l.trim() !== "") r.log.push(l);
    if (r.log.length > 40) r.log.splice(0, r.log.length - 40);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  child.on("exit", () => {
    r.exited = true;
  });
  child.on("error", (e) => {
    r.exited = true;
    r.log.push(String(e));
  });
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastErr = "";
  for (let attempt = 0; Date.now() < deadline && attempt < 300; attempt++) {
    if (r.exited) break;
    try {
      const c = await openClient(port, `bench-ready-${attempt}`, proto, Math.max(100, Math.min(2000, deadline - Date.now())));
      closeClient(c);
      return r;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    await sleep(100);
  }
  await stopTarget(r, reaper);
  const why = r.exited ? "exited" : `not ready within ${READY_TIMEOUT_MS / 1000} s (${lastErr})`;
  throw new Error(`${def.label}: ${why}; command: ${line}\n    ${r.log.slice(-8).join("\n    ")}`);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** SIGTERM to the process group, SIGKILL after 3 s; removes the temp dir. */
export async function stopTarget(r: Running, reaper: Reaper): Promise<void> {
  if (!r.exited) {
    signalGroup(r, "SIGTERM");
    for (let i = 0; i < STOP_TIMEOUT_MS / 50 && !r.exited; i++) await sleep(50);
    if (!r.exited) signalGroup(r, "SIGKILL");
    for (let i = 0; i < 20 && !r.exited; i++) await sleep(50);
  }
  reaper.live.delete(r);
  rmSync(r.dir, { recursive: true, force: true });
}

export function signalGroup(r: Running, sig: NodeJS.Signals): void {
  if (r.pid <= 0) return;
  try {
    process.kill(-r.pid, sig);
  } catch {
    try {
      process.kill(r.pid, sig);
    } catch {}
  }
}

/** Synchronous last resort (process 'exit' handler): SIGKILL every group still alive. */
export function killAllNow(reaper: Reaper): void {
  for (const r of reaper.live) {
    if (!r.exited) signalGroup(r, "SIGKILL");
    rmSync(r.dir, { recursive: true, force: true });
  }
  reaper.live.clear();
}

export interface ProcSample {
  rssKb: number;
  cpuTicks: number; // utime + stime, in clock ticks
}

/** Clock ticks per second for /proc/<pid>/stat times (call once; it is constant per machine). */
export function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

function readStat(pid: number): { ppid: number; ticks: number } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = s.slice(s.lastIndexOf(")") + 2).split(" "); // fields from #3 (state) on
    return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }; // #4 ppid, #14 utime, #15 stime
  } catch {
    return null;
  }
}

function readRssKb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Busy clock ticks of the whole machine (all CPUs): /proc/stat total minus idle and iowait. */
export function machineBusyTicks(): number {
  try {
    const f = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
    // user nice system idle iowait irq softirq steal
    return f[0]! + f[1]! + f[2]! + f[5]! + f[6]! + f[7]!;
  } catch {
    return 0;
  }
}

/** RSS and CPU of `pid` plus all its descendants (so wrapper commands are measured too). */
export function sampleTree(pid: number): ProcSample {
  const parent = new Map<number, number>();
  for (const name of readdirSync("/proc")) {
    const n = Number(name);
    if (!Number.isInteger(n) || n <= 0) continue;
    const st = readStat(n);
    if (st) parent.set(n, st.ppid);
  }
  const inTree = (p: number): boolean => {
    for (let depth = 0; depth < 64 && p > 1; depth++) {
      if (p === pid) return true;
      p = parent.get(p) ?? 0;
    }
    return false;
  };
  let rssKb = 0;
  let cpuTicks = 0;
  for (const p of parent.keys()) {
    if (!inTree(p)) continue;
    rssKb += readRssKb(p);
    cpuTicks += readStat(p)?.ticks ?? 0;
  }
  return { rssKb, cpuTicks };
}

/** RSS of a bare `node -e "setInterval(()=>{},1e9)"` after it settles (the idle-RSS yardstick). */
export async function bareNodeRssKb(reaper: Reaper): Promise<number> {
  const def: TargetDef = { label: "bare node", kind: "cmd", cmd: `'${process.execPath}' -e 'setInterval(()=>{},1e9)'` };
  const dir = mkdtempSync(path.join(tmpdir(), "hub-bench-"));
  const child = spawn("bash", ["-c", `exec ${def.cmd}`], { detached: true, stdio: "ignore" });
  const r: Running = { def, port: 0, dir, child, pid: child.pid ?? -1, exited: false, log: [], opts: { durable: false, fsync: "none" }, fsyncLog: "" };
  child.on("exit", () => {
    r.exited = true;
  });
  reaper.live.add(r);
  await sleep(1500);
  const rss = readRssKb(r.pid);
  await stopTarget(r, reaper);
  return rss;
}

/** Counts the broker's fsync + fdatasync calls between start() and stop() (durable run). */
export interface FsyncCounter {
  readonly mode: FsyncMode;
  start(): Promise<void>;
  /** Calls counted; null when only the broker's own log can tell, after it stopped (commits). */
  stop(): Promise<number | null>;
}

/** `fdatasync(5) = 0` lines; "<... resumed>" halves of interleaved calls do not match. */
function countSyncLines(file: string): number {
  try {
    return (readFileSync(file, "utf8").match(/^(?:\d+\s+)?f(?:data)?sync\(/gm) ?? []).length;
  } catch {
    return 0;
  }
}

/** The broker process itself: in launch mode the group leader is strace and the broker its child. */
function brokerPid(r: Running): number {
  if (r.opts.fsync !== "launch") return r.pid;
  try {
    const kids = readFileSync(`/proc/${r.pid}/task/${r.pid}/children`, "utf8").trim().split(/\s+/);
    return Number(kids[0]) || r.pid;
  } catch {
    return r.pid;
  }
}

export function fsyncCounter(r: Running): FsyncCounter {
  const mode = r.opts.fsync;
  if (mode === "launch") {
    let base = 0;
    return {
      mode,
      start: async () => {
        base = countSyncLines(r.fsyncLog);
      },
      stop: async () => countSyncLines(r.fsyncLog) - base,
    };
  }
  if (mode === "attach") {
    let tracer: ChildProcess | null = null;
    let ok = false;
    return {
      mode,
      async start() {
        // -f with -p attaches every thread of the process (SQLite may sync from any of them).
        const t = spawn(stracePath() ?? "strace", ["-f", "-e", "trace=fsync,fdatasync", "-o", r.fsyncLog, "-p", String(brokerPid(r))], {
          stdio: ["ignore", "ignore", "pipe"],
        });
        tracer = t;
        // Attached once strace says so on stderr ("Process N attached"), or failed when it exits.
        ok = await new Promise<boolean>((resolve) => {
          let err = "";
          const timer = setTimeout(() => resolve(false), 5_000);
          t.stderr?.on("data", (c: Buffer) => {
            err += c.toString();
            if (/attached/.test(err)) {
              clearTimeout(timer);
              resolve(true);
            }
          });
          t.on("exit", () => {
            clearTimeout(timer);
            resolve(false);
          });
        });
      },
      async stop() {
        const t = tracer;
        if (t === null || !ok) return Number.NaN;
        const done = new Promise<void>((resolve) => t.once("exit", () => resolve()));
        t.kill("SIGINT"); // detaches; the broker keeps running
        await Promise.race([done, sleep(3_000)]);
        return countSyncLines(r.fsyncLog);
      },
    };
  }
  return { mode, start: async () => undefined, stop: async () => (mode === "commits" ? null : Number.NaN) };
}

/** The hub store's commit count from its shutdown log line (commits mode), or NaN. */
export function commitsFromLog(r: Running): number {
  for (const l of r.log) {
    const m = /broker state file closed.*\bcommits[=:"]+(\d+)/.exec(l);
    if (m) return Number(m[1]);
  }
  return Number.NaN;
}
