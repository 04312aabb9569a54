// Binary sensors on a GPIO input: a push button, a PIR motion sensor, a door/window reed contact.
// Reports `state` (true = active: pressed, motion, open) on every debounced change through watch();
// the device host publishes it as ON/OFF on <base>/<device>. Pulls cannot be set through sysfs: they
// come from the wiring or from config.txt (`gpio=17=ip,pu`), see the README.
import type { Device, DriverContext, DriverDefinition } from "./types.js";

export interface GpioInputConfig {
  /** BCM number (GPIO17 = pin 11 on the header). */
  pin: number;
  /** Active (ON) when the pin is low: a button to ground with a pull-up. */
  active_low: boolean;
  /** Milliseconds a new level must hold before it counts. */
  debounce: number;
  /** What is wired (motion, door, window…); used by Home Assistant discovery only. */
  device_class?: string;
}

export const gpioInput: DriverDefinition<GpioInputConfig> = {
  kind: "gpio_input",
  quantities: () => ({ state: {} }),
  async open(o, ctx: DriverContext): Promise<Device> {
    if (!ctx.gpio) throw new Error("no GPIO available to this hub");
    const line = await ctx.gpio.openInput(o.pin, { edge: "both", debounceMs: o.debounce, activeLow: o.active_low });
    return {
      read: async () => ({ state: await line.read() }),
      watch: (emit) => line.watch((v) => emit({ state: v })),
      close: () => line.close(),
    };
  },
};
