// Starting and stopping the hub's parts: in order on start, in reverse on stop, with a deadline.
// A part that fails to stop in time is abandoned (logged) so that SIGTERM always ends the process
// within systemd's TimeoutStopSec; a part that throws is logged with its name and the rest go on.
import type { Clock, Logger, Service } from "./contracts.js";

export interface Lifecycle {
  start(): Promise<void>;
  stop(deadlineMs: number): Promise<{ clean: boolean }>;
  reload(): Promise<void>;
}

export function createLifecycle(services: Service[], log: Logger, clock: Clock): Lifecycle {
  const started: Service[] = [];
  return {
    async start() {
      for (const s of services) {
        const t0 = clock.monotonic();
        await s.start(); // a failure to start is fatal: main reports it and exits non-zero
        started.push(s);
        log.debug("started", { part: s.name, ms: Math.round(clock.monotonic() - t0) });
      }
    },
    async stop(deadlineMs) {
      let clean = true;
      const deadline = clock.monotonic() + deadlineMs;
      while (started.length > 0) {
        const s = started.pop()!;
        const left = Math.max(0, deadline - clock.monotonic());
        let cancel = () => {};
        const timedOut = new Promise<"timeout">((resolve) => {
          cancel = clock.after(left, () => resolve("timeout"));
        });
        try {
          const r = await Promise.race([s.stop().then(() => "ok" as const), timedOut]);
          if (r === "timeout") {
            clean = false;
            log.error("part did not stop in time; abandoning it", { part: s.name });
          }
        } catch (err) {
          clean = false;
          log.error("part failed while stopping", { part: s.name, error: err });
        } finally {
          cancel();
        }
      }
      return { clean };
    },
    async reload() {
      for (const s of started) {
        if (!s.reload) continue;
        try {
          await s.reload();
        } catch (err) {
          log.error("reload failed; keeping the previous state", { part: s.name, error: err });
        }
      }
    },
  };
}
