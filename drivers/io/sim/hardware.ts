// Simulated hardware for `--simulate`: every I2C sensor and DS18B20 the config declares exists, at
// its configured bus and address, as a register-level model measuring its own slightly different
// room of the scripted house environment. Drivers reach it through the same seams as real hardware.
import type { Clock } from "../../../hub/contracts.js";
import { type I2cBus, i2cProvider } from "../i2c.js";
import { createOneWire, type OneWire } from "../one-wire.js";
import { createAds1115 } from "./ads1115.js";
import { createAht20 } from "./aht20.js";
import { createBh1750 } from "./bh1750.js";
import { createBme280 } from "./bme280.js";
import type { SimGpioChip } from "./gpio.js";
import { createHtu21d } from "./htu21d.js";
import { createMcp23017, type Mcp23017Model } from "./mcp23017.js";
import { type Environment, houseEnvironment } from "./environment.js";
import { createSimI2cBus, type SimChip, type SimI2cBus } from "./i2c-bus.js";
import { createSht3x } from "./sht3x.js";
import { createSht4x } from "./sht4x.js";
import { createSimW1, type SimW1 } from "./w1.js";

/** What the simulator needs to know of a configured device. */
export interface SimDeviceDecl {
  type: string;
  bus?: number;
  address?: number;
  id?: string;
  /** MCP23017: the Pi GPIO its INTA is wired to (driven on the simulated GPIO chip). */
  interrupt_pin?: number;
}

export interface SimulatedHardware {
  i2c(bus: number): Promise<I2cBus>;
  oneWire: OneWire;
  /** The simulated bus N (created on first use), to inject faults or attach more chips. */
  bus(number: number): SimI2cBus;
  w1: SimW1;
  start(): Promise<void>;
  stop(): Promise<void>;
}

type ChipFactory = (o: { clock: Clock; env: Environment }) => SimChip;

/** Device types the simulator can stand in for, by config `type`. */
export const SIM_CHIPS: Record<string, ChipFactory> = {
  bme280: (o) => createBme280({ ...o, variant: "bme280" }),
  bmp280: (o) => createBme280({ ...o, variant: "bmp280" }),
  sht3x: createSht3x,
  sht4x: createSht4x,
  aht20: createAht20,
  bh1750: createBh1750,
  ads1115: createAds1115,
  htu21d: createHtu21d,
  mcp23017: createMcp23017,
};

/** A stable made-up DS18B20 id for the n-th simulated sensor. */
export function simW1Id(n: number): string {
  return `28-${(0x3c01d607a000 + n).toString(16).padStart(12, "0")}`;
}

export function createSimulatedHardware(
  devices: SimDeviceDecl[],
  o: { clock: Clock; env?: (seed: number) => Environment; gpio?: SimGpioChip },
): SimulatedHardware {
  const envFor = o.env ?? ((seed: number) => houseEnvironment(o.clock, { seed, temperatureOffset: ((seed * 7) % 5) / 2 - 1 }));
  const buses = new Map<number, SimI2cBus>();
  const simBus = (n: number) => {
    let b = buses.get(n);
    if (!b) {
      b = createSimI2cBus();
      buses.set(n, b);
    }
    return b;
  };
  const w1 = createSimW1({ clock: o.clock });
  let w1Count = 0;
  devices.forEach((d, i) => {
    const factory = SIM_CHIPS[d.type];
    if (factory && d.address !== undefined) {
      const chip = factory({ clock: o.clock, env: envFor(i) });
      simBus(d.bus ?? 1).attach(d.address, chip);
      // The expander's INTA wire to a Pi input: idle high (active-low output), low while pending.
      const pin = d.interrupt_pin;
      if (d.type === "mcp23017" && pin !== undefined && o.gpio) {
        const g = o.gpio;
        (chip as Mcp23017Model).onInterrupt = (level) => g.drive(pin, level ?? 1);
        g.drive(pin, 1);
      }
    }
    if (d.type === "ds18b20") w1.add(d.id ?? simW1Id(w1Count++), envFor(i));
  });
  const provider = i2cProvider(async (n) => simBus(n));
  return {
    i2c: (n) => provider.bus(n),
    oneWire: createOneWire(() => w1.dir),
    bus: simBus,
    w1,
    // No DS18B20 configured, no temporary directory.
    start: async () => {
      if (devices.some((d) => d.type === "ds18b20")) await w1.start();
    },
    async stop() {
      await provider.closeAll();
      await w1.stop();
    },
  };
}
