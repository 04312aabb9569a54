// Maxim DS18B20 1-Wire thermometer through the kernel's w1 sysfs. The kernel does the bus work and
// checks the scratchpad CRC; the driver insists on `YES`, treats `NO`, an all-zero scratchpad (a
// shorted data line passes the CRC) and t=85000 (the power-on value: no conversion ran) as worth one
// more read, and then as an error, so a wrong value is never published. Sensors are found by id.
import type { Device, DriverContext, DriverDefinition } from "./types.js";
import { BAD_DATA, CRC_ERROR, hwError, withRetry } from "./io/i2c.js";
import { parseW1Slave } from "./io/one-wire.js";

export interface Ds18b20Options {
  /** Slave id such as 28-0316a2794aff; when absent, the only DS18B20 present. */
  id?: string;
  /** w1 devices directory; default: the hub's (/sys/bus/w1/devices, or the simulator's). */
  dir?: string;
}

const FAMILY = "28";
const POWER_ON_MILLIDEGREES = 85_000;

/** Degrees Celsius from the text of w1_slave, or a coded error (CRC_ERROR / BAD_DATA are retryable). */
export function temperatureFromW1(text: string): number {
  const r = parseW1Slave(text);
  if (!r.ok) {
    if (r.reason === "crc") throw hwError("CRC check failed (w1_slave says NO): noise on the 1-Wire line", CRC_ERROR);
    throw hwError(`unreadable w1_slave: ${JSON.stringify(text.slice(0, 80))}`, BAD_DATA);
  }
  if (r.bytes.every((b) => b === 0)) throw hwError("all-zero scratchpad (data line shorted to ground?)", BAD_DATA);
  if (r.millidegrees === POWER_ON_MILLIDEGREES) {
    throw hwError("85 °C is the power-on value: the conversion did not run (check power; parasite mode needs a strong pull-up)", BAD_DATA);
  }
  return r.millidegrees / 1000;
}

export const ds18b20: DriverDefinition<Ds18b20Options> = {
  kind: "ds18b20",
  quantities: () => ({ temperature: { unit: "°C", precision: 2 } }),
  async open(o, ctx: DriverContext): Promise<Device> {
    const ow = ctx.oneWire;
    if (!ow) throw new Error("no 1-Wire access in this hub (hardware backend missing)");
    const dir = o.dir ?? ow.dir;
    let id = o.id;
    if (id === undefined) {
      const found = await ow.list(FAMILY, dir);
      if (found.length === 0) {
        throw new Error(`no DS18B20 (28-*) in ${dir}: is 1-Wire enabled (raspi-config → Interface → 1-Wire) and the sensor wired with a 4.7 kΩ pull-up?`);
      }
      if (found.length > 1) throw new Error(`several DS18B20 in ${dir} (${found.join(", ")}): set id to choose one`);
      id = found[0]!;
      ctx.log.info("found DS18B20", { id });
    }
    const sensor = id;
    const who = `DS18B20 ${sensor}`;
    return {
      async read() {
        return withRetry(ctx.clock, who, async () => {
          let text: string;
          try {
            text = await ow.read(sensor, dir);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code === "ENOENT") {
              throw hwError(`not found in ${dir} (unplugged, or a wrong id?)`, "ENOENT", err);
            }
            throw err;
          }
          return { temperature: temperatureFromW1(text) };
        });
      },
      async close() {},
    };
  },
};
