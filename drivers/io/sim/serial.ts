// In-process serial ports for --simulate: a SerialProvider whose paths lead to simulated boards
// (sim/arduino-board.ts or sim/firmata-board.ts), byte for byte, so the hub's real link code runs
// unchanged. A board can be unplugged and plugged again: the open port then closes with
// `disconnected`, the path stops existing, and opens fail with ENOENT, as on a real Pi. With a
// control directory, `touch <dir>/<name>.unplugged` unplugs a board and `rm` of that file plugs it
// back (polled once a second through the clock), so a person can try it while the hub runs.
import type { Cancel, Clock } from "../../../hub/contracts.js";
import { type SerialCloseInfo, type SerialConnection, type SerialProvider, serialError } from "../serial.js";

/** What a simulated board on a port must do. */
export interface SimBoard {
  reset(send: (bytes: Uint8Array) => void): void;
  receive(bytes: Uint8Array): void;
  powerOff(): void;
}

export interface SimSerial extends SerialProvider {
  attach(path: string, board: SimBoard, name?: string): void;
  unplug(path: string): void;
  plug(path: string): void;
  /** Starts polling the control directory (if any). */
  start(): void;
  stop(): void;
}

export interface SimSerialOptions {
  clock: Clock;
  /** Directory of `<name>.unplugged` control files, and a way to test for one. */
  control?: { dir: string; exists(file: string): boolean };
}

interface Slot {
  board: SimBoard;
  name: string;
  plugged: boolean;
  conn?: { close(info: SerialCloseInfo): void };
}

export function createSimSerial(o: SimSerialOptions): SimSerial {
  const slots = new Map<string, Slot>();
  let poll: Cancel | undefined;

  const unplug = (slot: Slot) => {
    if (!slot.plugged) return;
    slot.plugged = false;
    slot.conn?.close({ disconnected: true, error: serialError("Disconnected", "EDISCONNECTED") });
  };
  const sim: SimSerial = {
    attach(path, board, name) {
      slots.set(path, { board, name: name ?? path.split("/").pop()!, plugged: true });
    },
    unplug(path) {
      const s = slots.get(path);
      if (s) unplug(s);
    },
    plug(path) {
      const s = slots.get(path);
      if (s) s.plugged = true;
    },
    async exists(path) {
      return slots.get(path)?.plugged === true;
    },
    async open(path) {
      const slot = slots.get(path);
      if (!slot?.plugged) throw serialError(`${path} does not exist (simulated board unplugged)`, "ENOENT");
      if (slot.conn) throw serialError(`${path} is already open`, "EBUSY");
      const dataFns: Array<(b: Uint8Array) => void> = [];
      const closeFns: Array<(i: SerialCloseInfo) => void> = [];
      let open = true;
      const close = (info: SerialCloseInfo) => {
        if (!open) return;
        open = false;
        slot.conn = undefined;
        slot.board.powerOff();
        for (const fn of closeFns) fn(info);
      };
      slot.conn = { close };
      // Bytes travel asynchronously, as through a tty: never inside the caller's write().
      slot.board.reset((bytes) => {
        const copy = Uint8Array.from(bytes);
        queueMicrotask(() => {
          if (open) for (const fn of dataFns) fn(copy);
        });
      });
      const conn: SerialConnection = {
        path,
        get isOpen() {
          return open;
        },
        write(data) {
          if (!open) return Promise.reject(serialError(`${path} is not open`, "ECLOSED"));
          const copy = Uint8Array.from(data);
          queueMicrotask(() => {
            if (open) slot.board.receive(copy);
          });
          return Promise.resolve();
        },
        async close() {
          close({ disconnected: false });
        },
        onData: (fn) => void dataFns.push(fn),
        onClose: (fn) => void closeFns.push(fn),
      };
      return conn;
    },
    start() {
      const c = o.control;
      if (!c || poll) return;
      poll = o.clock.every(1000, () => {
        for (const slot of slots.values()) {
          const wantUnplugged = c.exists(`${c.dir}/${slot.name}.unplugged`);
          if (wantUnplugged) unplug(slot);
          else slot.plugged = true;
        }
      });
    },
    stop() {
      poll?.();
      poll = undefined;
    },
  };
  return sim;
}
