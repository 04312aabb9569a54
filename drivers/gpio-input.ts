// Binary sensors on a GPIO input: a push button, a PIR motion sensor, a door/window reed contact.
// Reports `state` (true = active: pressed, motion, open) on every debounced change through watch();
// the device host publishes it as ON/OFF on <base>/<device>. Pulls cannot be set through sysfs: they
// come from the wiring or from config.txt (`gpio=17=ip,pu`), see the README.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import type { GpioProvider } from "./io/gpio.js";

export interface GpioInputConfig {
  /** BCM number (GPIO17 = pin 11 on the header). */
  pin: number;
  /** Active (ON) when the pin is low: a button to ground with a pull-up. */
  active_low: boolean;
  /** Milliseconds a new level must hold before it counts. */
  debounce: number;
  /** What is wired (motion, door, window…); used by Home Assistant discovery only. */
  device_class?: string;
  /** Name of a GPIO expander (MCP23017) whose pin this is; absent: the Pi's own GPIO. */
  expander?: string;
  /** Expander pins: the chip's internal pull-up (default on). */
  pull_up?: boolean;
}

/** The GPIO backend a device's pin is on: the Pi's own, or a named expander. */
export function gpioFor(ctx: DriverContext, expander: string | undefined): GpioProvider {
  if (expander === undefined) {
    if (!ctx.gpio) throw new Error("no GPIO available to this hub");
    return ctx.gpio;
  }
  const g = ctx.expanders?.(expander);
  if (!g) throw new Error(`no GPIO expander named ${expander} (gpio.expanders in the config)`);
  return g;
}

export const gpioInput: DriverDefinition<GpioInputConfig> = {
  kind: "gpio_input",
  quantities: () => ({ state: {} }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const gpio = gpioFor(ctx, o.expander);
    const line = await gpio.openInput(o.pin, { edge: "both", debounceMs: o.debounce, activeLow: o.active_low, pullUp: o.pull_up });
    return {
      read: async () => ({ state: await line.read() }),
      watch: (emit) => line.watch((v) => emit({ state: v })),
      close: () => line.close(),
    };
  },
};
