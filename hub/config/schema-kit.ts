// The small zod building blocks every part's config schema uses, with one wording for each kind of
// mistake. A leaf module: the part schemas (listeners, auth, bridge, hardware...) import it, and
// hub/config/schema.ts imports them, so these cannot live in schema.ts without an import cycle.
import { z } from "zod";

/** An integer in a range; one message for every way of getting it wrong (wrong type, fraction, range). */
export function int(min: number, max?: number) {
  const msg = max === undefined ? `an integer >= ${min}` : `an integer ${min}..${max}`;
  const s = z.int({ error: msg }).min(min, { error: msg });
  return max === undefined ? s : s.max(max, { error: msg });
}

/** A name used as one MQTT topic level and in rules: `living_room`, `temp-1`. */
export function slug(what: string) {
  const msg = `${what} of lowercase letters, digits, _ and - (e.g. living_room)`;
  return z.string({ error: msg }).regex(/^[a-z0-9_-]+$/, { error: msg });
}

/** A string that must not be empty; `what` says what was expected ("a file path"). */
export function nonEmpty(what: string) {
  return z.string({ error: what }).min(1, { error: what });
}
