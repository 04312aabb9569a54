// The real serial backend over serialport 13 (an optional dependency with prebuilt binaries for the
// Pi), loaded lazily so the hub installs and simulates where it is absent. Follows
// ../shared/hardware-notes.md "Serial": writes are gated on isOpen (a write to a closed port never
// calls back), an unplug is a `close` whose error has `disconnected`, and a pending write is failed
// when the port closes under it. Also used by the tests on socat pseudo-terminals.
import { access, constants } from "node:fs/promises";
import { type SerialCloseInfo, type SerialConnection, type SerialProvider, serialError } from "./serial.js";

/** The part of serialport's SerialPort used here. */
interface NodeSerialPort {
  readonly isOpen: boolean;
  open(cb: (err: Error | null) => void): void;
  write(data: Buffer, cb: (err: Error | null | undefined) => void): boolean;
  close(cb?: (err: Error | null) => void): void;
  on(event: "data", fn: (b: Buffer) => void): this;
  on(event: "close", fn: (err?: Error & { disconnected?: boolean }) => void): this;
  on(event: "error", fn: (err: Error) => void): this;
}

type SerialPortCtor = new (o: { path: string; baudRate: number; autoOpen: boolean; lock?: boolean }) => NodeSerialPort;

async function loadSerialPort(): Promise<SerialPortCtor> {
  const name = "serialport"; // a variable: it is optional, TypeScript must not require it
  const m = (await import(name)) as { SerialPort: SerialPortCtor };
  return m.SerialPort;
}

export interface NodeSerialDeps {
  /** Loads serialport's SerialPort class; rejects when it is not installed. */
  load?: () => Promise<SerialPortCtor>;
}

export function nodeSerial(deps: NodeSerialDeps = {}): SerialProvider {
  const load = deps.load ?? loadSerialPort;
  return {
    async exists(path) {
      try {
        await access(path, constants.F_OK);
        return true;
      } catch {
        return false;
      }
    },
    async open(path, baudRate) {
      let Ctor: SerialPortCtor;
      try {
        Ctor = await load();
      } catch (err) {
        throw serialError("serialport is not installed: reinstall the hub (npm ci) so its optional serialport module is present", "ENOMODULE", err);
      }
      const port = new Ctor({ path, baudRate, autoOpen: false });
      await new Promise<void>((resolve, reject) =>
        port.open((err) => {
          if (!err) return resolve();
          const msg = String(err.message);
          if (/EACCES|Permission denied/i.test(msg)) reject(serialError(`no permission to open ${path}: add the hub's user to the dialout group (sudo usermod -aG dialout <user>)`, "EACCES", err));
          else if (/ENOENT|No such file/i.test(msg)) reject(serialError(`${path} does not exist (is the board plugged in? ls /dev/serial/by-id/)`, "ENOENT", err));
          else reject(serialError(`cannot open ${path}: ${msg}`, "EOPEN", err));
        }),
      );
      return wrap(path, port);
    },
  };
}

function wrap(path: string, port: NodeSerialPort): SerialConnection {
  const dataFns: Array<(b: Uint8Array) => void> = [];
  const closeFns: Array<(i: SerialCloseInfo) => void> = [];
  const pending = new Set<(err: Error) => void>();
  let closed = false;
  const finish = (info: SerialCloseInfo) => {
    if (closed) return;
    closed = true;
    for (const fail of pending) fail(serialError(`${path} closed during a write`, "ECLOSED"));
    pending.clear();
    for (const fn of closeFns) fn(info);
  };
  port.on("data", (b) => {
    for (const fn of dataFns) fn(b);
  });
  let closing = false;
  // A close we did not ask for is the device going away. serialport marks it (err.disconnected)
  // when a read fails, but when a write fails first (unplugged mid-write) Node's stream destroys
  // itself and emits a bare 'close' before serialport's own: go by who asked, not by the argument.
  port.on("close", (err) => finish({ disconnected: err?.disconnected === true || !closing, error: err }));
  // Errors without a close (a failed write) reach the write's callback; keep them from being unhandled.
  port.on("error", () => {});
  return {
    path,
    get isOpen() {
      return !closed && port.isOpen;
    },
    write(data) {
      if (closed || !port.isOpen) return Promise.reject(serialError(`${path} is not open`, "ECLOSED"));
      return new Promise<void>((resolve, reject) => {
        pending.add(reject);
        port.write(Buffer.from(data), (err) => {
          pending.delete(reject);
          if (err) reject(err);
          else resolve();
        });
      });
    },
    close() {
      closing = true;
      if (closed || !port.isOpen) {
        finish({ disconnected: false });
        return Promise.resolve();
      }
      return new Promise<void>((resolve) =>
        port.close(() => {
          finish({ disconnected: false });
          resolve();
        }),
      );
    },
    onData(fn) {
      dataFns.push(fn);
    },
    onClose(fn) {
      closeFns.push(fn);
    },
  };
}
