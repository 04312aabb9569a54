// Durations in config and rules: human strings such as `250ms`, `10s`, `5m`, `1h30m`, `1d`, turned
// into milliseconds. A bare number is refused on purpose: `timeout: 10` is ambiguous (seconds? ms?).
import { z } from "zod";

const NUM = "(\\d+(?:\\.\\d+)?)";
/**
 * Units from largest to smallest, each at most once (`1h30m`, not `30m1h`). The lookahead makes the
 * empty string fail. It is also the JSON Schema `pattern`, so editors flag bad durations as you type.
 */
export const DURATION_PATTERN = `^(?=\\d)(?:${NUM}d)?(?:${NUM}h)?(?:${NUM}m)?(?:${NUM}s)?(?:${NUM}ms)?$`;
const DURATION_RE = new RegExp(DURATION_PATTERN);
const UNIT_MS = [86_400_000, 3_600_000, 60_000, 1_000, 1] as const;

/** Milliseconds (rounded to whole ms, which is what timers take), or undefined if `s` is not a duration. */
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

const EXPECTED = "a duration such as 250ms, 10s, 5m, 1h30m or 1d";

/**
 * A zod schema for a duration: input a string (what the YAML and the JSON Schema see), output
 * milliseconds. Give defaults with `.prefault("10s")` so they are written as users write them.
 */
export function duration() {
  return z
    .string({ error: (iss) => (typeof iss.input === "number" ? `${EXPECTED} (write a unit, e.g. 10s)` : EXPECTED) })
    .regex(DURATION_RE, { error: EXPECTED, abort: true })
    .refine((s) => parseDuration(s) !== undefined, { error: `${EXPECTED} (this one is too long)` })
    .transform((s) => parseDuration(s) as number);
}
