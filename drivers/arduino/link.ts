// The serial link to one Arduino, whatever protocol it speaks (a SessionFactory): open the port,
// wait for the handshake (the board resets on open), check it is alive with a heartbeat (a hung
// sketch keeps its tty open), and survive unplugging: on a `disconnected` close go offline at once,
// never write to the dead port, poll for the device path to come back with capped backoff, reopen,
// wait for the handshake and re-send the desired state of every output. All waiting goes through
// the injected Clock. Problems are counted (session.ts Counters) for the log and a diagnostics topic.
// See ../shared/hardware-notes.md "Serial (serialport 13) and the Arduino".
import type { Cancel, Clock, Logger } from "../../hub/contracts.js";
import type { SerialConnection, SerialProvider } from "../io/serial.js";
import { type BoardInfo, type Counters, type ProtocolSession, type SessionFactory, zeroCounters } from "./session.js";

export interface LinkOptions {
  path: string;
  baudRate: number;
  /** Time from opening the port to the banner (boot + bootloader wait). */
  bannerTimeoutMs: number;
  /** Time between pings while online. */
  heartbeatIntervalMs: number;
  /** A ping not answered within this time means the sketch hung. */
  heartbeatTimeoutMs: number;
  /** First and largest delay between attempts to find and open the port again. */
  retryMinMs?: number;
  retryMaxMs?: number;
}

export interface LinkListener {
  online?(info: BoardInfo): void;
  offline?(reason: string): void;
  reading?(channel: string, value: number): void;
  event?(name: string, text: string): void;
  /** Counters changed (called at most once per second, with the latest values). */
  diagnostics?(d: Diagnostics): void;
}

export interface Diagnostics extends Counters {
  online: boolean;
  path: string;
  protocol?: string;
  board?: string;
  /** Last reason the link went offline. */
  last_offline?: string;
}

export interface ArduinoLink {
  start(): void;
  stop(): Promise<void>;
  /** Desired value of an output: sent now if online, and again after every reconnect. */
  set(channel: string, value: number): boolean;
  report(): void;
  readonly online: boolean;
  readonly info: BoardInfo | undefined;
  diagnostics(): Diagnostics;
}

export interface LinkDeps {
  serial: SerialProvider;
  clock: Clock;
  log: Logger;
  session: SessionFactory;
}

const DIAGNOSTICS_EVERY_MS = 1_000;

export function createLink(o: LinkOptions, deps: LinkDeps, listener: LinkListener): ArduinoLink {
  const { clock, log, serial } = deps;
  const retryMin = o.retryMinMs ?? 500;
  const retryMax = o.retryMaxMs ?? 10_000;
  const counters = zeroCounters();
  const desired = new Map<string, number>();
  let conn: SerialConnection | undefined;
  let session: ProtocolSession | undefined;
  let info: BoardInfo | undefined;
  let online = false;
  let stopped = true;
  let handshakes = 0;
  let lastOffline: string | undefined;
  let retryMs = retryMin;
  let timers: Cancel[] = [];
  let diagTimer: Cancel | undefined;
  let diagDirty = false;
  let generation = 0;

  const cancelTimers = () => {
    for (const c of timers) c();
    timers = [];
  };
  const after = (ms: number, fn: () => void) => {
    const c = clock.after(ms, fn);
    timers.push(c);
    return c;
  };
  const diagnostics = (): Diagnostics => {
    const d: Diagnostics = { online, path: o.path, ...counters };
    if (info) {
      d.protocol = info.protocol;
      d.board = info.board;
    }
    if (lastOffline !== undefined) d.last_offline = lastOffline;
    return d;
  };
  // Counters can move hundreds of times a second on a noisy cable: report at most once a second.
  const diagChanged = () => {
    diagDirty = true;
    if (diagTimer || stopped) return;
    listener.diagnostics?.(diagnostics());
    diagDirty = false;
    diagTimer = clock.after(DIAGNOSTICS_EVERY_MS, () => {
      diagTimer = undefined;
      if (diagDirty) diagChanged();
    });
  };

  const goOffline = (reason: string) => {
    lastOffline = reason;
    if (online) {
      online = false;
      log.warn("board offline", { path: o.path, reason, ...counters });
      listener.offline?.(reason);
    }
    diagChanged();
  };

  /** Drops the current port (closing it unless it is already gone) and tries again after `delay`. */
  const drop = async (reason: string, delay: number) => {
    const c = conn;
    const s = session;
    conn = undefined;
    session = undefined;
    generation++;
    cancelTimers();
    s?.dispose();
    goOffline(reason);
    if (c?.isOpen) await c.close().catch((err) => log.debug("close failed", { error: err }));
    if (!stopped) after(delay, () => void attempt());
  };
  const backoff = () => {
    const d = retryMs;
    retryMs = Math.min(retryMs * 2, retryMax);
    return d;
  };

  const heartbeat = (gen: number) => {
    after(o.heartbeatIntervalMs, () => {
      if (gen !== generation || !session) return;
      const timeout = after(o.heartbeatTimeoutMs, () => {
        if (gen !== generation) return;
        counters.heartbeat_timeouts++;
        log.warn("board does not answer pings: closing the port to reset it", { path: o.path, timeout_ms: o.heartbeatTimeoutMs });
        // Reopening resets the board (DTR), which is what a hung sketch needs.
        void drop("heartbeat timeout", retryMin);
      });
      pongHandler = () => {
        timeout();
        heartbeat(gen);
      };
      session.ping();
    });
  };
  let pongHandler: (() => void) | undefined;

  async function attempt(): Promise<void> {
    if (stopped || conn) return;
    const gen = ++generation;
    let present = false;
    try {
      present = await serial.exists(o.path);
    } catch {}
    if (gen !== generation || stopped) return;
    if (!present) {
      // Unplugged: wait for the device node to come back rather than failing opens.
      after(backoff(), () => void attempt());
      return;
    }
    let c: SerialConnection;
    try {
      c = await serial.open(o.path, o.baudRate);
    } catch (err) {
      if (gen !== generation || stopped) return;
      log.warn("cannot open the serial port; will retry", { path: o.path, error: err, retry_ms: retryMs });
      lastOffline = `open failed: ${(err as Error).message}`;
      diagChanged();
      after(backoff(), () => void attempt());
      return;
    }
    if (gen !== generation || stopped) {
      await c.close();
      return;
    }
    conn = c;
    const s = deps.session({
      clock,
      log,
      write: (bytes) => (conn === c && c.isOpen ? c.write(bytes) : Promise.reject(new Error("port closed"))),
      ready(i) {
        if (gen !== generation) return;
        cancelTimers();
        info = i;
        retryMs = retryMin;
        if (handshakes++ > 0) counters.reconnects++;
        online = true;
        log.info("board online", { path: o.path, board: i.board, protocol: i.protocol, version: i.version, channels: i.channels.map((ch) => ch.name).join(",") });
        listener.online?.(i);
        // The board forgot everything when it reset: give it the outputs' desired state again.
        for (const [ch, v] of desired) s.set(ch, v);
        s.report();
        diagChanged();
        heartbeat(gen);
      },
      pong() {
        if (gen === generation) pongHandler?.();
      },
      reading: (ch, v) => gen === generation && listener.reading?.(ch, v),
      event: (n, t) => gen === generation && listener.event?.(n, t),
      count(k, detail) {
        counters[k]++;
        if (k !== "discarded_lines") log.debug("line dropped", { counter: k, detail });
        diagChanged();
      },
      fail(reason) {
        if (gen !== generation) return;
        log.error("board refused", { path: o.path, reason });
        void drop(reason, retryMax);
      },
    });
    session = s;
    c.onData((chunk) => {
      if (gen === generation) s.data(chunk);
    });
    c.onClose((ci) => {
      if (gen !== generation) return;
      if (ci.disconnected) {
        counters.disconnects++;
        log.warn("serial port disconnected (unplugged?); waiting for it to come back", { path: o.path });
      }
      void drop(ci.disconnected ? "disconnected" : "port closed", retryMin);
    });
    after(o.bannerTimeoutMs / 2, () => {
      if (gen === generation && !online) s.requestBanner?.();
    });
    after(o.bannerTimeoutMs, () => {
      if (gen !== generation || online) return;
      counters.banner_timeouts++;
      log.warn("no banner from the board; is the sketch flashed and the baud rate right?", { path: o.path, baud: o.baudRate, timeout_ms: o.bannerTimeoutMs });
      void drop("no banner", backoff());
    });
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      void attempt();
    },
    async stop() {
      stopped = true;
      diagTimer?.();
      diagTimer = undefined;
      await drop("stopped", 0);
    },
    set(channel, value) {
      desired.set(channel, value);
      if (!online || !session) return false;
      session.set(channel, value);
      return true;
    },
    report() {
      if (online) session?.report();
    },
    get online() {
      return online;
    },
    get info() {
      return info;
    },
    diagnostics,
  };
}
