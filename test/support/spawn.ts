// Child processes for end-to-end tests (the hub CLI, mosquitto_pub/mosquitto_sub): output split
// into lines, waits that resolve on a matching line or on exit (never on a sleep), a timeout on
// every wait so a hung child fails the test with its output instead of hanging it, and teardown
// (or, failing that, the test process's exit) kills whatever is still running.
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import net from "node:net";
import { fileURLToPath } from "node:url";

/** The repository root (this file is test/support/spawn.ts). */
export const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/** The built CLI; `npm test` builds before running tap. */
export const HUB_MAIN = fileURLToPath(new URL("../../dist/hub/main.js", import.meta.url));
/** The production entry (package.json bin, systemd unit): the bundle `npm run build` makes of it. */
export const HUB_BUNDLE = fileURLToPath(new URL("../../dist/bundle/hub.mjs", import.meta.url));

const DEFAULT_WAIT_MS = 15_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type LineMatch = RegExp | string | ((line: string) => boolean);

export interface WaitOptions {
  stream?: "stdout" | "stderr" | "both";
  timeoutMs?: number;
}

export interface Spawned {
  readonly proc: ChildProcess;
  /** Complete stdout lines so far (a last line without a newline is added at exit). */
  readonly out: string[];
  readonly err: string[];
  /** Settles once the process has exited and its output is fully read. */
  readonly exited: Promise<Exit>;
  /** Whether `exited` has settled. */
  hasExited(): boolean;
  /**
   * The first line (already seen or still to come) matching; rejects when the process exits
   * without printing one, or after the timeout.
   */
  waitFor(match: LineMatch, opts?: WaitOptions): Promise<string>;
  /** Like waitFor, for the first `n` matching lines. */
  waitForCount(match: LineMatch, n: number, opts?: WaitOptions): Promise<string[]>;
  /** `exited`, bounded by a timeout that rejects with the output so far. */
  waitExit(timeoutMs?: number): Promise<Exit>;
  /** Sends a signal unless the process has already exited. */
  kill(signal?: NodeJS.Signals): void;
  /** The output so far, for failure messages. */
  transcript(): string;
}

export interface SpawnOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Written to stdin, which is then closed. Without it stdin is closed at once. */
  stdin?: string | Buffer;
  /**
   * Run under `stdbuf -oL -eL`: C programs (mosquitto_sub's -d trace) fully buffer stdout into a
   * pipe, so without it no line arrives until exit.
   */
  lineBuffered?: boolean;
}

function matcher(m: LineMatch): (line: string) => boolean {
  if (typeof m === "function") return m;
  if (typeof m === "string") return (line) => line.includes(m);
  return (line) => m.test(line);
}

export function spawnProcess(cmd: string, args: readonly string[], opts: SpawnOptions = {}): Spawned {
  // stdbuf execs the program, so signals sent to this pid reach it directly.
  const [file, argv] = opts.lineBuffered ? ["stdbuf", ["-oL", "-eL", cmd, ...args]] : [cmd, args];
  const proc = spawn(file, argv, { cwd: opts.cwd ?? REPO_ROOT, env: opts.env ?? process.env, stdio: ["pipe", "pipe", "pipe"] });
  const out: string[] = [];
  const err: string[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  let done = false;

  const split = (stream: NodeJS.ReadableStream, into: string[]) => {
    let partial = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk: string) => {
      const parts = (partial + chunk).split("\n");
      partial = parts.pop()!;
      if (parts.length === 0) return;
      for (const p of parts) into.push(p.endsWith("\r") ? p.slice(0, -1) : p);
      notify();
    });
    return new Promise<void>((resolve) =>
      stream.on("end", () => {
        if (partial !== "") into.push(partial);
        partial = "";
        resolve();
      }),
    );
  };
  // If the test process itself ends first (tap's file-level timeout, an uncaught error), teardowns
  // may not run: do not leave the child behind.
  const orphanGuard = () => proc.kill("SIGKILL");
  process.once("exit", orphanGuard);
  proc.once("exit", () => process.off("exit", orphanGuard));

  const outDone = split(proc.stdout!, out);
  const errDone = split(proc.stderr!, err);
  // A child that exits before reading its stdin would otherwise raise EPIPE as an unhandled error.
  proc.stdin!.on("error", () => {});
  proc.stdin!.end(opts.stdin);

  const exited = new Promise<Exit>((resolve, reject) => {
    proc.once("error", reject); // e.g. ENOENT: the program is not installed
    proc.once("exit", (code, signal) => {
      void Promise.all([outDone, errDone]).then(() => {
        done = true;
        notify();
        resolve({ code, signal });
      });
    });
  });
  exited.catch(() => {
    done = true;
    notify();
  });

  const transcript = () =>
    `$ ${cmd} ${args.join(" ")}\n--- stdout ---\n${out.slice(-60).join("\n")}\n--- stderr ---\n${err.slice(-60).join("\n")}`;

  const waitForCount = (match: LineMatch, n: number, o: WaitOptions = {}): Promise<string[]> => {
    const test = matcher(match);
    const stream = o.stream ?? "both";
    const lines = () => (stream === "stdout" ? out : stream === "stderr" ? err : [...out, ...err]);
    return new Promise<string[]>((resolve, reject) => {
      const check = () => {
        const hits = lines().filter(test);
        if (hits.length >= n) finish(() => resolve(hits.slice(0, n)));
        else if (done) finish(() => reject(new Error(`process exited before printing ${n} line(s) matching ${String(match)}\n${transcript()}`)));
      };
      const timer = setTimeout(
        () => finish(() => reject(new Error(`timed out waiting for ${n} line(s) matching ${String(match)}\n${transcript()}`))),
        o.timeoutMs ?? DEFAULT_WAIT_MS,
      );
      const finish = (f: () => void) => {
        clearTimeout(timer);
        listeners.delete(check);
        f();
      };
      listeners.add(check);
      check();
    });
  };

  return {
    proc,
    out,
    err,
    exited,
    hasExited: () => done,
    waitForCount,
    waitFor: (match, o) => waitForCount(match, 1, o).then((l) => l[0]!),
    waitExit(timeoutMs = DEFAULT_WAIT_MS) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out waiting for exit\n${transcript()}`)), timeoutMs);
      });
      return Promise.race([exited, timeout]).finally(() => clearTimeout(timer));
    },
    kill(signal = "SIGTERM") {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    },
    transcript,
  };
}

export interface Finished extends Exit {
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (bounded by `timeoutMs`, after which it is killed). */
export async function runProcess(cmd: string, args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Finished> {
  const p = spawnProcess(cmd, args, opts);
  try {
    const e = await p.waitExit(opts.timeoutMs);
    return { ...e, stdout: p.out.join("\n"), stderr: p.err.join("\n") };
  } finally {
    p.kill("SIGKILL");
  }
}

/** Kills (SIGKILL) every child still running when the test ends, and waits for it to go. */
export function killOnTeardown(t: { teardown(fn: () => unknown): void }, ...children: Spawned[]): void {
  t.teardown(async () => {
    for (const c of children) c.kill("SIGKILL");
    await Promise.all(children.map((c) => c.exited.catch(() => undefined)));
  });
}

/** A TCP port that was free a moment ago (listen on 0, read it, close). */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once("error", reject);
    s.listen({ host, port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** The environment for the hub: as ours, minus what would change its log format (journald). */
export function hubEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  delete env.JOURNAL_STREAM;
  return env;
}

/** `node dist/hub/main.js ...args`, from the repository root. */
export function spawnHub(args: readonly string[], opts: SpawnOptions = {}): Spawned {
  return spawnProcess(process.execPath, [HUB_MAIN, ...args], { env: hubEnv(), ...opts });
}

export function runHub(args: readonly string[], opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<Finished> {
  return runProcess(process.execPath, [HUB_MAIN, ...args], { env: hubEnv(), ...opts });
}

/** package.json's version, which `hub --version` must print. */
export function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
}
