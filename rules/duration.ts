// Durations for the whole hub: `250ms`, `10s`, `5m`, `1h30m`, `1d`, and signed offsets (`-30m`) for
// sun triggers. It lives here because rules/ may import nothing from hub/ but types
// (test/architecture.test.ts); hub/config/duration.ts re-exports it for the config schema.
import { z } from "zod";

const NUM = "(\\d+(?:\\.\\d+)?)";
const BODY = `(?=\\d)(?:${NUM}d)?(?:${NUM}h)?(?:${NUM}m)?(?:${NUM}s)?(?:${NUM}ms)?`;
/** Units from largest to smallest, each at most once; the lookahead makes the empty string fail. */
export const DURATION_PATTERN = `^${BODY}$`;
export const OFFSET_PATTERN = `^[-+]?${BODY}$`;
const DURATION_RE = new RegExp(DURATION_PATTERN);
const OFFSET_RE = new RegExp(`^([-+]?)(${BODY})$`);
const UNIT_MS = [86_400_000, 3_600_000, 60_000, 1_000, 1] as const;

/** Milliseconds, or undefined if `s` is not a duration (or too long to be a safe integer). */
export function parseDuration(s: string): number | undefined {
  const m = DURATION_RE.exec(s);
  if (m === null) return undefined;
  let ms = 0;
  for (let i = 0; i < UNIT_MS.length; i++) {
    const part = m[i + 1];
    if (part !== undefined) ms += Number(part) * UNIT_MS[i]!;
  }
  ms = Math.round(ms);
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** A signed duration: `-30m` is 30 minutes before, `+1h` or `1h` after. */
export function parseOffset(s: string): number | undefined {
  const m = OFFSET_RE.exec(s);
  if (m === null) return undefined;
  const ms = parseDuration(m[2]!);
  return ms === undefined ? undefined : m[1] === "-" ? -ms : ms;
}

const EXPECTED = "a duration such as 250ms, 10s, 5m, 1h30m or 1d";
const EXPECTED_OFFSET = "an offset such as -30m, 10m or +1h";

/** Input a string (what YAML and the JSON Schema see), output milliseconds. */
export function duration() {
  return z
    .string({ error: (iss) => (typeof iss.input === "number" ? `${EXPECTED} (write a unit, e.g. 10s)` : EXPECTED) })
    .regex(DURATION_RE, { error: EXPECTED, abort: true })
    .refine((s) => parseDuration(s) !== undefined, { error: `${EXPECTED} (this one is too long)` })
    .transform((s) => parseDuration(s) as number);
}

/** A signed duration in milliseconds. */
export function offset() {
  return z
    .string({ error: (iss) => (typeof iss.input === "number" ? `${EXPECTED_OFFSET} (write a unit)` : EXPECTED_OFFSET) })
    .regex(new RegExp(OFFSET_PATTERN), { error: EXPECTED_OFFSET, abort: true })
    .refine((s) => parseOffset(s) !== undefined, { error: `${EXPECTED_OFFSET} (this one is too long)` })
    .transform((s) => parseOffset(s) as number);
}
