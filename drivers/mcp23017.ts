// The Microchip MCP23017 16-bit I/O expander (I2C, 0x20–0x27) as a GPIO backend: the same seam as
// the Pi's own GPIO (io/gpio.ts), so gpio_input and gpio_output devices use expander pins unchanged
// (`expander: <name>`, pin 0–7 = GPA0–7, 8–15 = GPB0–7). Per datasheet DS20001952C, IOCON.BANK = 0
// addressing (table 3-5). Inputs: IODIR bit set, optional 100 kΩ pull-up (GPPU), read from GPIOA/B
// (one two-byte sequential read per poll, §3.2.1), debounced like Pi inputs; optionally
// interrupt-on-change (GPINTEN, INTCON = 0: against the previous value, §3.6) with INTA/INTB
// mirrored (IOCON.MIRROR) onto one Pi GPIO input, which triggers an immediate read (the read clears
// the interrupt, §3.6.4); polling continues as a safety net. Outputs: OLAT written before IODIR is
// cleared, so the pin starts at its initial level without a glitch (§3.5.1, §3.5.11); writes go to
// OLAT, never read-modify-write of GPIO. The chip has no id: presence is checked by IOCON reading
// back the same at 0x0A and 0x0B (one register at two addresses, table 3-5).
import type { Cancel, Clock, Logger } from "../hub/contracts.js";
import { debouncer, edgeMatches, toLogical, toPhysical, type GpioInputOptions, type GpioLine, type GpioOutputOptions, type GpioProvider } from "./io/gpio.js";
import { BAD_DATA, chipName, describe, hex, hwError, type I2cBus } from "./io/i2c.js";

/** Register addresses with IOCON.BANK = 0 (table 3-5); B is A + 1. */
export const MCP = {
  IODIRA: 0x00, IPOLA: 0x02, GPINTENA: 0x04, DEFVALA: 0x06, INTCONA: 0x08, IOCON: 0x0a, IOCON_ALIAS: 0x0b,
  GPPUA: 0x0c, INTFA: 0x0e, INTCAPA: 0x10, GPIOA: 0x12, OLATA: 0x14,
} as const;
const IOCON_MIRROR = 0x40;
export const MCP23017_PINS = 16;

export interface Mcp23017Config {
  /** Name used in logs and by devices' `expander:`. */
  name: string;
  bus: number;
  address: number;
  /** Time between reads of the input pins (ms). */
  pollMs: number;
  /** Pi BCM GPIO wired to INTA (mirrored): a change of an input is read at once. */
  interruptPin?: number;
}

export interface Mcp23017Deps {
  clock: Clock;
  log: Logger;
  i2c: ((bus: number) => Promise<I2cBus>) | undefined;
  /** The Pi's GPIO, for the interrupt line. */
  gpio?: GpioProvider;
}

interface InputLine {
  pin: number;
  activeLow: boolean;
  listeners: Set<(v: boolean) => void>;
  db: ReturnType<typeof debouncer>;
}

/** Pin n's port in a register pair: 0 = A (pins 0-7), 1 = B (pins 8-15). */
const portOf = (pin: number) => (pin < 8 ? 0 : 1);

export function mcp23017Gpio(cfg: Mcp23017Config, deps: Mcp23017Deps): GpioProvider {
  const { clock, log } = deps;
  const who = chipName("MCP23017", cfg.address, cfg.bus);
  // Shadows of the registers the hub changes, as the chip holds them (read at init, kept in step).
  const shadow = { iodir: 0xffff, gppu: 0, gpinten: 0, olat: 0 };
  const inputs = new Map<number, InputLine>();
  const outputs = new Set<number>();
  let bus: I2cBus | undefined;
  let ready: Promise<I2cBus> | undefined;
  let levels = 0; // last GPIOA/B read, physical levels
  let poller: Cancel | undefined;
  let interrupt: GpioLine | undefined;
  let polling = false;
  let failing = false;

  const fail = (err: unknown): Error => hwError(`${who}: ${describe(err)}`, (err as { code?: string }).code ?? "EIO", err);

  const init = async (): Promise<I2cBus> => {
    if (!deps.i2c) throw new Error("no I2C buses in this hub (hardware backend missing)");
    const b = await deps.i2c(cfg.bus);
    try {
      const iocon = cfg.interruptPin === undefined ? 0x00 : IOCON_MIRROR; // BANK 0, sequential, INT active-low push-pull
      await b.writeByte(cfg.address, MCP.IOCON, iocon);
      const [a, alias] = [await b.readByte(cfg.address, MCP.IOCON), await b.readByte(cfg.address, MCP.IOCON_ALIAS)];
      if (a !== iocon || alias !== iocon) {
        throw hwError(`IOCON reads 0x${hex(a)} at 0x0a and 0x${hex(alias)} at 0x0b after writing 0x${hex(iocon)}: not an MCP23017?`, "EWRONGCHIP");
      }
      // One sequential read of 0x00..0x15: pins the hub does not use keep what they had.
      const regs = Buffer.alloc(0x16);
      const { bytesRead } = await b.readI2cBlock(cfg.address, 0x00, 0x16, regs);
      if (bytesRead !== 0x16) throw hwError(`short read: ${bytesRead} of 22 bytes`, BAD_DATA);
      const pair = (reg: number) => regs[reg]! | (regs[reg + 1]! << 8);
      shadow.iodir = pair(MCP.IODIRA);
      shadow.gppu = pair(MCP.GPPUA);
      shadow.gpinten = pair(MCP.GPINTENA);
      shadow.olat = pair(MCP.OLATA);
      levels = pair(MCP.GPIOA);
      // Polarity and the interrupt's comparison are done by the hub: IPOL 0, INTCON 0 (on change).
      for (const reg of [MCP.IPOLA, MCP.IPOLA + 1, MCP.INTCONA, MCP.INTCONA + 1]) if (regs[reg] !== 0) await b.writeByte(cfg.address, reg, 0);
      log.info("MCP23017 ready", { chip: who, interrupt_pin: cfg.interruptPin ?? "none", poll_ms: cfg.pollMs });
      return b;
    } catch (err) {
      throw fail(err);
    }
  };
  const open = async (): Promise<I2cBus> => {
    ready ??= init().then((b) => (bus = b));
    return ready.catch((err) => {
      ready = undefined;
      throw err;
    });
  };

  const writePort = async (b: I2cBus, regA: number, value16: number, pin: number) => {
    const p = portOf(pin);
    await b.writeByte(cfg.address, regA + p, (value16 >> (8 * p)) & 0xff);
  };
  const setBit = (v: number, pin: number, on: boolean) => (on ? v | (1 << pin) : v & ~(1 << pin)) & 0xffff;

  const readLevels = async (b: I2cBus): Promise<number> => {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await b.readI2cBlock(cfg.address, MCP.GPIOA, 2, buf); // GPIOA then GPIOB (sequential)
    if (bytesRead !== 2) throw hwError(`short read: ${bytesRead} of 2 bytes`, BAD_DATA);
    return buf[0]! | (buf[1]! << 8);
  };

  // Every read of GPIOA/B goes through here, whoever asked for it (a poll, the interrupt, a line's
  // read(), a new input): a change it is the first to see must reach that pin's debouncer, or the
  // next poll compares against it and the edge is lost (the read also cleared the interrupt).
  const takeLevels = (now: number) => {
    const changed = now ^ levels;
    levels = now;
    for (const l of inputs.values()) if (changed & (1 << l.pin)) l.db.edge();
  };

  const poll = async () => {
    if (polling || !bus) return;
    polling = true;
    try {
      takeLevels(await readLevels(bus));
      if (failing) log.info("MCP23017 answers again", { chip: who });
      failing = false;
    } catch (err) {
      // Logged on the transition only; the lines' read() reports it to devices with a heartbeat.
      if (!failing) log.warn("MCP23017 input read failed; retrying every poll", { chip: who, error: describe(err) });
      failing = true;
    } finally {
      polling = false;
    }
  };

  const startWatching = async () => {
    poller ??= clock.every(cfg.pollMs, () => void poll());
    if (cfg.interruptPin !== undefined && !interrupt) {
      if (!deps.gpio) throw new Error(`${who}: interrupt_pin needs the Pi's GPIO, which this hub has not`);
      // INTA is active low (IOCON.INTPOL = 0): logical true = an interrupt pending.
      interrupt = await deps.gpio.openInput(cfg.interruptPin, { edge: "rising", debounceMs: 0, activeLow: true });
      interrupt.watch(() => void poll());
    }
  };
  const stopWatching = async () => {
    if (inputs.size > 0) return;
    poller?.();
    poller = undefined;
    const i = interrupt;
    interrupt = undefined;
    await i?.close();
  };

  const claim = (pin: number) => {
    if (!Number.isInteger(pin) || pin < 0 || pin >= MCP23017_PINS) {
      throw new Error(`${who}: pin ${pin} does not exist (0-7 = GPA0-7, 8-15 = GPB0-7)`);
    }
    if (inputs.has(pin) || outputs.has(pin)) throw hwError(`${who}: pin ${pin} is already in use`, "EBUSY");
  };

  return {
    name: `MCP23017 ${cfg.name}`,
    async openInput(pin, o: GpioInputOptions): Promise<GpioLine> {
      claim(pin);
      const b = await open();
      try {
        shadow.iodir = setBit(shadow.iodir, pin, true);
        await writePort(b, MCP.IODIRA, shadow.iodir, pin);
        shadow.gppu = setBit(shadow.gppu, pin, o.pullUp !== false);
        await writePort(b, MCP.GPPUA, shadow.gppu, pin);
        if (cfg.interruptPin !== undefined) {
          shadow.gpinten = setBit(shadow.gpinten, pin, true);
          await writePort(b, MCP.GPINTENA, shadow.gpinten, pin);
        }
        takeLevels(await readLevels(b));
      } catch (err) {
        throw fail(err);
      }
      const activeLow = o.activeLow === true;
      const edge = o.edge ?? "both";
      const sample = () => toLogical(levels & (1 << pin) ? 1 : 0, activeLow);
      const line: InputLine = {
        pin,
        activeLow,
        listeners: new Set(),
        db: debouncer(clock, o.debounceMs ?? 0, sample, sample(), (v) => {
          if (edgeMatches(edge, v)) for (const fn of line.listeners) fn(v);
        }),
      };
      inputs.set(pin, line);
      try {
        await startWatching();
      } catch (err) {
        inputs.delete(pin);
        await stopWatching();
        throw err;
      }
      log.info("MCP23017 input", { chip: who, pin, pull_up: o.pullUp !== false, active_low: activeLow });
      return {
        bcm: pin,
        async read() {
          try {
            takeLevels(await readLevels(b));
          } catch (err) {
            throw fail(err);
          }
          return sample();
        },
        async write() {
          throw new Error(`${who}: pin ${pin} is an input`);
        },
        watch(fn) {
          line.listeners.add(fn);
          return () => line.listeners.delete(fn);
        },
        async close() {
          if (inputs.get(pin) !== line) return;
          line.db.cancel();
          line.listeners.clear();
          inputs.delete(pin);
          await stopWatching();
          if (shadow.gpinten & (1 << pin)) {
            shadow.gpinten = setBit(shadow.gpinten, pin, false);
            await writePort(b, MCP.GPINTENA, shadow.gpinten, pin).catch(() => {});
          }
        },
      };
    },
    async openOutput(pin, o: GpioOutputOptions): Promise<GpioLine> {
      claim(pin);
      const b = await open();
      const activeLow = o.activeLow === true;
      const setLevel = async (v: boolean) => {
        shadow.olat = setBit(shadow.olat, pin, toPhysical(v, activeLow) === 1);
        await writePort(b, MCP.OLATA, shadow.olat, pin);
      };
      try {
        await setLevel(o.initial); // latch first, then drive: no glitch through the other level
        shadow.iodir = setBit(shadow.iodir, pin, false);
        await writePort(b, MCP.IODIRA, shadow.iodir, pin);
      } catch (err) {
        throw fail(err);
      }
      outputs.add(pin);
      log.info("MCP23017 output", { chip: who, pin, active_low: activeLow, initial: o.initial ? "ON" : "OFF" });
      return {
        bcm: pin,
        read: async () => toLogical(shadow.olat & (1 << pin) ? 1 : 0, activeLow),
        async write(v) {
          try {
            await setLevel(v);
          } catch (err) {
            throw fail(err);
          }
        },
        watch: () => () => {},
        // The pin stays an output at the level last written (the driver writes its safe state first).
        async close() {
          outputs.delete(pin);
        },
      };
    },
  };
}
