// The rule schema's lower half (split from rules/schema.ts, which imports it): the value types every
// part shares (expressions, templates, topics, JSON paths, time zones, times of day), the triggers
// (what starts a rule, and what a `wait` waits for) and the conditions (what gates it). Expressions,
// cron schedules and time zones are parsed here, so a typo is reported at its file:line:col when the
// config is loaded. Each kind is one member of a union told apart by `trigger:` or `condition:`.
import { z } from "zod";
import { cronProblem } from "./cron.js";
import { duration, offset } from "./duration.js";
import { ExpressionError, parseExpression, parseTemplate } from "./expressions.js";
import { SUN_EVENT_NAMES } from "./sun.js";
import { parseTimeOfDay, validTimeZone, WEEKDAY_NAMES } from "./time.js";
import { parsePath, validTopicFilter, validTopicName } from "./values.js";

export function parses(what: string, parse: (s: string) => unknown) {
  return (s: string, ctx: z.core.$RefinementCtx<string>) => {
    try {
      parse(s);
    } catch (err) {
      const why = err instanceof ExpressionError || err instanceof Error ? err.message : String(err);
      ctx.addIssue({ code: "custom", message: `${what} (${why})`, input: s });
    }
  };
}

/** An expression such as `trigger.value > 25 and state('hub/porch/lux') < 10`. */
export const expression = () =>
  z.string({ error: "an expression, e.g. trigger.value > 25" }).superRefine(parses("a valid expression", parseExpression));

/** Text that may hold {{ expression }} parts. */
export const template = (what = "text") => z.string({ error: what }).superRefine(parses(`${what} with valid {{ }} parts`, parseTemplate));

const topicName = z
  .string({ error: "an MQTT topic" })
  .refine(validTopicName, { error: "an MQTT topic without wildcards (+ #), e.g. hub/garden/lux" });
const topicFilter = z
  .string({ error: "an MQTT topic filter" })
  .refine(validTopicFilter, { error: "an MQTT topic filter (+ for one level, # as the last level), e.g. hub/+/temperature" });
const dataPath = z
  .string({ error: "a path into a JSON payload, e.g. temperature or sensor.values[0]" })
  .refine((s) => parsePath(s) !== undefined, { error: "a path into a JSON payload, e.g. temperature or sensor.values[0]" })
  .describe("Take the value at this path of a JSON payload (e.g. sensor.temp or values[0]) instead of the whole payload.");
const scalar = z.union([z.string(), z.number(), z.boolean()], { error: "a value (text, number or true/false) or a list of them" });
const match = z.union([scalar, z.array(scalar)], { error: "a value (text, number or true/false) or a list of them" });
export const timeZone = z
  .string({ error: "an IANA time zone such as Europe/Berlin" })
  .refine(validTimeZone, { error: "an IANA time zone such as Europe/Berlin or UTC" });
const timeOfDay = z
  .string({ error: "a time of day such as 22:00 or 06:30:15" })
  .refine((s) => parseTimeOfDay(s) !== undefined, { error: "a time of day such as 22:00 or 06:30:15 (24-hour, quoted)" })
  .transform((s) => parseTimeOfDay(s) as number);
export const number = z.number({ error: "a number" });
export const qos = z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "a QoS: 0, 1 or 2" });

// ---- triggers -----------------------------------------------------------------------------------

const triggerId = z.string({ error: "a string" }).optional().describe("Name of this trigger, seen as trigger.id in expressions.");

export const mqttTrigger = z
  .strictObject({
    trigger: z.literal("mqtt"),
    id: triggerId,
    topic: topicFilter.describe("Topic filter to listen to; + and # wildcards allowed."),
    value: dataPath.optional(),
    payload: match.optional().describe("Fire only when the payload (or the value at `value`) equals this, or one of these."),
  })
  .describe("Fires on every message on the topic filter (retained messages present at startup do not fire it).");

export const stateTrigger = z
  .strictObject({
    trigger: z.literal("state"),
    id: triggerId,
    topic: topicName.describe("Topic whose value is watched."),
    value: dataPath.optional(),
    from: match.optional().describe("Fire only when the previous value was this (or one of these)."),
    to: match.optional().describe("Fire only when the new value is this (or one of these)."),
    for: duration().optional().describe("The new value must hold this long; a change in between cancels."),
  })
  .describe("Fires when the topic's value changes (a repeated equal value is not a change).");

export const numericTrigger = z
  .strictObject({
    trigger: z.literal("numeric"),
    id: triggerId,
    topic: topicName.describe("Topic with a numeric value."),
    value: dataPath.optional(),
    above: number.optional().describe("In range when the value is greater than this."),
    below: number.optional().describe("In range when the value is less than this."),
    hysteresis: number
      .min(0, { error: "a number >= 0" })
      .default(0)
      .describe("Leaving the range needs the value to pass the limit by this much (so a value that wobbles does not refire)."),
    for: duration().optional().describe("The value must stay in range this long."),
  })
  .refine((t) => t.above !== undefined || t.below !== undefined, { error: "above, below or both" })
  .refine((t) => t.above === undefined || t.below === undefined || t.above < t.below, { error: "above less than below", path: ["below"] })
  .describe("Fires when the value enters the range (above/below) from outside it.");

export const cronTrigger = z
  .strictObject({
    trigger: z.literal("cron"),
    id: triggerId,
    cron: z
      .string({ error: "a cron schedule" })
      .superRefine((s, ctx) => {
        const why = cronProblem(s);
        if (why !== undefined) ctx.addIssue({ code: "custom", message: `a cron schedule such as "0 30 7 * * mon-fri" (${why})`, input: s });
      })
      .describe("Schedule: [second] minute hour day-of-month month day-of-week, e.g. '0 30 7 * * mon-fri'."),
    time_zone: timeZone.optional().describe("Time zone of the schedule; default: location.time_zone, else the system's."),
  })
  .describe("Fires on a schedule (node-cron syntax, optional seconds field).");

export const sunTrigger = z
  .strictObject({
    trigger: z.literal("sun"),
    id: triggerId,
    event: z.enum(SUN_EVENT_NAMES).describe("Sun event; dawn/dusk are civil twilight."),
    offset: offset().prefault("0s").describe("Time relative to the event: -30m is half an hour before."),
  })
  .describe("Fires at a sun event at the configured location.");

export const startupTrigger = z
  .strictObject({ trigger: z.literal("startup"), id: triggerId })
  .describe("Fires once when the rules start (after retained values are known).");

export const triggerSchema = z
  .discriminatedUnion("trigger", [mqttTrigger, stateTrigger, numericTrigger, cronTrigger, sunTrigger, startupTrigger])
  .describe("What starts a rule, by kind: mqtt, state, numeric, cron, sun, startup.");

// ---- conditions ---------------------------------------------------------------------------------

const stateCondition = z
  .strictObject({
    condition: z.literal("state"),
    topic: topicName.describe("Topic whose last value is tested (retained values count)."),
    value: dataPath.optional(),
    state: match.describe("The value must be this (or one of these)."),
    for: duration().optional().describe("...and must have been so for at least this long."),
  })
  .describe("True when a topic's last value is the given one.");

const numericCondition = z
  .strictObject({
    condition: z.literal("numeric"),
    topic: topicName.describe("Topic whose last value is tested."),
    value: dataPath.optional(),
    above: number.optional().describe("True when greater than this."),
    below: number.optional().describe("True when less than this."),
  })
  .refine((c) => c.above !== undefined || c.below !== undefined, { error: "above, below or both" })
  .describe("True when a topic's last value is a number in range; false when unknown or not a number.");

const timeCondition = z
  .strictObject({
    condition: z.literal("time"),
    after: timeOfDay.optional().describe("From this time of day (inclusive)."),
    before: timeOfDay.optional().describe("Until this time of day (exclusive); earlier than after means across midnight."),
    weekdays: z
      .array(z.enum(WEEKDAY_NAMES))
      .min(1)
      .optional()
      .describe("Days the window starts on (mon, tue, ...): a 22:00-06:00 window on fri includes Saturday 03:00."),
  })
  .refine((c) => c.after !== undefined || c.before !== undefined || c.weekdays !== undefined, { error: "after, before or weekdays" })
  .describe("True inside a daily time window in the rules' time zone.");

const sunCondition = z
  .strictObject({
    condition: z.literal("sun"),
    after: z.enum(SUN_EVENT_NAMES).optional().describe("From this sun event (e.g. sunset)."),
    after_offset: offset().prefault("0s").describe("Moves `after`: -30m is half an hour before the event."),
    before: z.enum(SUN_EVENT_NAMES).optional().describe("Until this sun event (e.g. sunrise)."),
    before_offset: offset().prefault("0s").describe("Moves `before`: 1h is an hour after the event."),
  })
  .refine((c) => c.after !== undefined || c.before !== undefined, { error: "after, before or both" })
  .describe(
    "True between sun events at the configured location: with both, since the last `after` event and no `before` event since (after: sunset, before: sunrise is the night); after alone: until midnight; before alone: from midnight.",
  );

const expressionCondition = z
  .strictObject({ condition: z.literal("expression"), expression: expression().describe("True when this is true (or non-zero, non-empty).") })
  .describe("True when the expression is.");

export type ConditionInput = z.input<typeof stateCondition | typeof numericCondition | typeof timeCondition | typeof sunCondition | typeof expressionCondition> | {
  condition: "and" | "or" | "not";
  conditions: ConditionInput[];
};
export type Condition =
  | z.output<typeof stateCondition>
  | z.output<typeof numericCondition>
  | z.output<typeof timeCondition>
  | z.output<typeof sunCondition>
  | z.output<typeof expressionCondition>
  | { condition: "and" | "or" | "not"; conditions: Condition[] };

function group(kind: "and" | "or" | "not", description: string) {
  return z
    .strictObject({
      condition: z.literal(kind),
      get conditions(): z.ZodArray<z.ZodType<Condition, ConditionInput>> {
        return z.array(conditionSchema, { error: "a list of conditions" });
      },
    })
    .describe(description);
}

export const conditionSchema: z.ZodType<Condition, ConditionInput> = z
  .discriminatedUnion("condition", [
    group("and", "True when all of its conditions are."),
    group("or", "True when any of its conditions is."),
    group("not", "True when none of its conditions is."),
    stateCondition,
    numericCondition,
    timeCondition,
    sunCondition,
    expressionCondition,
  ])
  .describe("A test, by kind: and, or, not, state, numeric, time, sun, expression.");

export const conditions = () => z.array(conditionSchema, { error: "a list of conditions" });

export type Trigger = z.output<typeof triggerSchema>;
