// A relay, LED or any on/off load on a GPIO output. The line is opened at its `safe_state` (the level
// the load must have while the hub is not in charge), then set to `initial`; on close it returns to
// `safe_state`. `pulse` turns it off again N ms after each switch-on (a door opener's button);
// `max_on` is a safety cap: whatever commands arrive, it is off at most that long after switching on.
// Reports `state` (true = on); off-switches the hub makes by itself are reported through watch().
import type { Cancel } from "../hub/contracts.js";
import type { Device, DriverContext, DriverDefinition, Reading } from "./types.js";
import { gpioFor } from "./gpio-input.js";

export interface GpioOutputConfig {
  /** BCM number. */
  pin: number;
  /** ON drives the pin low (most relay boards). */
  active_low: boolean;
  /** State set at start; default: safe_state. */
  initial?: "ON" | "OFF";
  /** State at start (before `initial`) and at stop. */
  safe_state: "ON" | "OFF";
  /** Milliseconds after which the hub turns the output off, however it was turned on. */
  max_on?: number;
  /** Milliseconds: each switch-on is a pulse of this length. */
  pulse?: number;
  /** Name of a GPIO expander (MCP23017) whose pin this is; absent: the Pi's own GPIO. */
  expander?: string;
}

export const gpioOutput: DriverDefinition<GpioOutputConfig> = {
  kind: "gpio_output",
  quantities: () => ({ state: {} }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const gpio = gpioFor(ctx, o.expander);
    const safe = o.safe_state === "ON";
    const initial = (o.initial ?? o.safe_state) === "ON";
    const line = await gpio.openOutput(o.pin, { activeLow: o.active_low, initial: safe });
    let state = safe;
    let offTimer: Cancel | undefined;
    let emit: ((r: Reading) => void) | undefined;

    // A pulse and max_on both end an ON period; the earlier one wins. Counted from the OFF→ON
    // transition: repeating ON does not extend it ("whatever the sender does").
    const limit = () => {
      const p = o.pulse;
      const m = o.max_on;
      if (p !== undefined && (m === undefined || p <= m)) return { ms: p, why: "pulse" as const };
      if (m !== undefined) return { ms: m, why: "max_on" as const };
      return undefined;
    };
    const arm = () => {
      const l = limit();
      if (l) offTimer = ctx.clock.after(l.ms, () => void autoOff(l.why));
    };
    const set = async (v: boolean) => {
      if (v && !state) arm();
      if (!v) {
        offTimer?.();
        offTimer = undefined;
      }
      await line.write(v);
      state = v;
    };
    const autoOff = async (why: "pulse" | "max_on") => {
      offTimer = undefined;
      try {
        await set(false);
        if (why === "max_on") ctx.log.warn("turned off: on for max_on", { max_on_ms: o.max_on });
        else ctx.log.debug("pulse ended");
        emit?.({ state: false });
      } catch (err) {
        ctx.log.error("could not turn off", { reason: why, error: err });
      }
    };

    if (state) arm(); // a safe_state of ON is an ON period too
    if (initial !== safe) await set(initial);
    return {
      read: async () => ({ state }),
      async write(c) {
        if (typeof c.state !== "boolean") throw new Error("gpio_output takes { state: boolean }");
        await set(c.state);
        return { state };
      },
      watch(fn) {
        emit = fn;
        return () => {
          if (emit === fn) emit = undefined;
        };
      },
      async close() {
        offTimer?.();
        offTimer = undefined;
        try {
          if (state !== safe) {
            await line.write(safe);
            state = safe;
            emit?.({ state });
          }
        } finally {
          await line.close();
        }
      },
    };
  },
};
