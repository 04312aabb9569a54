// A simulated Arduino Uno running the stock StandardFirmata 2.5 sketch, at byte level, for the
// Firmata tests (the board end of a socat pty) and for `--simulate` (behind sim/serial.ts). It does
// what StandardFirmata.ino does with the Firmata protocol (firmata/protocol, protocol.md):
// - after a reset (the port was opened: DTR) it boots (bootloader, then Firmata.begin() blinks the
//   version on pin 13 for ~2 s), then sends REPORT_VERSION (F9 2 5) and the firmware report
//   (F0 79 2 5 <name as 7-bit pairs> F7);
// - answers REPORT_VERSION, REPORT_FIRMWARE, CAPABILITY_QUERY, ANALOG_MAPPING_QUERY, PIN_STATE_QUERY;
// - obeys SET_PIN_MODE, DIGITAL_MESSAGE (only pins in OUTPUT mode are driven; a 1 on an INPUT pin
//   switches its pull-up on, as digitalWriteCallback does), SET_DIGITAL_PIN_VALUE, ANALOG_MESSAGE
//   and EXTENDED_ANALOG (PWM), REPORT_ANALOG / REPORT_DIGITAL, SAMPLING_INTERVAL, SYSTEM_RESET;
// - every sampling interval sends ANALOG_MESSAGE for the reported analog pins that are in ANALOG
//   mode, and a DIGITAL_MESSAGE for a reported port as soon as one of its inputs changes (and at
//   once when reporting is switched on).
// Uno pins: 0/1 are the serial port (no modes), 2..19 digital, PWM on 3 5 6 9 10 11, A0..A5 = 14..19.
// It can hang (stop answering while the port stays open). Time comes from the injected clock.
import type { Cancel, Clock } from "../../../hub/contracts.js";
import type { SimBoard } from "./serial.js";

// Firmata protocol bytes.
export const FIRMATA = {
  DIGITAL_MESSAGE: 0x90,
  ANALOG_MESSAGE: 0xe0,
  REPORT_ANALOG: 0xc0,
  REPORT_DIGITAL: 0xd0,
  SET_PIN_MODE: 0xf4,
  SET_DIGITAL_PIN_VALUE: 0xf5,
  REPORT_VERSION: 0xf9,
  SYSTEM_RESET: 0xff,
  START_SYSEX: 0xf0,
  END_SYSEX: 0xf7,
  ANALOG_MAPPING_QUERY: 0x69,
  ANALOG_MAPPING_RESPONSE: 0x6a,
  CAPABILITY_QUERY: 0x6b,
  CAPABILITY_RESPONSE: 0x6c,
  PIN_STATE_QUERY: 0x6d,
  PIN_STATE_RESPONSE: 0x6e,
  EXTENDED_ANALOG: 0x6f,
  REPORT_FIRMWARE: 0x79,
  SAMPLING_INTERVAL: 0x7a,
} as const;

export const PIN_MODE = { INPUT: 0x00, OUTPUT: 0x01, ANALOG: 0x02, PWM: 0x03, SERVO: 0x04, I2C: 0x06, PULLUP: 0x0b, IGNORE: 0x7f } as const;

const TOTAL_PINS = 20;
const FIRST_ANALOG = 14; // A0
const PWM_PINS = new Set([3, 5, 6, 9, 10, 11]);
const isDigital = (p: number) => p >= 2 && p < TOTAL_PINS;
const isAnalog = (p: number) => p >= FIRST_ANALOG && p < TOTAL_PINS;
const MAX_SYSEX = 64; // StandardFirmata's MAX_DATA_BYTES: longer sysex is dropped

/** A message the board received, decoded (for tests). */
export type FirmataReceived =
  | { type: "digital"; port: number; value: number }
  | { type: "analog"; pin: number; value: number }
  | { type: "pin_mode"; pin: number; mode: number }
  | { type: "pin_value"; pin: number; value: number }
  | { type: "report_analog"; channel: number; on: number }
  | { type: "report_digital"; port: number; on: number }
  | { type: "version" }
  | { type: "reset" }
  | { type: "sysex"; command: number; data: number[] };

export interface SimFirmataOptions {
  clock: Clock;
  random: () => number;
  /** Firmware name in the firmware report. Default "StandardFirmata.ino". */
  name?: string;
  /** Time from reset to the version report (bootloader ~1 s + version blink ~2 s). Default 3000. */
  bootMs?: number;
  /** --simulate: analog inputs drift and inputs in INPUT/PULLUP mode flip now and then. Default false. */
  wander?: boolean;
  /** Called with every message received (before it is obeyed). */
  observe?: (m: FirmataReceived) => void;
}

export interface SimFirmata extends SimBoard {
  /** The sketch hangs (true) or is revived (false) without the port closing. */
  hang(on: boolean): void;
  /** Drives a digital pin from outside (a button); undefined leaves it floating. */
  setInput(pin: number, level: 0 | 1 | undefined): void;
  /** Sets the voltage on analog input A<channel> as a 10-bit value (0..1023). */
  setAnalog(channel: number, value: number): void;
  pinMode(pin: number): number;
  /** The pin's state: the level of an OUTPUT, the duty of a PWM pin, 1 for an input with pull-up. */
  pinState(pin: number): number;
  readonly samplingIntervalMs: number;
  readonly received: FirmataReceived[];
}

export function createSimFirmata(o: SimFirmataOptions): SimFirmata {
  const name = o.name ?? "StandardFirmata.ino";
  const mode: number[] = [];
  const state: number[] = [];
  const external: Array<0 | 1 | undefined> = [];
  const analogValue: number[] = [];
  const received: FirmataReceived[] = [];
  const reportPorts = new Set<number>();
  const previousPort: number[] = [];
  let analogReport = 0;
  let sampling = 19;
  let send: ((b: Uint8Array) => void) | undefined;
  let timers: Cancel[] = [];
  let sampler: Cancel | undefined;
  let hung = false;
  let booted = false;
  // Parser state (FirmataParser): a command waiting for data bytes, or a sysex being collected.
  let command = 0;
  let waitFor = 0;
  let data: number[] = [];
  let sysex: number[] | undefined;

  for (let p = FIRST_ANALOG; p < TOTAL_PINS; p++) analogValue[p - FIRST_ANALOG] = 300 + (p - FIRST_ANALOG) * 80;

  const wire = (bytes: number[]) => {
    if (send && !hung && booted) send(Uint8Array.from(bytes));
  };
  const sysexOut = (cmd: number, body: number[]) => wire([FIRMATA.START_SYSEX, cmd, ...body, FIRMATA.END_SYSEX]);
  const sevenBit = (v: number) => [v & 0x7f, (v >> 7) & 0x7f];

  const level = (p: number): number => {
    if (mode[p] === PIN_MODE.OUTPUT) return state[p] ?? 0;
    return external[p] ?? (mode[p] === PIN_MODE.PULLUP ? 1 : 0);
  };
  // readPort(port, portConfigInputs[port]): the levels of the port's input pins only.
  const readPort = (port: number) => {
    let v = 0;
    for (let i = 0; i < 8; i++) {
      const p = port * 8 + i;
      if (p < TOTAL_PINS && (mode[p] === PIN_MODE.INPUT || mode[p] === PIN_MODE.PULLUP) && level(p)) v |= 1 << i;
    }
    return v;
  };
  const outputPort = (port: number, force: boolean) => {
    const v = readPort(port);
    if (!force && previousPort[port] === v) return;
    previousPort[port] = v;
    wire([FIRMATA.DIGITAL_MESSAGE | port, ...sevenBit(v)]);
  };
  const checkDigitalInputs = () => {
    for (const port of reportPorts) outputPort(port, false);
  };
  const sendAnalog = (ch: number) => wire([FIRMATA.ANALOG_MESSAGE | ch, ...sevenBit(analogValue[ch] ?? 0)]);
  const sample = () => {
    for (let p = FIRST_ANALOG; p < TOTAL_PINS; p++) {
      const ch = p - FIRST_ANALOG;
      if (mode[p] === PIN_MODE.ANALOG && analogReport & (1 << ch)) sendAnalog(ch);
    }
  };
  const startSampler = () => {
    sampler?.();
    sampler = o.clock.every(sampling, sample);
  };

  const reportAnalog = (ch: number, on: boolean) => {
    if (ch >= TOTAL_PINS - FIRST_ANALOG) return;
    if (!on) analogReport &= ~(1 << ch);
    else {
      analogReport |= 1 << ch;
      sendAnalog(ch); // "send pin value immediately" (reportAnalogCallback)
    }
  };
  const setPinMode = (p: number, m: number) => {
    if (p >= TOTAL_PINS || !isDigital(p)) return;
    if (isAnalog(p)) reportAnalog(p - FIRST_ANALOG, m === PIN_MODE.ANALOG);
    state[p] = 0;
    if (m === PIN_MODE.ANALOG && !isAnalog(p)) return;
    if (m === PIN_MODE.PWM && !PWM_PINS.has(p)) return;
    if (![PIN_MODE.INPUT, PIN_MODE.PULLUP, PIN_MODE.OUTPUT, PIN_MODE.ANALOG, PIN_MODE.PWM, PIN_MODE.SERVO].includes(m as 0)) return;
    mode[p] = m;
    if (m === PIN_MODE.PULLUP) state[p] = 1;
  };
  const systemReset = () => {
    // systemResetCallback: analog-capable pins become analog inputs, the others digital outputs at 0.
    for (let p = 0; p < TOTAL_PINS; p++) {
      mode[p] = isAnalog(p) ? PIN_MODE.ANALOG : isDigital(p) ? PIN_MODE.OUTPUT : PIN_MODE.IGNORE;
      state[p] = 0;
    }
    analogReport = 0;
    reportPorts.clear();
    previousPort.length = 0;
  };
  const digitalWrite = (port: number, value: number) => {
    for (let i = 0; i < 8; i++) {
      const p = port * 8 + i;
      if (!isDigital(p)) continue;
      const bit = (value >> i) & 1;
      if (mode[p] === PIN_MODE.OUTPUT) state[p] = bit;
      else if (mode[p] === PIN_MODE.INPUT && bit === 1 && state[p] !== 1) {
        mode[p] = PIN_MODE.PULLUP; // pinMode(pin, INPUT_PULLUP), kept as INPUT in Firmata's books
        state[p] = 1;
      }
    }
    checkDigitalInputs();
  };
  const analogWrite = (p: number, value: number) => {
    if (p < TOTAL_PINS && (mode[p] === PIN_MODE.PWM || mode[p] === PIN_MODE.SERVO)) state[p] = value;
  };

  const capabilities = () => {
    const body: number[] = [];
    for (let p = 0; p < TOTAL_PINS; p++) {
      if (isDigital(p)) body.push(PIN_MODE.INPUT, 1, PIN_MODE.PULLUP, 1, PIN_MODE.OUTPUT, 1);
      if (isAnalog(p)) body.push(PIN_MODE.ANALOG, 10);
      if (PWM_PINS.has(p)) body.push(PIN_MODE.PWM, 8);
      if (isDigital(p)) body.push(PIN_MODE.SERVO, 14);
      if (p === 18 || p === 19) body.push(PIN_MODE.I2C, 1);
      body.push(0x7f);
    }
    return body;
  };
  const firmware = () => {
    const body = [2, 5];
    for (const b of Buffer.from(name, "utf8")) body.push(...sevenBit(b));
    return body;
  };

  const onSysex = (cmd: number, d: number[]) => {
    switch (cmd) {
      case FIRMATA.REPORT_FIRMWARE:
        return sysexOut(FIRMATA.REPORT_FIRMWARE, firmware());
      case FIRMATA.CAPABILITY_QUERY:
        return sysexOut(FIRMATA.CAPABILITY_RESPONSE, capabilities());
      case FIRMATA.ANALOG_MAPPING_QUERY: {
        const body: number[] = [];
        for (let p = 0; p < TOTAL_PINS; p++) body.push(isAnalog(p) ? p - FIRST_ANALOG : 0x7f);
        return sysexOut(FIRMATA.ANALOG_MAPPING_RESPONSE, body);
      }
      case FIRMATA.PIN_STATE_QUERY: {
        const p = d[0];
        if (p === undefined) return;
        const s = state[p] ?? 0;
        const body = [p];
        if (p < TOTAL_PINS) {
          body.push(mode[p] ?? PIN_MODE.IGNORE, s & 0x7f);
          if (s & 0xff80) body.push((s >> 7) & 0x7f);
          if (s & 0xc000) body.push((s >> 14) & 0x7f);
        }
        return sysexOut(FIRMATA.PIN_STATE_RESPONSE, body);
      }
      case FIRMATA.SAMPLING_INTERVAL:
        if (d.length > 1) {
          sampling = Math.max(1, d[0]! + (d[1]! << 7));
          startSampler();
        }
        return;
      case FIRMATA.EXTENDED_ANALOG:
        if (d.length > 1) analogWrite(d[0]!, d[1]! | ((d[2] ?? 0) << 7) | ((d[3] ?? 0) << 14));
        return;
    }
  };

  const observe = (m: FirmataReceived) => {
    received.push(m);
    o.observe?.(m);
  };
  const execute = (cmd: number, channel: number, d: number[]) => {
    switch (cmd) {
      case FIRMATA.DIGITAL_MESSAGE: {
        const value = d[0]! | (d[1]! << 7);
        observe({ type: "digital", port: channel, value });
        return digitalWrite(channel, value);
      }
      case FIRMATA.ANALOG_MESSAGE: {
        const value = d[0]! | (d[1]! << 7);
        observe({ type: "analog", pin: channel, value });
        return analogWrite(channel, value);
      }
      case FIRMATA.SET_PIN_MODE:
        observe({ type: "pin_mode", pin: d[0]!, mode: d[1]! });
        return setPinMode(d[0]!, d[1]!);
      case FIRMATA.SET_DIGITAL_PIN_VALUE: {
        const [p, v] = [d[0]!, d[1]!];
        observe({ type: "pin_value", pin: p, value: v });
        if (isDigital(p) && mode[p] === PIN_MODE.OUTPUT) state[p] = v ? 1 : 0;
        return;
      }
      case FIRMATA.REPORT_ANALOG:
        observe({ type: "report_analog", channel, on: d[0]! });
        return reportAnalog(channel, d[0] !== 0);
      case FIRMATA.REPORT_DIGITAL:
        observe({ type: "report_digital", port: channel, on: d[0]! });
        if (d[0] === 0) reportPorts.delete(channel);
        else if (channel < Math.ceil(TOTAL_PINS / 8)) {
          reportPorts.add(channel);
          outputPort(channel, true); // "send port value immediately"
        }
        return;
    }
  };
  const DATA_BYTES: Record<number, number> = {
    [FIRMATA.DIGITAL_MESSAGE]: 2,
    [FIRMATA.ANALOG_MESSAGE]: 2,
    [FIRMATA.SET_PIN_MODE]: 2,
    [FIRMATA.SET_DIGITAL_PIN_VALUE]: 2,
    [FIRMATA.REPORT_ANALOG]: 1,
    [FIRMATA.REPORT_DIGITAL]: 1,
  };
  let channel = 0;
  const parse = (b: number) => {
    if (sysex) {
      if (b === FIRMATA.END_SYSEX) {
        const [cmd, ...d] = sysex;
        sysex = undefined;
        if (cmd === undefined) return;
        observe({ type: "sysex", command: cmd, data: d });
        onSysex(cmd, d);
      } else if (sysex.length < MAX_SYSEX) sysex.push(b);
      else sysex = undefined;
      return;
    }
    if (b < 0x80) {
      if (waitFor === 0) return; // a data byte without a command: ignored
      data.push(b);
      if (--waitFor === 0) execute(command, channel, data);
      return;
    }
    const cmd = b < 0xf0 ? b & 0xf0 : b;
    channel = b & 0x0f;
    waitFor = 0;
    data = [];
    if (cmd === FIRMATA.START_SYSEX) sysex = [];
    else if (cmd === FIRMATA.REPORT_VERSION) {
      observe({ type: "version" });
      wire([FIRMATA.REPORT_VERSION, 2, 5]);
    } else if (cmd === FIRMATA.SYSTEM_RESET) {
      observe({ type: "reset" });
      systemReset();
    } else if (DATA_BYTES[cmd] !== undefined) {
      command = cmd;
      waitFor = DATA_BYTES[cmd];
    }
  };

  // --simulate's world: analog inputs drift slowly; a button on an input is pressed now and then
  // for about a second (to GND on a pull-up pin, to 5 V on a plain input).
  const pressed = new Set<number>();
  const wander = () => {
    for (let ch = 0; ch < TOTAL_PINS - FIRST_ANALOG; ch++) {
      analogValue[ch] = Math.max(0, Math.min(1023, Math.round((analogValue[ch] ?? 0) + (o.random() - 0.5) * 12)));
    }
    for (let p = 2; p < TOTAL_PINS; p++) {
      if (pressed.delete(p)) external[p] = undefined;
      else if ((mode[p] === PIN_MODE.INPUT || mode[p] === PIN_MODE.PULLUP) && o.random() < 0.03) {
        external[p] = mode[p] === PIN_MODE.PULLUP ? 0 : 1;
        pressed.add(p);
      }
    }
    checkDigitalInputs();
  };

  const board: SimFirmata = {
    reset(s) {
      board.powerOff();
      send = s;
      hung = false;
      systemReset();
      sampling = 19;
      timers.push(
        o.clock.after(o.bootMs ?? 3000, () => {
          booted = true;
          // Firmata.begin(): printVersion(), printFirmwareVersion().
          wire([FIRMATA.REPORT_VERSION, 2, 5]);
          sysexOut(FIRMATA.REPORT_FIRMWARE, firmware());
          startSampler();
          if (o.wander) timers.push(o.clock.every(1000, wander));
        }),
      );
    },
    receive(bytes) {
      // Before setup() runs, the bootloader owns the UART: what arrives is lost.
      if (hung || !booted) return;
      for (const b of bytes) parse(b);
    },
    powerOff() {
      for (const c of timers) c();
      timers = [];
      sampler?.();
      sampler = undefined;
      send = undefined;
      booted = false;
      sysex = undefined;
      waitFor = 0;
      received.length = 0;
    },
    hang(on) {
      hung = on;
    },
    setInput(pin, lvl) {
      external[pin] = lvl;
      checkDigitalInputs();
    },
    setAnalog(ch, value) {
      analogValue[ch] = Math.max(0, Math.min(1023, Math.round(value)));
    },
    pinMode: (p) => mode[p] ?? PIN_MODE.IGNORE,
    pinState: (p) => state[p] ?? 0,
    get samplingIntervalMs() {
      return sampling;
    },
    received,
  };
  systemReset();
  return board;
}
