// The hub's liveness as the systemd watchdog sees it: a probe message goes round the embedded broker
// (publish → subscription tree → in-process subscriber) every few seconds, and the hub counts as
// healthy only while the last probe came back recently. A hub whose event loop still ticks but whose
// message routing is wedged then stops feeding the watchdog and systemd restarts it.
// Faults that a restart cannot cure (a dead uplink, a full disk, a missing sensor) are not probed:
// they are reported on topics and in the log instead (DESIGN.md §7).
import type { Bus, Cancel, Clock, Logger } from "./contracts.js";

/** `$SYS/...`: never matched by a client's `#` subscription (MQTT-4.7.2-1), so no client sees probes. */
export const HEALTH_TOPIC = "$SYS/hub/health/probe";

export interface HealthProbe {
  start(): Promise<void>;
  /** True while a probe came back within `staleAfterMs`. */
  healthy(): boolean;
  stop(): void;
}

export interface HealthOptions {
  bus: Bus;
  clock: Clock;
  log: Logger;
  /** Time between probes. */
  intervalMs: number;
  /** Unhealthy when no probe came back for this long (a few intervals, so one lost probe is not fatal). */
  staleAfterMs: number;
}

export function createHealthProbe(o: HealthOptions): HealthProbe {
  let seq = 0;
  let lastBack = Number.NEGATIVE_INFINITY;
  let cancels: Cancel[] = [];
  let wasHealthy = true;
  const probe = () => {
    seq = (seq + 1) % 1_000_000;
    o.bus.publish({ topic: HEALTH_TOPIC, payload: Buffer.from(String(seq)), qos: 0, retain: false }).catch((err) => {
      o.log.warn("health probe could not be published", { error: err instanceof Error ? err.message : String(err) });
    });
  };
  const healthy = () => {
    const ok = o.clock.monotonic() - lastBack <= o.staleAfterMs;
    if (ok !== wasHealthy) {
      wasHealthy = ok;
      if (ok) o.log.info("message routing answers health probes again");
      else o.log.error("message routing does not answer health probes", { silentMs: Math.round(o.clock.monotonic() - lastBack) });
    }
    return ok;
  };
  return {
    async start() {
      const unsubscribe = await o.bus.subscribe(
        HEALTH_TOPIC,
        (m) => {
          // Only the latest probe counts: an old one delivered late says nothing about now.
          if (m.payload.toString() === String(seq)) lastBack = o.clock.monotonic();
        },
        { qos: 0 },
      );
      cancels = [unsubscribe, o.clock.every(o.intervalMs, probe)];
      lastBack = o.clock.monotonic(); // healthy from the start until the first probes are due
      probe();
    },
    healthy,
    stop() {
      for (const c of cancels.splice(0)) c();
    },
  };
}
