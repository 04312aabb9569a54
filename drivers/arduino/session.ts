// What the link (link.ts) needs of a protocol spoken over an open port: hubproto (hubproto.ts) and
// Firmata (firmata.ts) each implement it, so reconnecting, the heartbeat and re-sending outputs are
// written once. A session lives exactly as long as one open port.
import type { Clock, Logger } from "../../hub/contracts.js";
import type { ChannelDecl } from "./protocol.js";

export interface BoardInfo {
  /** The board's name from its banner (hubproto) or its firmware name (Firmata). */
  board: string;
  protocol: "hubproto" | "firmata";
  /** hubproto version or Firmata protocol version, as text. */
  version: string;
  channels: ChannelDecl[];
  /** Other banner fields, e.g. fw=1.2 (kept for diagnostics). */
  fields: Record<string, string>;
}

export interface Counters {
  /** Lines that were not well formed (no checksum, bad syntax, too long, not ASCII). */
  bad_lines: number;
  /** Lines whose CRC-8 did not match: noise on the wire. */
  checksum_errors: number;
  /** Lines of a newer protocol (unknown verbs), ignored. */
  unknown_lines: number;
  /** Bytes or lines before the banner (bootloader output, a half line), discarded. */
  discarded_lines: number;
  /** ERR lines from the board (it refused a command or saw a damaged line from us). */
  board_errors: number;
  /** Times the port closed under us (unplug). */
  disconnects: number;
  /** Times the board stopped answering pings while its port stayed open (hung sketch). */
  heartbeat_timeouts: number;
  /** Opens after which no banner came in time. */
  banner_timeouts: number;
  /** Successful handshakes after the first one. */
  reconnects: number;
}

export const zeroCounters = (): Counters => ({
  bad_lines: 0,
  checksum_errors: 0,
  unknown_lines: 0,
  discarded_lines: 0,
  board_errors: 0,
  disconnects: 0,
  heartbeat_timeouts: 0,
  banner_timeouts: 0,
  reconnects: 0,
});

export interface SessionHooks {
  clock: Clock;
  log: Logger;
  /** Sends bytes; rejects (and never hangs) when the port is closed. */
  write(bytes: Uint8Array): Promise<void>;
  /** The handshake finished (or the board announced itself again after a reset). */
  ready(info: BoardInfo): void;
  /** The board answered the last ping. */
  pong(): void;
  reading(channel: string, value: number): void;
  event(name: string, text: string): void;
  count(counter: keyof Counters, detail?: string): void;
  /** The board cannot be used (e.g. a protocol version this hub does not speak). */
  fail(reason: string): void;
}

export interface ProtocolSession {
  data(chunk: Uint8Array): void;
  /** Asks for a sign of life; the session calls hooks.pong() when it comes. */
  ping(): void;
  set(channel: string, value: number): void;
  /** Asks the board for all its current values. */
  report(): void;
  /**
   * No handshake yet, halfway through the banner timeout: ask the board for it. A board that does
   * not reset when its port opens (Leonardo, Micro and other native-USB boards) printed its banner
   * before anyone listened.
   */
  requestBanner?(): void;
  /** The port is gone: cancel timers, drop listeners. */
  dispose(): void;
}

export type SessionFactory = (hooks: SessionHooks) => ProtocolSession;
