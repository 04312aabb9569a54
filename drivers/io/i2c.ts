// The I2C seam: the subset of i2c-bus's PromisifiedBus that drivers use (the real backend is
// linux-i2c.ts, the simulator sim/i2c-bus.ts), a per-bus serialiser (several sensors share one bus),
// and what every I2C driver needs: clock waits, the Sensirion CRC, and one retry policy
// (transient I/O retried with backoff, a bad CRC retried once, then a clear error).
import type { Clock } from "../../hub/contracts.js";

export interface I2cTransfer {
  bytesRead?: number;
  bytesWritten?: number;
  buffer: Buffer;
}

/** What i2c-bus's `openPromisified()` returns, reduced to what the drivers use. */
export interface RawI2cBus {
  /** Plain I2C read of `length` bytes (no register address). */
  i2cRead(address: number, length: number, buffer: Buffer): Promise<{ bytesRead: number; buffer: Buffer }>;
  /** Plain I2C write of `length` bytes. */
  i2cWrite(address: number, length: number, buffer: Buffer): Promise<{ bytesWritten: number; buffer: Buffer }>;
  /** SMBus read byte: write `command`, repeated start, read one byte. */
  readByte(address: number, command: number): Promise<number>;
  /** SMBus write byte: `command`, `byte`. */
  writeByte(address: number, command: number, byte: number): Promise<void>;
  /** SMBus I2C block read: at most 32 bytes (i2c-bus refuses more). */
  readI2cBlock(address: number, command: number, length: number, buffer: Buffer): Promise<{ bytesRead: number; buffer: Buffer }>;
  /** Addresses that acknowledge, between 0x03 and 0x77 unless given. */
  scan(startAddress?: number, endAddress?: number): Promise<number[]>;
  close(): Promise<void>;
}

/** A bus shared by several drivers: every call is queued behind the previous one. */
export interface I2cBus extends Omit<RawI2cBus, "close"> {
  readonly number: number;
  /** Runs `fn` with the bus to itself (for sequences that must not be interleaved). */
  transaction<T>(fn: (bus: RawI2cBus) => Promise<T>): Promise<T>;
}

export const MAX_BLOCK = 32;

/** Queues every transfer on one bus: the kernel serialises too, but a multi-step sequence must not interleave. */
export function serialise(raw: RawI2cBus, number: number): I2cBus {
  let tail: Promise<unknown> = Promise.resolve();
  const transaction = <T>(fn: (bus: RawI2cBus) => Promise<T>): Promise<T> => {
    const run = tail.then(() => fn(raw));
    tail = run.catch(() => {});
    return run;
  };
  return {
    number,
    transaction,
    i2cRead: (a, n, b) => transaction((r) => r.i2cRead(a, n, b)),
    i2cWrite: (a, n, b) => transaction((r) => r.i2cWrite(a, n, b)),
    readByte: (a, c) => transaction((r) => r.readByte(a, c)),
    writeByte: (a, c, v) => transaction((r) => r.writeByte(a, c, v)),
    readI2cBlock: (a, c, n, b) => transaction((r) => r.readI2cBlock(a, c, n, b)),
    scan: (s, e) => transaction((r) => r.scan(s, e)),
  };
}

export interface I2cProvider {
  /** The shared, serialised bus N (opened on first use; a failed open is retried on the next call). */
  bus(number: number): Promise<I2cBus>;
  closeAll(): Promise<void>;
}

export function i2cProvider(open: (number: number) => Promise<RawI2cBus>): I2cProvider {
  const buses = new Map<number, Promise<{ raw: RawI2cBus; shared: I2cBus }>>();
  return {
    async bus(number) {
      let p = buses.get(number);
      if (!p) {
        p = open(number).then((raw) => ({ raw, shared: serialise(raw, number) }));
        buses.set(number, p);
        p.catch(() => buses.delete(number));
      }
      return (await p).shared;
    },
    async closeAll() {
      const all = [...buses.values()];
      buses.clear();
      await Promise.all(all.map((p) => p.then((b) => b.raw.close()).catch(() => {})));
    },
  };
}

/** Resolves after `ms` on the injected clock (conversion waits). */
export function wait(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => {
    clock.after(ms, resolve);
  });
}

/** An Error with a Node-style `code`, which the retry policy reads. */
export function hwError(message: string, code: string, cause?: unknown): Error & { code: string } {
  const e = new Error(message, cause === undefined ? undefined : { cause }) as Error & { code: string };
  e.code = code;
  return e;
}

export const CRC_ERROR = "EBADCRC";
/** A reading that cannot be right (skipped value, power-on value): worth one more try. */
export const BAD_DATA = "EBADDATA";
/** Still converting after the datasheet's maximum time (and some). */
export const BUSY = "EBUSY";

/** Errno codes worth retrying: EREMOTEIO is a NACK (clock stretching, loose wire, busy chip). */
const TRANSIENT = new Set(["EREMOTEIO", "EIO", "ETIMEDOUT", "EAGAIN", "ENXIO"]);

export function errorCode(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" ? c : undefined;
}

/** Sensirion CRC-8: polynomial 0x31, init 0xFF, no reflection (SHT3x/SHT4x/AHT20; CRC(0xBE,0xEF) = 0x92). */
export function crc8(bytes: ArrayLike<number>, init = 0xff): number {
  let crc = init;
  for (let i = 0; i < bytes.length; i++) {
    crc ^= bytes[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 0x80 ? ((crc << 1) ^ 0x31) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

/** Checks `[msb, lsb, crc]` at `offset`; returns the 16-bit word or throws a CRC error naming `what`. */
export function crcWord(buf: Uint8Array, offset: number, what: string): number {
  const got = buf[offset + 2]!;
  const want = crc8([buf[offset]!, buf[offset + 1]!]);
  if (got !== want) {
    throw hwError(`CRC mismatch on ${what} (received 0x${hex(got)}, computed 0x${hex(want)}): noise on the bus`, CRC_ERROR);
  }
  return (buf[offset]! << 8) | buf[offset + 1]!;
}

export function hex(n: number, digits = 2): string {
  return n.toString(16).padStart(digits, "0");
}

export interface RetryPolicy {
  /** Waits before each retry of a transient I/O error (its length is the number of retries). */
  ioBackoff: number[];
  /** Retries of a CRC or bad-data error. */
  dataRetries: number;
}

export const DEFAULT_RETRY: RetryPolicy = { ioBackoff: [10, 50], dataRetries: 1 };

/**
 * Runs one measurement with the retry policy, prefixing the final error with `who` (e.g. "BME280 at
 * 0x76 on bus 1"). The device host then marks the device offline and backs off: nothing wrong is published.
 */
export async function withRetry<T>(clock: Clock, who: string, fn: () => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  let io = 0;
  let data = 0;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const code = errorCode(err);
      if (code !== undefined && TRANSIENT.has(code) && io < policy.ioBackoff.length) {
        await wait(clock, policy.ioBackoff[io++]!);
        continue;
      }
      if ((code === CRC_ERROR || code === BAD_DATA) && data < policy.dataRetries) {
        data++;
        continue;
      }
      throw hwError(`${who}: ${describe(err)}`, code ?? "EIO", err);
    }
  }
}

/** A sentence for users, with the likely cause of common errno codes. */
export function describe(err: unknown): string {
  const code = errorCode(err);
  const msg = err instanceof Error ? err.message : String(err);
  if (code === "EREMOTEIO" || code === "ENXIO") {
    return `no answer (${code}, the chip did not acknowledge): check wiring, power and the address`;
  }
  if (code === "EIO" || code === "ETIMEDOUT") return `bus error (${code}): check wiring and pull-up resistors`;
  return msg;
}

/** "BME280 at 0x76 on bus 1": how errors name a chip. */
export function chipName(chip: string, address: number, bus: number): string {
  return `${chip} at 0x${hex(address)} on bus ${bus}`;
}

/**
 * Reads `length` bytes from a chip that NACKs while it converts (Sensirion, HTU21D): on EREMOTEIO,
 * waits `pollMs` and tries again, up to `polls` times, then reports it as busy (or gone).
 */
export async function readWhenReady(bus: I2cBus, clock: Clock, address: number, length: number, polls = 5, pollMs = 2): Promise<Uint8Array> {
  for (let i = 0; ; i++) {
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await bus.i2cRead(address, length, buf);
      if (bytesRead !== length) throw hwError(`short read: ${bytesRead} of ${length} bytes`, BAD_DATA);
      return buf;
    } catch (err) {
      if (errorCode(err) !== "EREMOTEIO") throw err;
      if (i >= polls) throw hwError(`no result after ${polls * pollMs} ms more than the datasheet's maximum (NACK): sensor stuck busy or gone`, BUSY, err);
      await wait(clock, pollMs);
    }
  }
}

/** Writes these bytes as one I2C message (a command and its arguments). */
export async function command(bus: I2cBus, address: number, ...bytes: number[]): Promise<void> {
  await bus.i2cWrite(address, bytes.length, Buffer.from(bytes));
}

/** Reads `length` bytes as one I2C message; a short read is an error. */
export async function readBytes(bus: I2cBus, address: number, length: number): Promise<Uint8Array> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await bus.i2cRead(address, length, buf);
  if (bytesRead !== length) throw hwError(`short read: ${bytesRead} of ${length} bytes`, BAD_DATA);
  return buf;
}

/** The I2C bus from the context, or a clear error when the hub was built without I2C. */
export async function openBus(getBus: ((n: number) => Promise<I2cBus>) | undefined, number: number): Promise<I2cBus> {
  if (!getBus) throw new Error("no I2C buses in this hub (hardware backend missing)");
  return getBus(number);
}
