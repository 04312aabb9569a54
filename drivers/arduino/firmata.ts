// Firmata as a second protocol: a board running the stock StandardFirmata example, spoken to through
// firmata-io (the maintained firmata.js without its serialport binding) over the same link as
// hubproto, so reconnects, the heartbeat and re-sent outputs behave the same. Configured channels
// map to pins: sensors are analog inputs (A0..), binary channels digital inputs, outputs digital
// writes, pwm channels PWM writes. Firmata has no ping: REPORT_VERSION, which every Firmata answers,
// is used as one. firmata-io's own report-version timer is real time, so it is cancelled and
// replaced by one on the injected clock. Only channels whose pin accepted its mode are written; a
// board that restarts with the port open (its unasked firmware report) is set up again.
// Tested against a byte-level StandardFirmata (drivers/io/sim/firmata-board.ts) on a pty pair.
import { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import type { ProtocolSession, SessionFactory } from "./session.js";

interface FirmataBoard extends EventEmitter {
  MODES: { INPUT: number; OUTPUT: number; ANALOG: number; PWM: number; PULLUP: number };
  versionReceived: boolean;
  reportVersionTimeoutId: ReturnType<typeof setTimeout>;
  version: { major?: number; minor?: number };
  firmware: { name?: string };
  pins: Array<{ supportedModes: number[] } | undefined>;
  /** The last value written or read per 8-pin port, which digitalWrite() sends whole. */
  ports: number[];
  analogPins: number[];
  reportVersion(cb: () => void): void;
  queryFirmware(cb: () => void): void;
  pinMode(pin: number, mode: number): void;
  digitalWrite(pin: number, value: number): void;
  pwmWrite(pin: number, value: number): void;
  reportAnalogPin(channel: number, on: 0 | 1): void;
  reportDigitalPin(pin: number, on: 0 | 1): void;
  setSamplingInterval(ms: number): void;
}
type FirmataCtor = new (transport: EventEmitter, options: Record<string, unknown>) => FirmataBoard;

export interface FirmataChannel {
  kind: "sensor" | "binary" | "output" | "pwm";
  pin?: number | string;
  pullup?: boolean;
  unit?: string;
}

export interface FirmataOptions {
  channels: Record<string, FirmataChannel>;
  samplingIntervalMs: number;
  /** Time to wait for the board's own REPORT_VERSION before asking for it. */
  askVersionAfterMs?: number;
}

let ctor: FirmataCtor | undefined;
function firmataClass(): FirmataCtor {
  // firmata-io is CommonJS without types.
  ctor ??= (createRequire(import.meta.url)("firmata-io") as { Firmata: FirmataCtor }).Firmata;
  return ctor;
}

export function firmataSession(o: FirmataOptions): SessionFactory {
  return (h): ProtocolSession => {
    const transport = new EventEmitter() as EventEmitter & { write(b: Buffer, cb?: (err?: unknown) => void): void };
    transport.write = (b, cb) => {
      h.write(b).then(
        () => cb?.(),
        (err) => cb?.(err),
      );
    };
    const board = new (firmataClass())(transport, { reportVersionTimeout: 60_000 });
    clearTimeout(board.reportVersionTimeoutId);
    // StandardFirmata announces its version at boot; a board that did not reset is asked.
    const nudge = h.clock.after(o.askVersionAfterMs ?? 2000, () => {
      if (board.versionReceived) return;
      board.reportVersion(() => {});
      board.queryFirmware(() => {});
    });
    const byAnalog = new Map<number, string>();
    const byDigital = new Map<number, string>();
    const last = new Map<string, number>();
    const emit = (ch: string, v: number) => {
      if (last.get(ch) === v) return; // Firmata repeats values every sample: pass on changes
      last.set(ch, v);
      h.reading(ch, v);
    };
    const pinOf = (name: string) => o.channels[name]?.pin;
    board.on("error", (err: unknown) => h.log.debug("firmata error", { error: err }));
    // Channels whose pin took its mode: only these are ever written (a pin that cannot do PWM,
    // say, would otherwise still get ANALOG_MESSAGEs).
    const usable = new Set<string>();
    const inputPins = new Set<number>();
    const configure = () => {
      const m = board.MODES;
      usable.clear();
      inputPins.clear();
      byAnalog.clear();
      byDigital.clear();
      for (const [name, c] of Object.entries(o.channels)) {
        if (c.pin === undefined) continue;
        if (c.kind === "sensor" && typeof c.pin === "string") {
          const a = Number(c.pin.slice(1));
          const pin = board.analogPins[a];
          if (pin === undefined) {
            h.log.warn("the board has no such analog pin", { channel: name, pin: c.pin });
            continue;
          }
          byAnalog.set(a, name);
          board.pinMode(a, m.ANALOG);
          // firmata-io only books ANALOG mode locally; a board that did not reset on open may still
          // have the pin in a digital mode, and StandardFirmata reports only pins in ANALOG mode.
          // SET_PIN_MODE (F4 pin 2) puts it back (and switches its reporting on).
          transport.write(Buffer.from([0xf4, pin, m.ANALOG]));
          board.reportAnalogPin(a, 1);
          usable.add(name);
          continue;
        }
        const pin = Number(c.pin);
        const mode = c.kind === "binary" ? (c.pullup ? m.PULLUP : m.INPUT) : c.kind === "output" ? m.OUTPUT : m.PWM;
        if (!board.pins[pin]?.supportedModes.includes(mode)) {
          h.log.warn("the board's pin does not support this use (see its capability report)", { channel: name, pin, kind: c.kind });
          continue;
        }
        board.pinMode(pin, mode);
        usable.add(name);
        if (c.kind === "binary") {
          byDigital.set(pin, name);
          inputPins.add(pin);
          board.reportDigitalPin(pin, 1);
        }
      }
      board.setSamplingInterval(o.samplingIntervalMs);
      const v = board.version;
      h.ready({
        board: board.firmware.name ?? "firmata",
        protocol: "firmata",
        version: `${v.major ?? "?"}.${v.minor ?? "?"}`,
        channels: Object.entries(o.channels).map(([name, c]) => (c.unit === undefined ? { name, kind: c.kind } : { name, kind: c.kind, unit: c.unit })),
        fields: {},
      });
    };
    board.once("ready", () => {
      nudge();
      configure();
      // StandardFirmata sends its firmware report unasked only when it starts (Firmata.begin()),
      // and this session never asks after the handshake: one now means the board restarted while
      // the port stayed open (watchdog, brown-out from a relay) and forgot its pin modes. Set them
      // up again; the link then re-sends the outputs, as after a reconnect.
      board.on("queryfirmware", () => {
        h.log.warn("the board restarted (unasked firmware report): setting its pins up again", { board: board.firmware.name });
        last.clear();
        configure();
      });
    });
    board.on("analog-read", (e: { pin: number; value: number }) => {
      const ch = byAnalog.get(e.pin);
      if (ch) emit(ch, e.value);
    });
    board.on("digital-read", (e: { pin: number; value: number }) => {
      const ch = byDigital.get(e.pin);
      if (ch) emit(ch, e.value);
    });
    return {
      data(chunk) {
        try {
          transport.emit("data", Buffer.from(chunk));
        } catch (err) {
          // firmata-io trusts what it reads; a damaged message can make it throw.
          h.count("bad_lines", String(err));
        }
      },
      ping: () => board.reportVersion(() => h.pong()),
      set(ch, value) {
        const c = o.channels[ch];
        const pin = Number(pinOf(ch));
        if (!c || Number.isNaN(pin) || !usable.has(ch)) return;
        if (c.kind === "output") {
          // firmata-io writes whole ports (DIGITAL_MESSAGE) from its record of the port, which also
          // holds the last level read on input pins; StandardFirmata takes a 1 for a pin in INPUT
          // mode as "switch the pull-up on" (digitalWriteCallback). Send 0 for input pins.
          const port = pin >> 3;
          for (const p of inputPins) if (p >> 3 === port) board.ports[port] = (board.ports[port] ?? 0) & ~(1 << (p & 7));
          board.digitalWrite(pin, value ? 1 : 0);
        } else if (c.kind === "pwm") board.pwmWrite(pin, Math.max(0, Math.min(255, Math.round(value))));
        else return;
        // Firmata does not confirm writes: what was written is the state.
        last.delete(ch);
        emit(ch, c.kind === "output" ? (value ? 1 : 0) : Math.max(0, Math.min(255, Math.round(value))));
      },
      report() {
        for (const [ch, v] of last) h.reading(ch, v);
      },
      dispose() {
        nudge();
        board.removeAllListeners();
        transport.removeAllListeners();
      },
    };
  };
}
