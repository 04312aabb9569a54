// Starts an embedded broker on an ephemeral loopback port for a test, with the config's defaults.
import type { Clock } from "../../hub/contracts.js";
import { brokerLimits } from "../../hub/app.js";
import { createBroker, type EmbeddedBroker } from "../../hub/broker/broker.js";
import type { BrokerLimits } from "../../hub/broker/core.js";
import { configSchema } from "../../hub/config/schema.js";
import { systemClock } from "../../hub/clock.js";
import { memoryLogger } from "../../hub/log.js";

export interface TestBroker {
  broker: EmbeddedBroker;
  port: number;
  url: string;
  lines: string[];
  stop(): Promise<void>;
}

export function defaultLimits(): BrokerLimits {
  return brokerLimits(configSchema.parse({}).broker.limits);
}

export async function startBroker(
  opts: { limits?: Partial<BrokerLimits>; clock?: Clock; sysIntervalMs?: number; host?: string } = {},
): Promise<TestBroker> {
  const log = memoryLogger("debug");
  const broker = createBroker({
    limits: { ...defaultLimits(), ...opts.limits },
    listeners: [{ host: opts.host ?? "127.0.0.1", port: 0 }],
    sysIntervalMs: opts.sysIntervalMs ?? 0,
    version: "test",
    clock: opts.clock ?? systemClock(),
    log,
  });
  await broker.start();
  const port = broker.addresses()[0]!.port;
  const host = opts.host ?? "127.0.0.1";
  return {
    broker,
    port,
    url: `mqtt://${host.includes(":") ? `[${host}]` : host}:${port}`,
    lines: log.lines,
    stop: () => broker.stop(),
  };
}
