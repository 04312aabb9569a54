// A simulated Arduino running the HubLink example sketch, at byte level: it resets when its port is
// opened (boot time, then bootloader noise, then the HELLO banner), sends checksummed readings of
// random-walk sensors, obeys SET/PING/REPORT like HubLink.h does, and now and then damages a byte
// on the "wire" so the hub's checksum counters have something to count. It can be made to hang
// (the sketch stops answering while the port stays open). As a native-USB board (Leonardo, Micro)
// its boot banner is lost, as when the sketch printed it before the port was open, and it answers
// the hub's HELLO request with it. Time comes from the injected clock.
import type { Cancel, Clock } from "../../../hub/contracts.js";
import { type ChannelDecl, formatBoardMessage, formatLine, lineSplitter, parseHubLine } from "../../arduino/protocol.js";
import { createSimFirmata } from "./firmata-board.js";
import type { SimBoard } from "./serial.js";

export interface SimArduinoOptions {
  clock: Clock;
  random: () => number;
  name?: string;
  channels?: ChannelDecl[];
  /** Time from reset to banner. Default 1500 ms (a Uno's bootloader wait plus setup()). */
  bootMs?: number;
  /** Time between readings. Default 5 s. */
  reportEveryMs?: number;
  /** Chance that a line sent is damaged by one flipped bit. Default 0.01. */
  noise?: number;
  /** The banner printed at boot never reaches the hub (a native-USB board). Default false. */
  nativeUsb?: boolean;
}

export interface SimArduino {
  /** Power-on reset (the port was opened: DTR): `send` receives what the board writes. */
  reset(send: (bytes: Uint8Array) => void): void;
  /** Bytes from the hub. */
  receive(bytes: Uint8Array): void;
  /** Power off (unplugged, or the port closed): nothing more is sent. */
  powerOff(): void;
  /** The sketch hangs (true) or is revived (false) without the port closing. */
  hang(on: boolean): void;
  readonly outputs: ReadonlyMap<string, number>;
  /** Hub lines received since power-on, for tests. */
  readonly received: string[];
}

export const DEFAULT_SIM_CHANNELS: ChannelDecl[] = [
  { name: "soil_moisture", kind: "sensor", unit: "%" },
  { name: "temperature", kind: "sensor", unit: "°C" },
  { name: "light", kind: "sensor" },
  { name: "door", kind: "binary" },
  { name: "pump", kind: "output" },
  { name: "fan", kind: "pwm" },
];

const START: Record<string, number> = { soil_moisture: 45, temperature: 19, light: 512 };

export function createSimArduino(o: SimArduinoOptions): SimArduino {
  const channels = o.channels ?? DEFAULT_SIM_CHANNELS;
  const values = new Map<string, number>();
  const outputs = new Map<string, number>();
  const received: string[] = [];
  let send: ((b: Uint8Array) => void) | undefined;
  let timers: Cancel[] = [];
  let hung = false;

  const reseed = () => {
    values.clear();
    outputs.clear();
    for (const c of channels) {
      if (c.kind === "sensor") values.set(c.name, START[c.name] ?? 50);
      else values.set(c.name, 0);
    }
  };
  const wire = (text: string) => {
    if (!send || hung) return;
    const bytes = Buffer.from(text, "latin1");
    if (o.random() < (o.noise ?? 0.01) && bytes.length > 2) {
      const i = Math.floor(o.random() * (bytes.length - 1));
      bytes[i] = bytes[i]! ^ (1 << Math.floor(o.random() * 7));
    }
    send(bytes);
  };
  const reading = (name: string) => wire(formatBoardMessage({ type: "reading", channel: name, value: values.get(name) ?? 0 }));
  const round = (v: number, d: number) => Math.round(v * 10 ** d) / 10 ** d;
  const tick = () => {
    for (const c of channels) {
      const v = values.get(c.name) ?? 0;
      if (c.kind === "sensor") values.set(c.name, c.name === "light" ? Math.max(0, Math.min(1023, Math.round(v + (o.random() - 0.5) * 40))) : round(v + (o.random() - 0.5) * 0.6, 1));
      else if (c.kind === "binary" && o.random() < 0.1) values.set(c.name, v ? 0 : 1);
      if (c.kind === "sensor" || c.kind === "binary") reading(c.name);
    }
  };
  const splitter = lineSplitter(
    (line) => {
      if (hung) return;
      received.push(line);
      const r = parseHubLine(line);
      if (!r.ok) {
        wire(formatLine(`ERR ${r.reason === "checksum" ? "checksum" : "bad_line"}`));
        return;
      }
      const m = r.message;
      if (m.type === "ping") wire(formatBoardMessage({ type: "pong", token: m.token }));
      else if (m.type === "report") for (const c of channels) reading(c.name);
      else if (m.type === "hello") banner();
      else {
        const c = channels.find((x) => x.name === m.channel);
        if (!c) wire(formatLine(`ERR unknown_channel ${m.channel}`));
        else if (c.kind !== "output" && c.kind !== "pwm") wire(formatLine(`ERR read_only ${m.channel}`));
        else {
          const v = c.kind === "output" ? (m.value ? 1 : 0) : Math.max(0, Math.min(255, Math.round(m.value)));
          values.set(c.name, v);
          outputs.set(c.name, v);
          reading(c.name);
        }
      }
    },
    () => {},
    64, // the sketch's receive buffer
  );

  const banner = () =>
    wire(formatBoardMessage({ type: "hello", version: 1, board: o.name ?? "sim-uno", channels, fields: { fw: "HubLink-1.1-sim" }, notes: [] }));

  const board: SimArduino = {
    reset(s) {
      board.powerOff();
      send = s;
      hung = false;
      reseed();
      timers.push(
        o.clock.after(o.bootMs ?? 1500, () => {
          // Bytes a bootloader and a half-sent line may leave before setup() prints the banner.
          send?.(Buffer.from("\x00\xfe\r\nR so*1", "latin1"));
          send?.(Buffer.from("\n", "latin1"));
          if (!o.nativeUsb) {
            banner();
            wire(formatBoardMessage({ type: "event", name: "boot", text: "" }));
          }
          timers.push(o.clock.every(o.reportEveryMs ?? 5000, tick));
        }),
      );
    },
    receive: (b) => splitter.push(b),
    powerOff() {
      for (const c of timers) c();
      timers = [];
      send = undefined;
      splitter.reset();
      received.length = 0;
    },
    hang(on) {
      hung = on;
    },
    outputs,
    received,
  };
  return board;
}

/** What the simulated serial ports need to know of a configured Arduino. */
export interface SimArduinoDecl {
  name: string;
  type: string;
  path?: string;
  protocol?: string;
  channels?: Record<string, { kind: ChannelDecl["kind"]; unit?: string }>;
}

/**
 * The boards of every configured `arduino` device, each at its configured path: hubproto ones run
 * the HubLink example sketch, `firmata` ones StandardFirmata (sim/firmata-board.ts, or what
 * `firmataBoard` makes).
 */
export function attachSimArduinos(
  sim: { attach(path: string, board: SimBoard, name?: string): void },
  devices: readonly SimArduinoDecl[],
  o: { clock: Clock; random: () => number; firmataBoard?: (d: SimArduinoDecl) => SimBoard },
): void {
  for (const d of devices) {
    if (d.type !== "arduino" || d.path === undefined) continue;
    if (d.protocol === "firmata") {
      // A StandardFirmata Uno whose analog inputs drift and whose buttons get pressed now and then.
      sim.attach(d.path, o.firmataBoard?.(d) ?? createSimFirmata({ clock: o.clock, random: o.random, wander: true }), d.name);
      continue;
    }
    // Channels the config lists are what the sketch declares; otherwise the example sketch's.
    const channels = d.channels && Object.keys(d.channels).length > 0 ? Object.entries(d.channels).map(([name, c]) => ({ name, kind: c.kind, ...(c.unit === undefined ? {} : { unit: c.unit }) })) : undefined;
    sim.attach(d.path, createSimArduino({ clock: o.clock, random: o.random, name: `sim-${d.name}`, ...(channels ? { channels } : {}) }), d.name);
  }
}
