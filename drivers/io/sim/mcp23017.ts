// Register-level model of the Microchip MCP23017 16-bit I/O expander (0x20–0x27), datasheet
// DS20001952C, with IOCON.BANK = 0 addressing (table 3-5: A/B registers paired, IODIRA 0x00 …
// OLATB 0x15). A write message is [register, data…]; reads continue from the address pointer.
// Sequential mode (IOCON.SEQOP = 0) increments the pointer after each byte, wrapping after 0x15;
// byte mode (SEQOP = 1) toggles within the A/B pair (§3.2.1). Reading GPIO returns the pin levels
// (inputs: the external drive, else the pull-up, inverted by IPOL; outputs: OLAT); writing GPIO
// writes OLAT (§3.5.10). Interrupt-on-change (GPINTEN, INTCON, DEFVAL) sets INTF and captures
// INTCAP; reading GPIO or INTCAP of that port clears it (§3.6.4); INTA/INTB follow IOCON.MIRROR,
// ODR and INTPOL (§3.6.5). Reset state: IODIR 0xFF, everything else 0 (table 3-5).
import type { Clock } from "../../../hub/contracts.js";
import type { Environment } from "./environment.js";
import { nack, noFaults, type SimChip } from "./i2c-bus.js";

export const REG = {
  IODIRA: 0x00, IODIRB: 0x01, IPOLA: 0x02, IPOLB: 0x03, GPINTENA: 0x04, GPINTENB: 0x05,
  DEFVALA: 0x06, DEFVALB: 0x07, INTCONA: 0x08, INTCONB: 0x09, IOCON: 0x0a, IOCON2: 0x0b,
  GPPUA: 0x0c, GPPUB: 0x0d, INTFA: 0x0e, INTFB: 0x0f, INTCAPA: 0x10, INTCAPB: 0x11,
  GPIOA: 0x12, GPIOB: 0x13, OLATA: 0x14, OLATB: 0x15,
} as const;
const LAST = 0x15;
const IOCON_MIRROR = 0x40;
const IOCON_SEQOP = 0x20;
const IOCON_ODR = 0x04;
const IOCON_INTPOL = 0x02;

type Level = 0 | 1;

export interface Mcp23017Model extends SimChip {
  /** The 22 registers (IOCON at 0x0A and 0x0B is one register). */
  readonly registers: Uint8Array;
  /** Drive pin n (0–7 = GPA0–7, 8–15 = GPB0–7) from outside; undefined releases it (pull-up or floating). */
  drive(pin: number, level: Level | undefined): void;
  /** The level on pin n: what an output drives, or what an input sees (floating reads 0). */
  level(pin: number): Level;
  /** Level of the INTA / INTB output pins; undefined when open-drain and released. */
  int(port: "A" | "B"): Level | undefined;
  /** Called whenever INTA may have changed (wire it to a simulated Pi GPIO input). */
  onInterrupt?: (intA: Level | undefined) => void;
}

export function createMcp23017(_o: { clock?: Clock; env?: Environment } = {}): Mcp23017Model {
  const faults = noFaults();
  const r = new Uint8Array(LAST + 1);
  r[REG.IODIRA] = 0xff;
  r[REG.IODIRB] = 0xff;
  const external = new Map<number, Level>();
  let pointer = 0;

  const port = (pin: number) => (pin < 8 ? 0 : 1);
  const bit = (pin: number) => 1 << (pin & 7);
  const pinLevel = (pin: number): Level => {
    const p = port(pin);
    if (!(r[REG.IODIRA + p]! & bit(pin))) return r[REG.OLATA + p]! & bit(pin) ? 1 : 0;
    const ext = external.get(pin);
    if (ext !== undefined) return ext;
    return r[REG.GPPUA + p]! & bit(pin) ? 1 : 0; // a 100 kΩ pull-up, else floating (read as 0 here)
  };
  /** GPIO register value of a port: pin levels, inputs inverted where IPOL is set (§3.5.2). */
  const gpio = (p: 0 | 1): number => {
    let v = 0;
    for (let i = 0; i < 8; i++) if (pinLevel(p * 8 + i)) v |= 1 << i;
    return (v ^ (r[REG.IPOLA + p]! & r[REG.IODIRA + p]!)) & 0xff;
  };
  // The previous pin states, for INTCON = 0 (interrupt on change from the previous value).
  const previous: [number, number] = [gpio(0), gpio(1)];

  const intActive = (p: 0 | 1) => r[REG.INTFA + p]! !== 0;
  const intLevel = (which: 0 | 1): Level | undefined => {
    const iocon = r[REG.IOCON]!;
    const active = iocon & IOCON_MIRROR ? intActive(0) || intActive(1) : intActive(which);
    if (iocon & IOCON_ODR) return active ? 0 : undefined; // open drain, active low
    return active === ((iocon & IOCON_INTPOL) !== 0) ? 1 : 0;
  };
  let lastIntA = intLevel(0);
  const signal = () => {
    const now = intLevel(0);
    if (now !== lastIntA) {
      lastIntA = now;
      model.onInterrupt?.(now);
    }
  };

  /** Re-evaluates interrupt-on-change after pin levels may have changed (§3.6). */
  const evaluate = () => {
    for (const p of [0, 1] as const) {
      const now = gpio(p);
      const enabled = r[REG.GPINTENA + p]! & r[REG.IODIRA + p]!;
      const intcon = r[REG.INTCONA + p]!;
      const reference = (intcon & r[REG.DEFVALA + p]!) | (~intcon & previous[p] & 0xff);
      const fired = (now ^ reference) & enabled & ~r[REG.INTFA + p]!;
      // Only the first change is captured until the interrupt is cleared (INTCAP holds that state).
      if (fired && r[REG.INTFA + p] === 0) r[REG.INTCAPA + p] = now;
      r[REG.INTFA + p]! |= fired;
      previous[p] = now;
    }
    signal();
  };

  // Cleared by the read; a pin still differing from DEFVAL (INTCON = 1) raises it again at once.
  const clearInterrupt = (p: 0 | 1) => {
    r[REG.INTFA + p] = 0;
    evaluate();
  };

  const advance = () => {
    if (r[REG.IOCON]! & IOCON_SEQOP) pointer ^= 1; // byte mode, BANK = 0: toggles within the pair
    else pointer = pointer >= LAST ? 0 : pointer + 1;
  };

  const readRegister = (a: number): number => {
    if (faults.wrongId && a === REG.IOCON2) return 0xff;
    switch (a) {
      case REG.GPIOA:
      case REG.GPIOB: {
        const p = (a - REG.GPIOA) as 0 | 1;
        const v = gpio(p);
        clearInterrupt(p);
        return v;
      }
      case REG.INTCAPA:
      case REG.INTCAPB: {
        const p = (a - REG.INTCAPA) as 0 | 1;
        const v = r[a]!;
        clearInterrupt(p);
        return v;
      }
      case REG.IOCON2:
        return r[REG.IOCON]!;
      default:
        return r[a]!;
    }
  };

  const writeRegister = (a: number, v: number) => {
    switch (a) {
      case REG.GPIOA:
      case REG.GPIOB:
        r[REG.OLATA + a - REG.GPIOA] = v; // §3.5.10: a write to GPIO modifies OLAT
        break;
      case REG.INTFA:
      case REG.INTFB:
      case REG.INTCAPA:
      case REG.INTCAPB:
        return; // read-only
      case REG.IOCON:
      case REG.IOCON2:
        // BANK = 1 remaps every register (table 3-4); this model (and the driver) keep BANK = 0.
        if (v & 0x80) throw new Error("simulated MCP23017: IOCON.BANK = 1 is not modelled");
        r[REG.IOCON] = v & 0xfe; // bit 0 is unimplemented and reads 0
        break;
      default:
        r[a] = v;
    }
    evaluate();
  };

  const model: Mcp23017Model = {
    faults,
    registers: r,
    write(bytes) {
      if (bytes.length === 0) return; // an address probe
      if (bytes[0]! > LAST) throw nack("write"); // no such register: the data byte is not acknowledged
      pointer = bytes[0]!;
      for (let i = 1; i < bytes.length; i++) {
        writeRegister(pointer, bytes[i]!);
        advance();
      }
    },
    read(length) {
      const out = new Uint8Array(length);
      for (let i = 0; i < length; i++) {
        out[i] = readRegister(pointer);
        advance();
      }
      return out;
    },
    drive(pin, level) {
      if (!Number.isInteger(pin) || pin < 0 || pin > 15) throw new Error(`MCP23017 has pins 0..15, not ${pin}`);
      if (level === undefined) external.delete(pin);
      else external.set(pin, level);
      evaluate();
    },
    level: pinLevel,
    int: (p) => intLevel(p === "A" ? 0 : 1),
  };
  return model;
}
