// Starts an embedded broker with its durable store (hub/broker/store) on a given file, listening on
// an ephemeral loopback port: the setup of the store tests and of the ACL re-check test, which stop
// and start a broker on the same file to stand for a restart. The caller registers `stop` as a
// teardown (or not, to leave a "crashed" broker behind); stop() may be called more than once.
import type { Clock } from "../../hub/contracts.js";
import type { BrokerAuth } from "../../hub/broker/auth/types.js";
import { createBroker, type EmbeddedBroker } from "../../hub/broker/broker.js";
import type { BrokerLimits } from "../../hub/broker/core.js";
import { type BrokerStore, createBrokerStore } from "../../hub/broker/store/journal.js";
import { systemClock } from "../../hub/clock.js";
import { memoryLogger } from "../../hub/log.js";
import { defaultLimits } from "./broker.js";

export interface StoreBroker {
  broker: EmbeddedBroker;
  store: BrokerStore;
  port: number;
  lines: string[];
  stop(): Promise<void>;
}

export interface StoreBrokerOptions {
  clock?: Clock;
  limits?: Partial<BrokerLimits>;
  /** Default 2 ms: short, so tests wait little for acks. */
  commitIntervalMs?: number;
  maxPageCount?: number;
  retryIntervalMs?: number;
  /** Set on the core before start(), so restored sessions are re-checked under it. */
  auth?: BrokerAuth;
}

export async function startStoreBroker(path: string, o: StoreBrokerOptions = {}): Promise<StoreBroker> {
  const log = memoryLogger("debug");
  const clock = o.clock ?? systemClock();
  const store = createBrokerStore(
    { path, sync: "normal", commitIntervalMs: o.commitIntervalMs ?? 2, maxPageCount: o.maxPageCount, retryIntervalMs: o.retryIntervalMs },
    { clock, log },
  );
  const broker = createBroker({
    limits: { ...defaultLimits(), ...o.limits },
    listeners: [{ host: "127.0.0.1", port: 0, protocol: "mqtt" }],
    sysIntervalMs: 0,
    version: "test",
    clock,
    log,
    store,
  });
  if (o.auth !== undefined) broker.core.auth = o.auth;
  await broker.start();
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await broker.stop();
  };
  return { broker, store, port: broker.addresses()[0]!.port, lines: log.lines, stop };
}
