// THE rule schema (zod, like the config's): rule files and the config's `rules:` list are checked
// against it, it gives the TypeScript types the engine runs on, and the JSON Schema editors use.
// Expressions, templates, cron schedules and time zones are parsed here too, so a typo in any of them
// is reported at its file:line:col when the config is loaded, not when the rule first runs. Each
// kind of trigger, condition and action is one member of a union told apart by `trigger:`,
// `condition:` or `action:`, which lets the loader say which keys each one knows.
import { z } from "zod";
import { cronProblem } from "./cron.js";
import { duration, offset } from "./duration.js";
import { ExpressionError, parseExpression, parseTemplate } from "./expressions.js";
import { SUN_EVENT_NAMES } from "./sun.js";
import { parseTimeOfDay, validTimeZone, WEEKDAY_NAMES } from "./time.js";
import { parsePath, validTopicFilter, validTopicName } from "./values.js";

const NAME = /^[a-z0-9_-]+$/;
const ID_TEXT = "an id of lowercase letters, digits, _ and - (e.g. porch_light_at_dusk)";

function parses(what: string, parse: (s: string) => unknown) {
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
const timeZone = z
  .string({ error: "an IANA time zone such as Europe/Berlin" })
  .refine(validTimeZone, { error: "an IANA time zone such as Europe/Berlin or UTC" });
const timeOfDay = z
  .string({ error: "a time of day such as 22:00 or 06:30:15" })
  .refine((s) => parseTimeOfDay(s) !== undefined, { error: "a time of day such as 22:00 or 06:30:15 (24-hour, quoted)" })
  .transform((s) => parseTimeOfDay(s) as number);
const number = z.number({ error: "a number" });
const qos = z.union([z.literal(0), z.literal(1), z.literal(2)], { error: "a QoS: 0, 1 or 2" });

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

const conditions = () => z.array(conditionSchema, { error: "a list of conditions" });

// ---- actions ------------------------------------------------------------------------------------

/** A payload: text (a template), a number, true/false, or a mapping/list sent as JSON (its strings are templates). */
const payload = z
  .json({ error: "a payload: text, a number, true/false, or a mapping or list (sent as JSON)" })
  .superRefine((v, ctx) => {
    const walk = (x: unknown): void => {
      if (typeof x === "string") parses("a payload with valid {{ }} parts", parseTemplate)(x, ctx as z.core.$RefinementCtx<string>);
      else if (Array.isArray(x)) x.forEach(walk);
      else if (typeof x === "object" && x !== null) Object.values(x).forEach(walk);
    };
    walk(v);
  });
const device = z
  .string({ error: "a device name" })
  .regex(NAME, { error: "a device name of lowercase letters, digits, _ and - (e.g. porch_light)" })
  .describe("Device name: the command goes to <base_topic>/<device>/set.");

const publishAction = z
  .strictObject({
    action: z.literal("publish"),
    topic: template("an MQTT topic").describe("Topic to publish to; may hold {{ }}."),
    payload: payload.default("").describe("Payload; text may hold {{ }}; a mapping or list is sent as JSON."),
    qos: qos.default(0).describe("QoS 0, 1 or 2."),
    retain: z.boolean({ error: "true or false" }).default(false).describe("Ask the broker to retain the message."),
  })
  .describe("Publishes a message.");

const setAction = z
  .strictObject({ action: z.literal("set"), device, payload: payload.describe("Command, e.g. ON, OFF or a JSON mapping.") })
  .describe("Sends a command to a device's /set topic (QoS 1).");

const toggleAction = z.strictObject({ action: z.literal("toggle"), device }).describe("Sends TOGGLE to a device's /set topic (QoS 1).");

const delayAction = z
  .strictObject({ action: z.literal("delay"), duration: duration().describe("How long to wait.") })
  .describe("Waits, then goes on with the next action.");

const logAction = z
  .strictObject({
    action: z.literal("log"),
    message: template("a log message").describe("Text; may hold {{ }}."),
    level: z.enum(["debug", "info", "warn", "error"]).default("info").describe("Log level."),
  })
  .describe("Writes a line to the hub's log.");

const stopAction = z
  .strictObject({
    action: z.literal("stop"),
    reason: z.string({ error: "a string" }).optional().describe("Why, for the log and trace."),
    error: z.boolean({ error: "true or false" }).default(false).describe("Count this run as failed."),
  })
  .describe("Ends this run.");

export type ActionInput =
  | z.input<typeof publishAction | typeof setAction | typeof toggleAction | typeof delayAction | typeof logAction | typeof stopAction>
  | { action: "wait"; triggers: z.input<typeof triggerSchema>[]; timeout?: string; continue_on_timeout?: boolean }
  | { action: "choose"; choices: { conditions?: ConditionInput[]; actions: ActionInput[] }[]; default?: ActionInput[] }
  | { action: "if"; if: ConditionInput[]; then: ActionInput[]; else?: ActionInput[] }
  | { action: "repeat"; count?: number; while?: ConditionInput[]; until?: ConditionInput[]; max?: number; actions: ActionInput[] };
export type Action =
  | z.output<typeof publishAction | typeof setAction | typeof toggleAction | typeof delayAction | typeof logAction | typeof stopAction>
  | { action: "wait"; triggers: Trigger[]; timeout?: number; continue_on_timeout: boolean }
  | { action: "choose"; choices: { conditions: Condition[]; actions: Action[] }[]; default?: Action[] }
  | { action: "if"; if: Condition[]; then: Action[]; else?: Action[] }
  | { action: "repeat"; count?: number; while?: Condition[]; until?: Condition[]; max: number; actions: Action[] };

const actions = (): z.ZodArray<z.ZodType<Action, ActionInput>> =>
  z.array(actionSchema, { error: "a list of actions" }).min(1, { error: "at least one action" });

const waitAction = z
  .strictObject({
    action: z.literal("wait"),
    triggers: z.array(triggerSchema, { error: "a list of triggers" }).min(1, { error: "at least one trigger" }).describe("Wait until one of these fires."),
    timeout: duration().optional().describe("Give up after this long."),
    continue_on_timeout: z.boolean({ error: "true or false" }).default(true).describe("After a timeout: go on (true) or end the run (false)."),
  })
  .describe("Waits for a trigger; wait.trigger and wait.timed_out tell what happened.");

const chooseAction = z
  .strictObject({
    action: z.literal("choose"),
    choices: z
      .array(
        z.strictObject({
          conditions: conditions().default([]).describe("All must be true for this choice."),
          get actions() {
            return actions();
          },
        }),
        { error: "a list of choices" },
      )
      .min(1, { error: "at least one choice" })
      .describe("The first choice whose conditions are true runs."),
    get default() {
      return actions().optional().describe("Runs when no choice does.");
    },
  })
  .describe("Runs the first choice whose conditions hold.");

const ifAction = z
  .strictObject({
    action: z.literal("if"),
    if: conditions().min(1, { error: "at least one condition" }).describe("Conditions that must all be true."),
    // biome-ignore lint/suspicious/noThenProperty: `if`/`then`/`else` is the YAML users write; this zod shape is never awaited
    get then() {
      return actions();
    },
    get else() {
      return actions().optional();
    },
  })
  .describe("Runs `then` when all conditions hold, else `else`.");

const repeatAction = z
  .strictObject({
    action: z.literal("repeat"),
    count: z.int({ error: "an integer 1..10000" }).min(1, { error: "an integer 1..10000" }).max(10_000, { error: "an integer 1..10000" }).optional(),
    while: conditions().optional().describe("Repeat while these all hold (checked before each round)."),
    until: conditions().optional().describe("Repeat until these all hold (checked after each round)."),
    max: z
      .int({ error: "an integer 1..10000" })
      .min(1, { error: "an integer 1..10000" })
      .max(10_000, { error: "an integer 1..10000" })
      .default(1000)
      .describe("Most rounds of a while/until loop; the run fails beyond it."),
    get actions() {
      return actions();
    },
  })
  .refine((a) => [a.count, a.while, a.until].filter((x) => x !== undefined).length === 1, { error: "exactly one of count, while and until" })
  .describe("Repeats actions; repeat.index (from 1) counts the rounds.");

export const actionSchema: z.ZodType<Action, ActionInput> = z
  .discriminatedUnion("action", [publishAction, setAction, toggleAction, delayAction, waitAction, chooseAction, ifAction, repeatAction, logAction, stopAction])
  .describe("A step, by kind: publish, set, toggle, delay, wait, choose, if, repeat, log, stop.");

// ---- rules --------------------------------------------------------------------------------------

export const ruleSchema = z
  .strictObject({
    id: z.string({ error: ID_TEXT }).regex(NAME, { error: ID_TEXT }).describe("Unique id; status is published under <base_topic>/rules/<id>/."),
    description: z.string({ error: "a string" }).optional().describe("What the rule is for."),
    enabled: z.boolean({ error: "true or false" }).default(true).describe("false: the rule is loaded and checked but never runs."),
    mode: z
      .enum(["single", "restart", "queued", "parallel"])
      .default("single")
      .describe("When it fires while running: single ignores the new trigger, restart stops the run and starts again, queued runs it after, parallel runs both."),
    max: z
      .int({ error: "an integer 1..1000" })
      .min(1, { error: "an integer 1..1000" })
      .max(1000, { error: "an integer 1..1000" })
      .default(10)
      .describe("queued: most runs waiting; parallel: most runs at once. Triggers beyond it are dropped (and logged)."),
    on_restart: z
      .enum(["resume", "drop"])
      .default("resume")
      .describe(
        "Pending `for` timers and runs waiting in a delay or wait when the hub stops: resume them after a restart (one due meanwhile fires once, at start) or drop them.",
      ),
    triggers: z.array(triggerSchema, { error: "a list of triggers" }).min(1, { error: "at least one trigger" }).describe("Any of these starts the rule."),
    conditions: conditions().default([]).describe("All must be true when a trigger fires, or the rule does not run."),
    actions: actions().describe("What the rule does, in order."),
  })
  .describe("An automation: when a trigger fires and the conditions hold, run the actions.");

/** A list of rules with unique ids. */
export const rulesSchema = z.array(ruleSchema, { error: "a list of rules" }).superRefine((rules, ctx) => {
  const seen = new Map<string, number>();
  rules.forEach((r, i) => {
    const first = seen.get(r.id);
    if (first === undefined) seen.set(r.id, i);
    else ctx.addIssue({ code: "custom", message: `an id not used by another rule (also rules[${first}])`, path: [i, "id"], input: r.id });
  });
});

/** Where the house is: for sun triggers, and the time zone of cron triggers and time conditions. */
export const locationSchema = z
  .strictObject({
    latitude: number.min(-90, { error: "a latitude -90..90" }).max(90, { error: "a latitude -90..90" }).describe("Degrees north (negative: south)."),
    longitude: number
      .min(-180, { error: "a longitude -180..180" })
      .max(180, { error: "a longitude -180..180" })
      .describe("Degrees east (negative: west)."),
    time_zone: timeZone.optional().describe("IANA time zone, e.g. Europe/Berlin; default: the system's."),
  })
  .describe("Where the hub is: used by sun triggers, and its time zone by cron triggers and time conditions.");

export type Trigger = z.output<typeof triggerSchema>;
export type Rule = z.output<typeof ruleSchema>;
export type RuleInput = z.input<typeof ruleSchema>;
