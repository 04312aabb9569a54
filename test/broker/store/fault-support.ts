// Helpers shared by the broker's end-to-end fault tests (faults.test.ts, faults-kill.test.ts): the
// built hub as a child process on a temp state dir, kill -9, a seeded PRNG and an event-driven wait.
// The hub is ready once its "listening" line is out: the state file is restored before the listener
// opens (store/journal.ts open()), and what starts after it (devices, rules) plays no part here.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Test } from "tap";
import { killOnTeardown, type Spawned, spawnHub } from "../../support/spawn.js";

const LISTENING = /hub\/broker: listening|"msg":"listening"/;

export function tempDir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), "hub-store-faults-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

export function writeConfig(d: string, port: number, stateDir = join(d, "state")): string {
  const file = join(d, "hub.yaml");
  writeFileSync(
    file,
    `hardware: simulate
state_dir: ${stateDir}
log: { level: info }
homeassistant: { enabled: false }
broker:
  listeners: [{ host: 127.0.0.1, port: ${port} }]
  sys_interval: 0s
`,
  );
  return file;
}

/** Starts the built hub; resolves once its listener accepts connections. */
export async function startHub(t: Test, config: string): Promise<Spawned> {
  const h = spawnHub(["run", "--config", config]);
  killOnTeardown(t, h);
  await h.waitFor(LISTENING, { timeoutMs: 20_000 });
  return h;
}

export async function kill9(h: Spawned): Promise<void> {
  h.kill("SIGKILL");
  await h.waitExit();
}

/** A deterministic PRNG (mulberry32) for the kill points. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves when `cond()` holds, checked on every event `on` subscribes to; rejects after `ms`. */
export function until(cond: () => boolean, on: (check: () => void) => () => void, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let off = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out: ${what}`));
    }, ms);
    const check = () => {
      if (!cond()) return;
      clearTimeout(timer);
      off();
      resolve();
    };
    off = on(check);
    check();
  });
}
