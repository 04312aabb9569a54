// Payloads as rules see them, and the topic checks rules need. rules/ cannot import the broker's
// topic code (test/architecture.test.ts), so the few lines of MQTT topic grammar live here too.
import { toText } from "./evaluate.js";
import type { Value } from "./expressions.js";

/** JSON payloads larger than this stay text: parsing them is not worth a rule's time. */
export const MAX_JSON_PAYLOAD = 65_536;

const NUMBER = /^\s*-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?\s*$/;

/**
 * A payload's value: a number if it is one ("21.5"), parsed JSON if it is a JSON object or array
 * (or a quoted JSON string), otherwise the text itself ("ON", "true"). Never throws.
 */
export function payloadValue(text: string): Value {
  if (NUMBER.test(text)) {
    const n = Number(text);
    if (Number.isFinite(n)) return n;
  }
  const c = text.trimStart()[0];
  if ((c === "{" || c === "[" || c === '"') && text.length <= MAX_JSON_PAYLOAD) {
    try {
      return JSON.parse(text) as Value;
    } catch {
      // not JSON (or nested too deeply for the parser): the text it is
    }
  }
  return text;
}

/** A path into a JSON payload: `temperature`, `sensor.temp`, `list[0].value`, `[2]`. */
export type DataPath = readonly (string | number)[];

const SEGMENT = /^([^.[\]]+)?((?:\[\d+\])*)$/;

export function parsePath(s: string): DataPath | undefined {
  if (s === "") return undefined;
  const out: (string | number)[] = [];
  for (const part of s.split(".")) {
    const m = SEGMENT.exec(part);
    if (m === null || (m[1] === undefined && m[2] === "")) return undefined;
    if (m[1] !== undefined) out.push(m[1]);
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) out.push(Number(idx[1]));
  }
  return out;
}

/** The value at `path`, own data only, or null. */
export function valueAt(v: Value, path: DataPath): Value {
  let cur: Value = v;
  for (const k of path) {
    if (typeof k === "number") {
      if (!Array.isArray(cur) || k >= cur.length) return null;
      cur = (cur as Value[])[k]!;
    } else {
      if (typeof cur !== "object" || cur === null || Array.isArray(cur) || !Object.hasOwn(cur, k)) return null;
      cur = (cur as Record<string, Value>)[k]!;
    }
  }
  return cur ?? null;
}

/** A value or list of values in a rule (`to: ON`, `to: [ON, on]`), compared as text. */
export type Match = string | number | boolean | readonly (string | number | boolean)[];

/** Whether `v` equals the match (or one of its values), comparing the text both print as. */
export function matchesValue(m: Match, v: Value): boolean {
  const t = toText(v);
  if (Array.isArray(m)) return m.some((x) => toText(x) === t);
  return toText(m as string | number | boolean) === t;
}

// ---- MQTT topic grammar (MQTT-4.7) ---------------------------------------------------------------

/** A topic name to publish to: no wildcards (MQTT-3.3.2-2), no NUL (MQTT-1.5.4-2), not empty. */
export function validTopicName(t: string): boolean {
  return t.length > 0 && t.length <= 65535 && !/[+#\u0000]/.test(t);
}

/** A subscription filter: `+` a whole level, `#` only as the whole last level (MQTT-4.7.1-1/2). */
export function validTopicFilter(f: string): boolean {
  if (f.length === 0 || f.length > 65535 || f.includes("\u0000")) return false;
  const levels = f.split("/");
  return levels.every((l, i) => (l.includes("+") ? l === "+" : true) && (l.includes("#") ? l === "#" && i === levels.length - 1 : true));
}

/** Whether a topic name matches a filter; `$` topics do not match leading wildcards (MQTT-4.7.2-1). */
export function topicMatches(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const t = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}
