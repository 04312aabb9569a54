// A simulated I2C bus: routes each transfer by address to a chip model that sees the same I2C
// messages a real chip would (a write message of bytes, a read message of n bytes). SMBus calls are
// broken down as the kernel does (readByte = write [cmd], repeated start, read 1). An address with
// no chip, or a chip told to NACK, fails with EREMOTEIO, as i2c-bcm2835 does on a real Pi.
import { MAX_BLOCK, type RawI2cBus } from "../i2c.js";

/** Faults every chip model supports; tests and demos flip them at any time. */
export interface ChipFaults {
  /** Every transfer is refused (EREMOTEIO), like a loose wire. */
  nack: boolean;
  /** The chip answers with a wrong identity (chip id, serial, status). */
  wrongId: boolean;
  /** CRC bytes are corrupted. */
  badCrc: boolean;
  /** Conversions never finish. */
  stuckBusy: boolean;
  /** Reads return one byte less than asked. */
  shortRead: boolean;
}

export function noFaults(): ChipFaults {
  return { nack: false, wrongId: false, badCrc: false, stuckBusy: false, shortRead: false };
}

/** A chip as the bus sees it. Throw `nack()` to refuse a message. */
export interface SimChip {
  readonly faults: ChipFaults;
  /** One write message (after the address byte). Empty for a scan probe. */
  write(bytes: Uint8Array): void;
  /** One read message of `length` bytes. */
  read(length: number): Uint8Array;
}

export interface SimTransfer {
  address: number;
  dir: "w" | "r";
  bytes: number[];
}

export interface SimI2cBus extends RawI2cBus {
  attach(address: number, chip: SimChip): void;
  /** The chip disappears (unplugged): its address NACKs from now on. */
  detach(address: number): void;
  chip(address: number): SimChip | undefined;
  /** Every transfer that reached a chip, for byte-level assertions in tests. */
  readonly transfers: SimTransfer[];
  /** Keep at most this many transfers (default 1000). */
  transferLimit: number;
}

/** The error the kernel returns when the address or a byte is not acknowledged. */
export function nack(syscall = "i2c transfer"): Error & { code: string; errno: number } {
  const e = new Error(`EREMOTEIO: remote I/O error, ${syscall}`) as Error & { code: string; errno: number };
  e.code = "EREMOTEIO";
  e.errno = -121;
  return e;
}

function checkAddress(address: number): void {
  if (!Number.isInteger(address) || address < 0 || address > 0x7f) throw new Error(`Invalid I2C address ${address}`);
}

export function createSimI2cBus(): SimI2cBus {
  const chips = new Map<number, SimChip>();
  const transfers: SimTransfer[] = [];
  const record = (address: number, dir: "w" | "r", bytes: Uint8Array) => {
    transfers.push({ address, dir, bytes: [...bytes] });
    if (transfers.length > bus.transferLimit) transfers.splice(0, transfers.length - bus.transferLimit);
  };
  const target = (address: number, syscall: string): SimChip => {
    checkAddress(address);
    const c = chips.get(address);
    if (!c || c.faults.nack) throw nack(syscall);
    return c;
  };
  const write = (address: number, bytes: Uint8Array, syscall: string) => {
    const c = target(address, syscall);
    c.write(bytes);
    record(address, "w", bytes);
  };
  const read = (address: number, length: number, syscall: string): Uint8Array => {
    const c = target(address, syscall);
    let out = c.read(length);
    if (c.faults.shortRead && out.length > 0) out = out.subarray(0, out.length - 1);
    record(address, "r", out);
    return out;
  };
  // Real transfers complete asynchronously (libuv thread pool); so do these, one tick later.
  const later = <T>(fn: () => T): Promise<T> => Promise.resolve().then(fn);

  const bus: SimI2cBus = {
    transfers,
    transferLimit: 1000,
    attach(address, chip) {
      checkAddress(address);
      chips.set(address, chip);
    },
    detach(address) {
      chips.delete(address);
    },
    chip: (address) => chips.get(address),
    i2cRead: (address, length, buffer) =>
      later(() => {
        const got = read(address, length, "read");
        buffer.set(got);
        return { bytesRead: got.length, buffer };
      }),
    i2cWrite: (address, length, buffer) =>
      later(() => {
        write(address, buffer.subarray(0, length), "write");
        return { bytesWritten: length, buffer };
      }),
    readByte: (address, command) =>
      later(() => {
        write(address, Uint8Array.of(command), "readByte");
        const got = read(address, 1, "readByte");
        if (got.length < 1) throw nack("readByte");
        return got[0]!;
      }),
    writeByte: (address, command, byte) => later(() => write(address, Uint8Array.of(command, byte), "writeByte")),
    readI2cBlock: (address, command, length, buffer) =>
      later(() => {
        // i2c-bus checks this before any transfer: the SMBus block limit.
        if (length > MAX_BLOCK) throw new RangeError(`Invalid I2C block length ${length}, it must be at most ${MAX_BLOCK}`);
        write(address, Uint8Array.of(command), "readI2cBlock");
        const got = read(address, length, "readI2cBlock");
        buffer.set(got);
        return { bytesRead: got.length, buffer };
      }),
    scan: (start = 0x03, end = 0x77) =>
      later(() => {
        const found: number[] = [];
        for (let a = start; a <= end; a++) {
          const c = chips.get(a);
          if (c && !c.faults.nack) found.push(a);
        }
        return found;
      }),
    close: async () => {},
  };
  return bus;
}
