// Test support for the Arduino link: a socat pseudo-terminal pair (the hub opens one end through the
// real serialport backend, a scripted board holds the other), killing socat as an unplug, an event
// log whose waits resolve on events with a timeout, and a serial provider that reports its opens.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nodeSerial } from "../../../drivers/io/serial-node.js";
import type { SerialConnection, SerialProvider } from "../../../drivers/io/serial.js";
import { killOnTeardown, type Spawned, spawnProcess } from "../../support/spawn.js";

/** Why pty tests cannot run here, or undefined when they can. */
export function ptySkipReason(): string | undefined {
  if (spawnSync("socat", ["-V"], { stdio: "ignore" }).error) return "socat is not installed (apt install socat)";
  return undefined;
}

export interface PtyPair {
  /** The end the hub opens (a stable symlink, like /dev/serial/by-id/...). */
  hubPath: string;
  /** The end the scripted board opens. */
  boardPath: string;
  /** Starts socat (again, after unplug()) and resolves when both ends exist. */
  plug(): Promise<void>;
  /** Kills socat: the hub's end closes with `disconnected`, and both symlinks go away. */
  unplug(): Promise<void>;
}

export function ptyPair(t: { teardown(fn: () => unknown): void }): PtyPair {
  const dir = mkdtempSync(join(tmpdir(), "hub-pty-"));
  const hubPath = join(dir, "usb-Arduino_Uno_0001-if00");
  const boardPath = join(dir, "board");
  let proc: Spawned | undefined;
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const pair: PtyPair = {
    hubPath,
    boardPath,
    async plug() {
      const p = spawnProcess("socat", ["-d", "-d", `pty,raw,echo=0,link=${hubPath}`, `pty,raw,echo=0,link=${boardPath}`]);
      killOnTeardown(t, p);
      proc = p;
      // socat logs this after both ptys and their links exist.
      await p.waitFor("starting data transfer loop", { stream: "stderr", timeoutMs: 10_000 });
    },
    async unplug() {
      const p = proc;
      proc = undefined;
      p?.kill("SIGTERM");
      await p?.waitExit(10_000);
    },
  };
  return pair;
}

/** Resolves with the first event matching, already recorded or still to come; rejects after a timeout. */
export function eventLog<E>() {
  const events: E[] = [];
  const waiters = new Set<() => void>();
  return {
    events,
    push(e: E) {
      events.push(e);
      for (const w of [...waiters]) w();
    },
    /** The first event at index >= from matching; `from` lets a test ask for a new one. */
    wait(match: (e: E) => boolean, what: string, from = 0, timeoutMs = 10_000): Promise<E> {
      return new Promise((resolve, reject) => {
        const check = () => {
          for (let i = from; i < events.length; i++) {
            if (match(events[i]!)) {
              waiters.delete(check);
              clearTimeout(timer);
              resolve(events[i]!);
              return true;
            }
          }
          return false;
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`timed out waiting for ${what}; events: ${JSON.stringify(events.slice(-20))}`));
        }, timeoutMs);
        if (!check()) waiters.add(check);
      });
    },
  };
}

/** nodeSerial() that records each open and close, so a test can wait for the hub to have opened the port. */
export function watchedSerial(log: ReturnType<typeof eventLog<string>>): SerialProvider {
  const real = nodeSerial();
  return {
    exists: (p) => real.exists(p),
    async open(path, baud) {
      const c = await real.open(path, baud);
      log.push("open");
      c.onClose((i) => log.push(i.disconnected ? "close:disconnected" : "close"));
      return c;
    },
  };
}

/** The board's end of the pair: lines in, raw bytes out. */
export async function openBoard(path: string): Promise<{ conn: SerialConnection; lines: ReturnType<typeof eventLog<string>>; send(text: string): Promise<void> }> {
  const conn = await nodeSerial().open(path, 115200);
  const lines = eventLog<string>();
  let buf = "";
  conn.onData((b) => {
    buf += Buffer.from(b).toString("latin1");
    for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
  });
  return { conn, lines, send: (text) => conn.write(Buffer.from(text, "latin1")) };
}

/**
 * Resolves like `p`, moving the fake clock forward `stepMs` at a time (with real I/O allowed to run
 * in between) until it settles: for waits on something the link does after a timer fires, where
 * the timer is armed only once real I/O (an open, a close) has completed.
 */
export async function advanceUntil<T>(clock: { advance(ms: number): void }, p: Promise<T>, stepMs = 100, maxSteps = 200): Promise<T> {
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < maxSteps && !done; i++) {
    await new Promise((r) => setTimeout(r, 5)); // lets socat and the tty layer move bytes
    if (!done) clock.advance(stepMs);
  }
  return p;
}

/**
 * Moves the fake clock `steps` × `stepMs`, letting the link's timers and real I/O run between steps;
 * returns how many opens `io` recorded meanwhile (while the device path is missing the link only
 * polls for it: none).
 */
export async function opensWhile(clock: { advance(ms: number): void }, io: ReturnType<typeof eventLog<string>>, steps = 5, stepMs = 4000): Promise<number> {
  const before = io.events.filter((e) => e === "open").length;
  for (let i = 0; i < steps; i++) {
    clock.advance(stepMs);
    await new Promise((res) => setImmediate(res));
  }
  return io.events.filter((e) => e === "open").length - before;
}
