// Logging: one line per event, the component on every line, secrets redacted.
// Under systemd (JOURNAL_STREAM set) each line starts with its syslog priority "<N>" so that
// `journalctl -p warning -u hub` filters by level (sd-daemon(3), SD_WARNING etc.); journald adds
// the timestamp itself. Elsewhere: readable text with a timestamp, or JSON with log.format: json.
import type { LogFields, LogLevel, Logger } from "./contracts.js";

export type LogFormat = "text" | "json" | "journal";

export interface LogOptions {
  level: LogLevel;
  format: LogFormat;
  /** Receives each finished line without the newline. */
  write: (line: string, level: LogLevel) => void;
  now?: () => number;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
// syslog priorities: err 3, warning 4, info 6, debug 7.
const SYSLOG: Record<LogLevel, number> = { debug: 7, info: 6, warn: 4, error: 3 };
const SECRET_KEY = /pass(word)?|secret|token|credential|authorization|psk/i;

/** Field values under secret-looking keys are replaced, at any depth, before anything is written. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 4 || value === null || typeof value !== "object") return value;
  if (Buffer.isBuffer(value)) return `<${value.length} bytes>`;
  if (value instanceof Error) return value.message;
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEY.test(k) ? "<redacted>" : redact(v, depth + 1);
  return out;
}

function textValue(v: unknown): string {
  if (typeof v === "string") return /[\s="]/.test(v) || v === "" ? JSON.stringify(v) : v;
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "object" && v !== null) return JSON.stringify(v);
  return String(v);
}

function formatFields(fields: LogFields | undefined): string {
  if (!fields) return "";
  let s = "";
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    s += ` ${k}=${SECRET_KEY.test(k) ? "<redacted>" : textValue(redact(v))}`;
  }
  return s;
}

export function createLogger(opts: LogOptions, component = "hub"): Logger {
  const min = RANK[opts.level];
  const now = opts.now ?? Date.now;
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (RANK[level] < min) return;
    const oneLine = msg.replace(/\r?\n/g, " ⏎ ");
    let line: string;
    if (opts.format === "json") {
      const rec: Record<string, unknown> = { time: new Date(now()).toISOString(), level, component, msg: oneLine };
      if (fields) Object.assign(rec, redact(fields) as object);
      line = JSON.stringify(rec);
    } else if (opts.format === "journal") {
      line = `<${SYSLOG[level]}>${component}: ${oneLine}${formatFields(fields)}`;
    } else {
      line = `${new Date(now()).toISOString()} ${level.toUpperCase().padEnd(5)} ${component}: ${oneLine}${formatFields(fields)}`;
    }
    opts.write(line, level);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (name) => createLogger(opts, `${component}/${name}`),
    debugEnabled: min <= RANK.debug,
  } as Logger;
}

/**
 * False only when `log` is known to drop debug lines (a createLogger logger above debug): hot paths
 * (a broker handshake) skip building fields nobody reads. Other loggers count as writing debug.
 */
export function debugEnabled(log: Logger): boolean {
  return (log as { debugEnabled?: boolean }).debugEnabled !== false;
}

/** Picks the journal format when stdout/stderr is connected to journald. */
export function logFormatFor(configured: "text" | "json", env: Record<string, string | undefined>): LogFormat {
  return env.JOURNAL_STREAM ? "journal" : configured;
}

/** A logger that remembers lines, for tests. */
export function memoryLogger(level: LogLevel = "debug"): Logger & { lines: string[] } {
  const lines: string[] = [];
  const l = createLogger({ level, format: "text", write: (line) => lines.push(line), now: () => 0 });
  return Object.assign(l, { lines });
}
