// What `hub i2c scan` needs: the acknowledging addresses on a bus and the chips likely there, refined
// by a chip-id read where one is safe (Bosch sensors at 0x76/0x77). The probe is i2c-bus's scan
// (a quick write or read byte per address, as i2cdetect does).
import { hex, type I2cBus } from "./i2c.js";

/** Usual occupants of common addresses (sensor boards sold for the Pi). */
const LIKELY = new Map<number, string[]>([
  [0x23, ["BH1750"]],
  [0x5c, ["BH1750 (ADDR high)"]],
  [0x38, ["AHT20/AHT10"]],
  [0x3c, ["SSD1306 display"]],
  [0x3d, ["SSD1306 display"]],
  [0x40, ["HTU21D/Si7021", "INA219"]],
  [0x44, ["SHT3x", "SHT4x"]],
  [0x45, ["SHT3x (ADDR high)", "SHT4x-B"]],
  [0x46, ["SHT4x-C"]],
  [0x57, ["EEPROM (on RTC boards)"]],
  [0x68, ["DS3231/DS1307 clock", "MPU-6050"]],
  [0x76, ["BME280/BMP280"]],
  [0x77, ["BME280/BMP280 (SDO high)"]],
]);
for (let a = 0x20; a <= 0x27; a++) LIKELY.set(a, [...(LIKELY.get(a) ?? []), "MCP23017"]);
for (let a = 0x48; a <= 0x4b; a++) LIKELY.set(a, [...(LIKELY.get(a) ?? []), "ADS1115"]);

const BOSCH_IDS = new Map<number, string>([
  [0x60, "BME280"],
  [0x58, "BMP280"],
  [0x61, "BME680"],
  [0x55, "BMP180"],
]);

export interface ScanResult {
  address: number;
  /** "0x76" */
  hex: string;
  likely: string[];
}

export async function scanBus(bus: I2cBus): Promise<ScanResult[]> {
  const found = await bus.scan(0x03, 0x77);
  const out: ScanResult[] = [];
  for (const address of found) {
    let likely = LIKELY.get(address) ?? [];
    if (address === 0x76 || address === 0x77) {
      // Register 0xD0 is the chip id on every Bosch environmental sensor; a read is harmless.
      const id = await bus.readByte(address, 0xd0).catch(() => undefined);
      const chip = id === undefined ? undefined : BOSCH_IDS.get(id);
      if (chip) likely = [chip];
    }
    out.push({ address, hex: `0x${hex(address)}`, likely });
  }
  return out;
}
