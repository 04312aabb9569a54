// The first gate on an MQTT connection: cuts the TCP byte stream into whole packets and refuses bad
// fixed headers before mqtt-packet sees a byte. mqtt-packet 9.0.2 keeps buffering whatever length a
// header claims (a 256 MB CONNECT header with no body just waits), so the size cap, the pre-CONNECT
// state and the per-type flag/length rules are enforced here, on the header alone, before any body
// byte is held. See /work/shared/broker-checklist.md section A.
//
// Usage, once per socket read:
//   framer.push(chunk);
//   for (let f = framer.next(); f !== undefined; f = framer.next()) {
//     if (isFrameError(f)) { close(f.reason); break; }
//     handle(f); // one whole packet, fixed header included
//   }
// After yielding the CONNECT the framer holds everything else until `setProtocol` + `setConnected`
// (MQTT-3.1.4-5/-6: nothing after a CONNECT is processed before that CONNECT is accepted).
//
// Chunks are kept as a list, not concatenated: a packet that lies inside one chunk (the common case,
// also for many pipelined packets in one read) is returned as a `subarray` of it, with no copy. Only
// a packet that spans chunks is copied, once, when its last byte has arrived. Pushed chunks must not
// be modified afterwards (Node's socket `data` buffers are not reused).
import { type ProtocolFault, RC } from "./reason-codes.js";

export type ProtocolLevel = 3 | 4 | 5;
export type FrameError = ProtocolFault;

/** Largest CONNECT accepted before anything is known about the client (A5; CVE-2023-0809). */
export const MAX_CONNECT_SIZE = 65_536;
/** Largest value a 4-byte Variable Byte Integer can carry (MQTT 5 §1.5.5). */
export const MAX_REMAINING_LENGTH = 268_435_455;

export interface FramerOptions {
  /** Largest whole packet (fixed header included, as MQTT 5 Maximum Packet Size counts it). */
  maxPacketSize: number;
  /** Largest CONNECT; default (and at most) `MAX_CONNECT_SIZE`, never above `maxPacketSize`. */
  maxConnectSize?: number;
}

export type FramerPhase = "await-connect" | "connect-pending" | "connected" | "failed";

export interface Framer {
  /** Adds bytes read from the socket. Ignored once the framer has failed. */
  push(chunk: Buffer): void;
  /**
   * The next whole packet, `undefined` when more bytes are needed (or while the CONNECT is pending),
   * or a `FrameError`. An error is final: every later call returns the same error and the buffered
   * bytes are dropped; the caller closes the connection (v5: DISCONNECT with `reason` first, except
   * before CONNECT was accepted, where nothing is sent: A5).
   */
  next(): Buffer | FrameError | undefined;
  /** The protocol level of the accepted CONNECT; governs the v3/v5 rules. Call before `setConnected`. */
  setProtocol(level: ProtocolLevel): void;
  /** The CONNECT was accepted: yield the packets that follow it. */
  setConnected(): void;
  /** Bytes currently held (for tests and metrics). */
  readonly buffered: number;
  readonly phase: FramerPhase;
}

/** True when `next()` returned an error rather than a packet. */
export function isFrameError(x: Buffer | FrameError): x is FrameError {
  return !(x instanceof Uint8Array);
}

const AWAIT_CONNECT = 0;
const CONNECT_PENDING = 1;
const CONNECTED = 2;
const FAILED = 3;
const PHASES: readonly FramerPhase[] = ["await-connect", "connect-pending", "connected", "failed"];

const EMPTY = Buffer.alloc(0);

function fault(reason: number, message: string): FrameError {
  return { reason, message };
}

/**
 * Checks the first byte of a packet received by the server once connected: packet type, and the
 * fixed-header flags (MQTT 5 §2.1.3, 3.1.1 §2.2.2). Returns undefined when acceptable.
 */
function checkFirstByte(b0: number, level: ProtocolLevel): FrameError | undefined {
  const type = b0 >> 4;
  const flags = b0 & 0x0f;
  switch (type) {
    case 0:
      // Reserved (3.1.1: MQTT-2.2.2-2 "Forbidden"; 5: §2.1.2).
      return fault(RC.MALFORMED_PACKET, "reserved packet type 0");
    case 1:
      // A second CONNECT is a protocol violation (MQTT-3.1.0-2).
      return fault(RC.PROTOCOL_ERROR, "second CONNECT on the connection");
    case 2:
    case 9:
    case 11:
    case 13:
      // CONNACK, SUBACK, UNSUBACK, PINGRESP only ever flow server to client.
      return fault(RC.PROTOCOL_ERROR, `packet type ${type} is sent by servers only`);
    case 3:
      // PUBLISH: DUP/QoS/RETAIN; QoS 3 is malformed (MQTT-3.3.1-4).
      if ((flags & 0x06) === 0x06) return fault(RC.MALFORMED_PACKET, "PUBLISH with QoS 3");
      return undefined;
    case 6:
    case 8:
    case 10:
      // PUBREL, SUBSCRIBE, UNSUBSCRIBE: flags 0b0010 (MQTT-3.6.1-1, MQTT-3.8.1-1, MQTT-3.10.1-1).
      if (flags !== 0x02) return fault(RC.MALFORMED_PACKET, `packet type ${type} with flags 0x${flags.toString(16)}`);
      return undefined;
    case 15:
      // AUTH exists in MQTT 5 only; type 15 is reserved in 3.1.1 (MQTT-2.2.2-2).
      if (level < 5) return fault(RC.MALFORMED_PACKET, "AUTH packet on MQTT 3.1.1");
      if (flags !== 0) return fault(RC.MALFORMED_PACKET, "AUTH with non-zero flags");
      return undefined;
    default:
      // PUBACK, PUBREC, PUBCOMP, PINGREQ, DISCONNECT: reserved flags 0 (MQTT-2.2.2-1, 5: MQTT-2.1.3-1).
      if (flags !== 0) return fault(RC.MALFORMED_PACKET, `packet type ${type} with flags 0x${flags.toString(16)}`);
      return undefined;
  }
}

/**
 * Remaining-length rules that need nothing but the header (checklist A8; mosquitto packet_mosq.c).
 * `qos` is the PUBLISH QoS (0 otherwise).
 */
function checkLength(type: number, qos: number, rl: number, level: ProtocolLevel): FrameError | undefined {
  switch (type) {
    case 3: {
      // Topic length (2) + packet id when QoS > 0 (2) + v5 property length (at least 1).
      const min = 2 + (qos > 0 ? 2 : 0) + (level === 5 ? 1 : 0);
      if (rl < min) return fault(RC.MALFORMED_PACKET, `PUBLISH remaining length ${rl} below ${min}`);
      return undefined;
    }
    case 4:
    case 5:
    case 6:
    case 7:
      // 3.1.1: exactly the packet id (§3.4.1-§3.7.1). 5: id, then optional reason and properties.
      if (level < 5 ? rl !== 2 : rl < 2) return fault(RC.MALFORMED_PACKET, `ack type ${type} with remaining length ${rl}`);
      return undefined;
    case 12:
      if (rl !== 0) return fault(RC.MALFORMED_PACKET, `PINGREQ with remaining length ${rl}`);
      return undefined;
    case 14:
      if (level < 5 && rl !== 0) return fault(RC.MALFORMED_PACKET, `DISCONNECT with remaining length ${rl}`);
      return undefined;
    default:
      return undefined;
  }
}

export function createFramer(opts: FramerOptions): Framer {
  const maxPacketSize = opts.maxPacketSize;
  if (!Number.isInteger(maxPacketSize) || maxPacketSize < 2) throw new RangeError("maxPacketSize must be an integer >= 2");
  const maxConnectSize = Math.min(opts.maxConnectSize ?? MAX_CONNECT_SIZE, MAX_CONNECT_SIZE, maxPacketSize);
  return new FramerState(maxPacketSize, maxConnectSize);
}

// A class rather than closures: one framer per connection, thousands of idle connections, so its
// methods live once on the prototype (about 1 KB saved per connection).
class FramerState implements Framer {
  private chunks: Buffer[] = [];
  private head = 0; // index in `chunks` of the first chunk still holding unread bytes
  private off = 0; // read offset inside chunks[head]
  private unread = 0; // unread bytes across all chunks
  private want = -1; // size of the packet whose header has been validated, -1 if none yet
  private state = AWAIT_CONNECT;
  private level: ProtocolLevel | 0 = 0;
  private failed: FrameError | undefined = undefined;

  constructor(
    private readonly maxPacketSize: number,
    private readonly maxConnectSize: number,
  ) {}

  private fail(e: FrameError): FrameError {
    this.failed = e;
    this.state = FAILED;
    this.chunks.length = 0;
    this.head = 0;
    this.off = 0;
    this.unread = 0;
    this.want = -1;
    return e;
  }

  /** The i-th unread byte; the caller guarantees i < unread. */
  private byteAt(i: number): number {
    let idx = this.head;
    let c = this.chunks[idx]!;
    let j = this.off + i;
    while (j >= c.length) {
      j -= c.length;
      c = this.chunks[++idx]!;
    }
    return c[j]!;
  }

  /** Removes and returns the first `n` unread bytes; n <= unread. */
  private take(n: number): Buffer {
    const chunks = this.chunks;
    const first = chunks[this.head]!;
    const avail = first.length - this.off;
    let out: Buffer;
    if (avail >= n) {
      out = first.subarray(this.off, this.off + n);
      this.off += n;
    } else {
      out = Buffer.allocUnsafe(n);
      let w = 0;
      while (w < n) {
        const c = chunks[this.head]!;
        const k = Math.min(c.length - this.off, n - w);
        c.copy(out, w, this.off, this.off + k);
        w += k;
        this.off += k;
        if (this.off === c.length && w < n) {
          chunks[this.head++] = EMPTY;
          this.off = 0;
        }
      }
    }
    if (this.off === chunks[this.head]!.length) {
      chunks[this.head++] = EMPTY;
      this.off = 0;
    }
    if (this.head === chunks.length) {
      chunks.length = 0;
      this.head = 0;
    } else if (this.head > 64) {
      chunks.splice(0, this.head);
      this.head = 0;
    }
    this.unread -= n;
    return out;
  }

  /** Validates the next fixed header; sets `want` once it is complete. Returns an error or undefined. */
  private readHeader(): FrameError | undefined {
    const b0 = this.byteAt(0);
    const type = b0 >> 4;
    if (this.state === AWAIT_CONNECT) {
      // MQTT-3.1.0-1: the first packet must be CONNECT; its flags are reserved 0 (MQTT-2.2.2-1).
      if (type !== 1) return this.fail(fault(RC.PROTOCOL_ERROR, `first packet has type ${type}, not CONNECT`));
      if ((b0 & 0x0f) !== 0) return this.fail(fault(RC.MALFORMED_PACKET, "CONNECT with non-zero flags"));
    } else {
      const e = checkFirstByte(b0, this.level as ProtocolLevel);
      if (e) return this.fail(e);
    }
    // Remaining length: Variable Byte Integer of at most 4 bytes (MQTT-1.5.5-1, 3.1.1 §2.2.3).
    let value = 0;
    let mul = 1;
    let i = 1;
    for (;;) {
      if (i >= this.unread) return undefined; // header not complete yet
      const b = this.byteAt(i);
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        // Minimal encoding (MQTT-1.5.5-1): a trailing zero byte adds nothing. Enforced for every
        // version: 3.1.1 implies it and no real client sends otherwise.
        if (i > 1 && b === 0) return this.fail(fault(RC.MALFORMED_PACKET, "non-minimal remaining length encoding"));
        break;
      }
      if (i === 4) return this.fail(fault(RC.MALFORMED_PACKET, "remaining length longer than 4 bytes"));
      mul *= 128;
      i++;
    }
    const total = i + 1 + value;
    if (this.state === AWAIT_CONNECT) {
      // A5: refused before a body byte is held, so a huge claim allocates nothing.
      if (total > this.maxConnectSize) {
        return this.fail(fault(RC.PACKET_TOO_LARGE, `CONNECT of ${total} bytes exceeds ${this.maxConnectSize}`));
      }
    } else {
      // A4; MQTT-3.2.2-15 (the server's Maximum Packet Size).
      if (total > this.maxPacketSize) return this.fail(fault(RC.PACKET_TOO_LARGE, `packet of ${total} bytes exceeds ${this.maxPacketSize}`));
      const e = checkLength(type, (b0 >> 1) & 0x03, value, this.level as ProtocolLevel);
      if (e) return this.fail(e);
    }
    this.want = total;
    return undefined;
  }

  push(chunk: Buffer): void {
    if (this.state === FAILED || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.unread += chunk.length;
    // While the CONNECT is being decided nothing is consumed; a client that keeps sending cannot
    // make us hold more than one packet's worth (the caller should also pause the socket).
    if (this.state === CONNECT_PENDING && this.unread > this.maxPacketSize) {
      this.fail(fault(RC.QUOTA_EXCEEDED, `more than ${this.maxPacketSize} bytes sent before CONNACK`));
    }
  }

  next(): Buffer | FrameError | undefined {
    if (this.failed !== undefined) return this.failed;
    if (this.state === CONNECT_PENDING || this.unread === 0) return undefined;
    if (this.want < 0) {
      const e = this.readHeader();
      if (e !== undefined) return e;
      if (this.want < 0) return undefined;
    }
    if (this.unread < this.want) return undefined;
    const n = this.want;
    this.want = -1;
    if (this.state === AWAIT_CONNECT) this.state = CONNECT_PENDING;
    return this.take(n);
  }

  setProtocol(l: ProtocolLevel): void {
    if (l !== 3 && l !== 4 && l !== 5) throw new RangeError(`unsupported protocol level ${String(l)}`);
    this.level = l;
  }

  setConnected(): void {
    if (this.state === FAILED) return;
    if (this.state !== CONNECT_PENDING) throw new Error("setConnected() before a CONNECT was framed");
    if (this.level === 0) throw new Error("setConnected() before setProtocol()");
    this.state = CONNECTED;
  }

  get buffered(): number {
    return this.unread;
  }

  get phase(): FramerPhase {
    return PHASES[this.state]!;
  }
}

/**
 * Length of the fixed header (type byte + remaining length) of a framed packet, or -1 when the
 * remaining length is not a well-formed VBI within `buf`. Used by the later gate stages, which get
 * whole packets from the framer.
 */
export function fixedHeaderLength(buf: Buffer): number {
  for (let i = 1; i <= 4 && i < buf.length; i++) {
    if ((buf[i]! & 0x80) === 0) return i + 1;
  }
  return -1;
}
