// The one table of device types the hub can poll, each with the module that implements it. The
// config schema (hub/config/schema.ts) knows every type statically, for validation and the editors'
// JSON Schema; a driver's code is imported only when a device of its type is configured, so a hub
// without I2C sensors never loads their drivers (start-up time and idle RSS on a Pi Zero).
// Arduinos are not here: they have their own host (hub/arduino.ts).
import type { DeviceConfig } from "./config/schema.js";
import type { DriverDefinition } from "../drivers/types.js";

type PolledType = Exclude<DeviceConfig["type"], "arduino">;

// `satisfies` keeps the table exhaustive: a device type added to the schema without a driver here
// is a compile error, not a start-up failure.
const DRIVERS = {
  simulated_sensor: async () => (await import("../drivers/simulated-sensor.js")).simulatedSensor,
  gpio_input: async () => (await import("../drivers/gpio-input.js")).gpioInput,
  gpio_output: async () => (await import("../drivers/gpio-output.js")).gpioOutput,
  bme280: async () => (await import("../drivers/bme280.js")).bme280,
  bmp280: async () => (await import("../drivers/bme280.js")).bmp280,
  sht3x: async () => (await import("../drivers/sht3x.js")).sht3x,
  sht4x: async () => (await import("../drivers/sht4x.js")).sht4x,
  aht20: async () => (await import("../drivers/aht20.js")).aht20,
  bh1750: async () => (await import("../drivers/bh1750.js")).bh1750,
  ads1115: async () => (await import("../drivers/ads1115.js")).ads1115,
  ds18b20: async () => (await import("../drivers/ds18b20.js")).ds18b20,
  htu21d: async () => (await import("../drivers/htu21d.js")).htu21d,
} satisfies Record<PolledType, () => Promise<DriverDefinition<never>>>;

/** The drivers of the given device types, by type; each module is imported once, all in parallel. */
export async function loadDrivers(types: readonly string[]): Promise<Map<string, DriverDefinition<unknown>>> {
  const unique = [...new Set(types)];
  const loaded = await Promise.all(
    unique.map(async (type) => {
      const load = (DRIVERS as Record<string, (() => Promise<DriverDefinition<never>>) | undefined>)[type];
      if (!load) throw new Error(`no driver for device type ${type}`);
      return [type, (await load()) as DriverDefinition<unknown>] as const;
    }),
  );
  return new Map(loaded);
}
