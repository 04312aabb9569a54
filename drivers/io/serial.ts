// The serial seam: what the Arduino link needs of a serial port, so the same link code runs over a
// real tty (serial-node.ts, serialport 13), a socat pseudo-terminal in tests, or the in-process
// simulated board (sim/serial.ts). See ../shared/hardware-notes.md "Serial": a port that closed
// never calls back a write, so writes on a closed connection fail at once; an unplug is a close
// with `disconnected: true`.

export interface SerialCloseInfo {
  /** True when the device went away (USB unplug, socat killed), false for our own close(). */
  disconnected: boolean;
  error?: unknown;
}

export interface SerialConnection {
  readonly path: string;
  readonly isOpen: boolean;
  /** Resolves when the bytes were handed to the OS; rejects at once if the port is closed. */
  write(data: Uint8Array): Promise<void>;
  /** Closes the port; harmless when already closed. */
  close(): Promise<void>;
  onData(fn: (chunk: Uint8Array) => void): void;
  /** Called once, however the port closed. */
  onClose(fn: (info: SerialCloseInfo) => void): void;
}

export interface SerialProvider {
  open(path: string, baudRate: number): Promise<SerialConnection>;
  /** Whether the device node is there (polled after an unplug before reopening). */
  exists(path: string): Promise<boolean>;
}

/** An error for a serial port problem, with a code tests and logs can key on. */
export function serialError(message: string, code: string, cause?: unknown): Error & { code: string } {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  e.code = code;
  return e;
}
