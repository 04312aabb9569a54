// hubproto 1, the line protocol between the hub and an Arduino running HubLink.h (PROTOCOL.md is the
// specification; this file and drivers/arduino/HubLink/HubLink.h implement it and
// test/drivers/arduino/host.test.ts checks that they agree). Pure functions only: a checksum, a
// parser for each direction, formatters, and a byte-to-line splitter. The parser never throws: a
// line is either a message or a reason it was dropped, so noise on the wire is counted, never published.

export const PROTOCOL_VERSION = 1;
/** Longest line (body, checksum and terminator) the hub accepts; longer ones are dropped as noise. */
export const MAX_LINE = 512;

export type ChannelKind = "sensor" | "binary" | "output" | "pwm";
export const CHANNEL_KINDS: readonly ChannelKind[] = ["sensor", "binary", "output", "pwm"];

export interface ChannelDecl {
  name: string;
  kind: ChannelKind;
  unit?: string;
}

export type BoardMessage =
  | { type: "hello"; version: number; board: string; channels: ChannelDecl[]; fields: Record<string, string>; notes: string[] }
  | { type: "reading"; channel: string; value: number }
  | { type: "event"; name: string; text: string }
  | { type: "pong"; token: string }
  | { type: "error"; code: string; text: string }
  /** A verb this hub does not know (a newer board): ignored, not an error (forward compatibility). */
  | { type: "unknown"; verb: string };

export type HubCommand = { type: "set"; channel: string; value: number } | { type: "ping"; token: string } | { type: "report" } | { type: "hello" };

export type Parsed<T> = { ok: true; message: T } | { ok: false; reason: "checksum" | "malformed"; detail: string };

/**
 * CRC-8/SMBUS: polynomial x^8 + x^2 + x + 1 (0x07), initial value 0, no reflection, no final XOR.
 * Catalogue check value: crc8("123456789") = 0xF4. It detects every burst error up to 8 bits, which
 * an XOR checksum does not (two flipped copies of one bit cancel).
 */
export function crc8(bytes: Uint8Array | string): number {
  let crc = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    crc ^= typeof bytes === "string" ? bytes.charCodeAt(i) & 0xff : bytes[i]!;
    for (let b = 0; b < 8; b++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

const hex2 = (n: number) => n.toString(16).toUpperCase().padStart(2, "0");

/** Escapes one token: `\` → `\\`, space → `\s`, bytes outside 0x21..0x7E → `\xHH` (UTF-8 bytes of `text`). */
export function escapeToken(text: string): string {
  let out = "";
  for (const b of Buffer.from(text, "utf8")) {
    if (b === 0x5c) out += "\\\\";
    else if (b === 0x20) out += "\\s";
    else if (b < 0x21 || b > 0x7e) out += `\\x${hex2(b)}`;
    else out += String.fromCharCode(b);
  }
  return out;
}

/** The text of an escaped token, or undefined when an escape is broken or the bytes are not UTF-8. */
export function unescapeToken(token: string): string | undefined {
  const bytes: number[] = [];
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c !== 0x5c) {
      bytes.push(c);
      continue;
    }
    const e = token[i + 1];
    if (e === "\\" || e === "s") {
      bytes.push(e === "s" ? 0x20 : 0x5c);
      i++;
    } else if (e === "x" && /^[0-9A-Fa-f]{2}$/.test(token.slice(i + 2, i + 4))) {
      bytes.push(Number.parseInt(token.slice(i + 2, i + 4), 16));
      i += 3;
    } else return undefined;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytes));
  } catch {
    return undefined;
  }
}

/** A whole line: the tokens joined by spaces, `*`, the CRC-8 of everything before the `*`, `\n`. */
export function formatLine(body: string): string {
  return `${body}*${hex2(crc8(body))}\n`;
}

/** Checks the printable-ASCII rule and the checksum; returns the body's tokens. */
function checkLine(line: string): { ok: true; tokens: string[] } | { ok: false; reason: "checksum" | "malformed"; detail: string } {
  const text = line.endsWith("\r") ? line.slice(0, -1) : line;
  if (text.length + 1 > MAX_LINE) return { ok: false, reason: "malformed", detail: "line too long" };
  const star = text.lastIndexOf("*");
  if (star < 0 || star !== text.length - 3) return { ok: false, reason: "malformed", detail: "no *XX checksum at the end" };
  const body = text.slice(0, star);
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return { ok: false, reason: "malformed", detail: `byte 0x${hex2(c & 0xff)} at ${i} is not printable ASCII` };
  }
  const sum = text.slice(star + 1);
  if (!/^[0-9A-Fa-f]{2}$/.test(sum)) return { ok: false, reason: "malformed", detail: "checksum is not two hex digits" };
  const want = crc8(body);
  if (Number.parseInt(sum, 16) !== want) return { ok: false, reason: "checksum", detail: `checksum ${sum}, computed ${hex2(want)}` };
  const tokens = body.split(" ").filter((t) => t !== "");
  if (tokens.length === 0) return { ok: false, reason: "malformed", detail: "empty line" };
  return { ok: true, tokens };
}

const NAME = /^[a-z0-9_-]{1,32}$/;
// Decimal numbers as Arduino's Serial.print(float) and printf write them; no hex, no Infinity/NaN.
const NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;
const bad = (detail: string) => ({ ok: false as const, reason: "malformed" as const, detail });

/** key=value tokens (values unescaped); positional tokens are skipped. */
function fieldsOf(tokens: string[]): { fields: Record<string, string>; channels: string[] } {
  const fields: Record<string, string> = Object.create(null);
  const channels: string[] = [];
  for (const t of tokens) {
    const eq = t.indexOf("=");
    if (eq <= 0) continue;
    const key = t.slice(0, eq);
    const value = unescapeToken(t.slice(eq + 1));
    if (value === undefined) continue;
    if (key === "ch") channels.push(value);
    else fields[key] = value;
  }
  return { fields, channels };
}

function parseHello(tokens: string[]): Parsed<BoardMessage> {
  const { fields, channels: specs } = fieldsOf(tokens.slice(1));
  const version = fields.hubproto;
  if (version === undefined || !/^\d{1,6}$/.test(version)) return bad("HELLO without hubproto=<n>");
  const board = fields.board ?? "";
  const notes: string[] = [];
  const channels: ChannelDecl[] = [];
  for (const spec of specs) {
    // ch=<name>:<kind>[:<unit>]; the unit may itself hold ':' (e.g. "m:s" is left whole).
    const [name = "", kind = "", ...unitParts] = spec.split(":");
    if (!NAME.test(name)) {
      notes.push(`channel ${JSON.stringify(name)}: not a name of a-z 0-9 _ - (1..32)`);
      continue;
    }
    if (!(CHANNEL_KINDS as readonly string[]).includes(kind)) {
      notes.push(`channel ${name}: unknown kind ${JSON.stringify(kind)} ignored`);
      continue;
    }
    if (channels.some((c) => c.name === name)) {
      notes.push(`channel ${name}: declared twice; first kept`);
      continue;
    }
    const c: ChannelDecl = { name, kind: kind as ChannelKind };
    if (unitParts.length > 0 && unitParts.join(":") !== "") c.unit = unitParts.join(":");
    channels.push(c);
  }
  const { hubproto: _v, board: _b, ...rest } = fields;
  return { ok: true, message: { type: "hello", version: Number(version), board, channels, fields: { ...rest }, notes } };
}

/** Parses one line from the board (without its `\n`; a trailing `\r` is allowed). Never throws. */
export function parseBoardLine(line: string): Parsed<BoardMessage> {
  const checked = checkLine(line);
  if (!checked.ok) return checked;
  const t = checked.tokens;
  switch (t[0]) {
    case "HELLO":
      return parseHello(t);
    case "R": {
      if (t.length < 3 || !NAME.test(t[1]!)) return bad("R needs <channel> <value>");
      if (!NUMBER.test(t[2]!)) return bad(`R ${t[1]}: ${JSON.stringify(t[2]!.slice(0, 20))} is not a number`);
      const value = Number(t[2]);
      if (!Number.isFinite(value)) return bad(`R ${t[1]}: value out of range`);
      return { ok: true, message: { type: "reading", channel: t[1]!, value } };
    }
    case "EV": {
      if (t.length < 2 || !NAME.test(t[1]!)) return bad("EV needs <name>");
      const text = t.length > 2 ? unescapeToken(t[2]!) : "";
      if (text === undefined) return bad("EV: broken escape in text");
      return { ok: true, message: { type: "event", name: t[1]!, text } };
    }
    case "PONG":
      if (t.length < 2) return bad("PONG needs <token>");
      return { ok: true, message: { type: "pong", token: t[1]! } };
    case "ERR": {
      const text = t.length > 2 ? (unescapeToken(t[2]!) ?? t[2]!) : "";
      return { ok: true, message: { type: "error", code: t[1] ?? "unknown", text } };
    }
    default:
      if (!/^[A-Z][A-Z0-9_]{0,15}$/.test(t[0]!)) return bad(`unknown line ${JSON.stringify(t[0]!.slice(0, 16))}`);
      return { ok: true, message: { type: "unknown", verb: t[0]! } };
  }
}

/** Parses one hub → board line (what HubLink.h does on the board; used by simulators and tests). */
export function parseHubLine(line: string): Parsed<HubCommand> {
  const checked = checkLine(line);
  if (!checked.ok) return checked;
  const t = checked.tokens;
  switch (t[0]) {
    case "SET":
      if (t.length < 3 || !NAME.test(t[1]!) || !NUMBER.test(t[2]!)) return bad("SET needs <channel> <number>");
      return { ok: true, message: { type: "set", channel: t[1]!, value: Number(t[2]) } };
    case "PING":
      return { ok: true, message: { type: "ping", token: t[1] ?? "" } };
    case "REPORT":
      return { ok: true, message: { type: "report" } };
    case "HELLO":
      return { ok: true, message: { type: "hello" } };
    default:
      return bad(`unknown command ${JSON.stringify(t[0]!.slice(0, 16))}`);
  }
}

/** A number as the protocol writes it: plain decimal, at most 6 fractional digits, no exponent for usual values. */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return "0";
  return Number.isInteger(v) ? String(v) : String(Number(v.toFixed(6)));
}

export function formatHubCommand(c: HubCommand): string {
  switch (c.type) {
    case "set":
      return formatLine(`SET ${c.channel} ${formatNumber(c.value)}`);
    case "ping":
      return formatLine(`PING ${escapeToken(c.token)}`);
    case "report":
      return formatLine("REPORT");
    case "hello":
      return formatLine("HELLO");
  }
}

export function formatBoardMessage(m: BoardMessage): string {
  switch (m.type) {
    case "hello": {
      const extra = Object.entries(m.fields).map(([k, v]) => ` ${k}=${escapeToken(v)}`);
      const ch = m.channels.map((c) => ` ch=${escapeToken(`${c.name}:${c.kind}${c.unit === undefined ? "" : `:${c.unit}`}`)}`);
      return formatLine(`HELLO hubproto=${m.version} board=${escapeToken(m.board)}${extra.join("")}${ch.join("")}`);
    }
    case "reading":
      return formatLine(`R ${m.channel} ${formatNumber(m.value)}`);
    case "event":
      return formatLine(m.text === "" ? `EV ${m.name}` : `EV ${m.name} ${escapeToken(m.text)}`);
    case "pong":
      return formatLine(`PONG ${m.token}`);
    case "error":
      return formatLine(m.text === "" ? `ERR ${m.code}` : `ERR ${m.code} ${escapeToken(m.text)}`);
    case "unknown":
      return formatLine(m.verb);
  }
}

/**
 * Splits a byte stream into lines at `\n` (CRLF from println is handled by the parser). Bytes are
 * kept as latin1 so that noise stays visible (and is refused) instead of being decoded. A line
 * longer than MAX_LINE is dropped whole, up to its `\n`, and reported through onOverflow.
 */
export function lineSplitter(onLine: (line: string) => void, onOverflow: () => void, max = MAX_LINE) {
  let buf = "";
  let skipping = false;
  return {
    push(chunk: Uint8Array): void {
      let text = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString("latin1");
      for (;;) {
        const nl = text.indexOf("\n");
        if (nl < 0) {
          if (!skipping) {
            buf += text;
            if (buf.length >= max) {
              buf = "";
              skipping = true;
              onOverflow();
            }
          }
          return;
        }
        const part = text.slice(0, nl);
        text = text.slice(nl + 1);
        if (skipping) {
          skipping = false;
          continue;
        }
        const line = buf + part;
        buf = "";
        if (line.length >= max) onOverflow();
        else onLine(line);
      }
    },
    /** Forget a partial line (after a reopen, the old board's half line means nothing). */
    reset(): void {
      buf = "";
      skipping = false;
    },
  };
}
