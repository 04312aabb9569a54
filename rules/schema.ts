// THE rule schema (zod, like the config's): rule files and the config's `rules:` list are checked
// against it, it gives the TypeScript types the engine runs on, and the JSON Schema editors use.
// This file: the actions and the rule itself; the shared value types, triggers and conditions are in
// rules/schema-triggers.ts (re-exported here, so importers name one module). Each kind of action is
// one member of a union told apart by `action:`, which lets the loader say which keys each one knows.
import { z } from "zod";
import { duration } from "./duration.js";
import { parseTemplate } from "./expressions.js";
import {
  type Condition,
  type ConditionInput,
  conditions,
  number,
  parses,
  qos,
  template,
  type Trigger,
  timeZone,
  triggerSchema,
} from "./schema-triggers.js";

export * from "./schema-triggers.js";

const NAME = /^[a-z0-9_-]+$/;
const ID_TEXT = "an id of lowercase letters, digits, _ and - (e.g. porch_light_at_dusk)";

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

export type Rule = z.output<typeof ruleSchema>;
export type RuleInput = z.input<typeof ruleSchema>;
