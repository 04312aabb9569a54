// Topic names and topic filters: validity checks (PUBLISH topics, SUBSCRIBE filters, shared
// subscriptions) and a reference matcher. Pure functions; every check walks the string once with
// charCodeAt/indexOf, so a hostile 10,000-level topic is rejected without building an array (D6).

export interface TopicLimits {
  /** Maximum length in UTF-8 bytes (the protocol maximum is 65,535). */
  maxLength: number;
  /** Maximum number of levels (`a/b/c` has 3; `a/` has 2). */
  maxLevels: number;
}

/** The protocol maxima: used where the caller gives no limits. */
export const PROTOCOL_LIMITS: TopicLimits = { maxLength: 65_535, maxLevels: Number.POSITIVE_INFINITY };

const SLASH = 0x2f;
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;
const NUL = 0x00;

/**
 * True when the UTF-8 length of `s` is within `max`. A UTF-16 code unit never encodes to fewer than
 * one byte, so `s.length > max` already proves the string too long without encoding it.
 */
function byteLengthWithin(s: string, max: number): boolean {
  if (s.length > max) return false;
  return Buffer.byteLength(s, "utf8") <= max;
}

/**
 * A topic name as carried by PUBLISH (and the will topic): non-empty (MQTT-4.7.3-1), no wildcard
 * characters (MQTT-3.3.2-2, MQTT-4.7.0-1), no U+0000 (MQTT-4.7.3-2), no control characters
 * U+0001-U+001F and U+007F (a policy the spec allows: MQTT 5 §1.5.4), within the byte and level caps.
 * UTF-8 well-formedness is checked on the raw bytes by the packet gate, not here.
 */
export function validTopicName(t: string, limits: TopicLimits): boolean {
  if (t.length === 0 || !byteLengthWithin(t, limits.maxLength)) return false;
  let levels = 1;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === SLASH) {
      if (++levels > limits.maxLevels) return false;
    } else if (c === PLUS || c === HASH || c < 0x20 || c === 0x7f) {
      return false; // NUL (MQTT-4.7.3-2) and, by policy, control characters (MQTT 5 §1.5.4; checklist B4)
    }
  }
  return true;
}

/**
 * A topic filter as carried by SUBSCRIBE/UNSUBSCRIBE: non-empty (MQTT-4.7.3-1), `+` only as a whole
 * level (5: MQTT-4.7.1-2; 3.1.1: MQTT-4.7.1-3), `#` only as the whole last level (5: MQTT-4.7.1-1;
 * 3.1.1: MQTT-4.7.1-2), no U+0000 (MQTT-4.7.3-2), within the caps. Purely syntactic: a `$share/...`
 * filter passes or fails as an ordinary filter here; call `parseShared` for the shared rules (E4).
 */
export function validTopicFilter(f: string, limits: TopicLimits): boolean {
  if (f.length === 0 || !byteLengthWithin(f, limits.maxLength)) return false;
  let levels = 1;
  const last = f.length - 1;
  for (let i = 0; i <= last; i++) {
    const c = f.charCodeAt(i);
    if (c === SLASH) {
      if (++levels > limits.maxLevels) return false;
    } else if (c === PLUS) {
      // Whole level: preceded by start or '/', followed by end or '/'.
      if (i > 0 && f.charCodeAt(i - 1) !== SLASH) return false;
      if (i < last && f.charCodeAt(i + 1) !== SLASH) return false;
    } else if (c === HASH) {
      // Whole level and the last character of the filter.
      if (i !== last) return false;
      if (i > 0 && f.charCodeAt(i - 1) !== SLASH) return false;
    } else if (c < 0x20 || c === 0x7f) {
      return false; // NUL (MQTT-4.7.3-2) and, by policy, control characters (checklist B4)
    }
  }
  return true;
}

const SHARE_PREFIX = "$share/";

/**
 * Splits a shared subscription `$share/<group>/<filter>` (MQTT 5 §4.8.2).
 * - `null`: not a shared subscription (does not start with `$share/`).
 * - `"invalid"`: starts with `$share/` but the group is empty or contains `+`/`#` (MQTT-4.8.2-2), or
 *   the filter part is missing, empty or not a valid filter (MQTT-4.8.2-1). Examples: `$share/ab`,
 *   `$share//x`, `$share/a+b/x`, `$share/g/`.
 * The inner filter is checked against `limits` (default: protocol maxima); the caller should also
 * check the whole string with `validTopicFilter` so the level cap applies before anything else.
 */
export function parseShared(
  filter: string,
  limits: TopicLimits = PROTOCOL_LIMITS,
): { group: string; filter: string } | null | "invalid" {
  if (!filter.startsWith(SHARE_PREFIX)) return null;
  const start = SHARE_PREFIX.length;
  const slash = filter.indexOf("/", start);
  if (slash < 0 || slash === start) return "invalid";
  for (let i = start; i < slash; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH || c === NUL) return "invalid";
  }
  const inner = filter.slice(slash + 1);
  if (!validTopicFilter(inner, limits)) return "invalid";
  return { group: filter.slice(start, slash), filter: inner };
}

/** True when the level `f[fs, fe)` equals the level `t[ts, te)`, compared without slicing. */
function sameLevel(f: string, fs: number, fe: number, t: string, ts: number, te: number): boolean {
  if (fe - fs !== te - ts) return false;
  for (let i = 0; i < fe - fs; i++) {
    if (f.charCodeAt(fs + i) !== t.charCodeAt(ts + i)) return false;
  }
  return true;
}

/**
 * Reference matcher for a valid (non-shared) filter against a valid topic name (MQTT 5 §4.7):
 * `+` matches exactly one level, including an empty one; `#` matches the remaining levels including
 * none, so `a/#` matches `a` (§4.7.1.2); a topic starting with `$` is not matched by a filter
 * starting with a wildcard (MQTT-4.7.2-1). Walks both strings by index; allocates nothing.
 */
export function matches(filter: string, topic: string): boolean {
  if (topic.charCodeAt(0) === DOLLAR) {
    const f0 = filter.charCodeAt(0);
    if (f0 === PLUS || f0 === HASH) return false;
  }
  let fi = 0;
  let ti = 0; // start of the current topic level; -1 once every topic level has been consumed
  for (;;) {
    let fe = filter.indexOf("/", fi);
    if (fe < 0) fe = filter.length;
    const oneChar = fe - fi === 1;
    if (oneChar && filter.charCodeAt(fi) === HASH) return true;
    if (ti < 0) return false; // filter has a non-# level left, topic has none
    let te = topic.indexOf("/", ti);
    if (te < 0) te = topic.length;
    if (!(oneChar && filter.charCodeAt(fi) === PLUS) && !sameLevel(filter, fi, fe, topic, ti, te)) return false;
    const topicDone = te === topic.length;
    if (fe === filter.length) return topicDone;
    fi = fe + 1;
    ti = topicDone ? -1 : te + 1;
  }
}
