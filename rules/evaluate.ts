// Evaluates the trees of rules/expressions.ts over plain JSON values. The only things an expression
// can reach are the variables in its Scope (trigger, wait, repeat, rule) and the functions in
// FUNCTIONS; a field is read only if it is the value's OWN data (so `constructor`, `__proto__` and
// `prototype` are just missing fields, null). Every evaluation has a step budget and every string it
// builds a size limit, so a rule cannot hang the hub or fill its memory.
import { ExpressionError, type Expression, type Node, type Template, type Value } from "./expressions.js";

export const EVAL_LIMITS = {
  /** Nodes visited plus elements touched by functions and comparisons, per evaluation. */
  steps: 10_000,
  /** Characters of any string an evaluation builds (concatenation, str, json, a rendered template). */
  text: 65_536,
} as const;

/** Wall-clock fields in the rules' time zone. weekday: 0 = Sunday. */
export interface LocalTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
  weekday: number;
}

export interface Scope {
  /** Named values: trigger, wait, repeat, rule. A name not here is an error. */
  vars: ReadonlyMap<string, Value>;
  /** Last known value of a topic (retained ones included), null if none seen. */
  state(topic: string): Value;
  /** Seconds since a message on the topic last arrived, null if none seen. */
  since(topic: string): number | null;
  now(): number;
  local(): LocalTime;
}

interface Run {
  scope: Scope;
  steps: number;
}

const WEEKDAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"] as const;

function step(r: Run, n = 1): void {
  r.steps += n;
  if (r.steps > EVAL_LIMITS.steps) throw new ExpressionError(`expression took more than ${EVAL_LIMITS.steps} steps`);
}

function text(s: string): string {
  if (s.length > EVAL_LIMITS.text) throw new ExpressionError(`text longer than ${EVAL_LIMITS.text} characters`);
  return s;
}

const isObject = (v: Value): v is { readonly [k: string]: Value } => typeof v === "object" && v !== null && !Array.isArray(v);

function typeName(v: Value): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "an object";
  return `a ${typeof v}`;
}

/** Numbers print with at most 12 significant digits, so 21.1 * 1.8 + 32 prints 69.98, not 69.98000000000002. */
export function formatNumber(n: number): string {
  return Number.isInteger(n) ? String(n) : String(Number(n.toPrecision(12)));
}

/** How a value appears in a payload or log line: strings as they are, null as "", the rest as JSON. */
export function toText(v: Value): string {
  if (typeof v === "string") return v;
  if (typeof v === "number") return formatNumber(v);
  if (v === null) return "";
  if (typeof v === "boolean") return String(v);
  return text(JSON.stringify(v));
}

/** false, null, 0, "" and empty lists are false; everything else is true. */
export function truthy(v: Value): boolean {
  if (Array.isArray(v)) return v.length > 0;
  return v !== false && v !== null && v !== 0 && v !== "";
}

function finite(n: number, at: number): number {
  if (!Number.isFinite(n)) throw new ExpressionError("result is not a finite number", at);
  return n;
}

function num(v: Value, what: string, at: number): number {
  if (typeof v !== "number") throw new ExpressionError(`${what} needs a number, found ${typeName(v)}`, at);
  return v;
}

const NUMERIC = /^\s*[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?\s*$/;

/** A number from a number, numeric string or boolean; null otherwise. */
export function toNumber(v: Value): number | null {
  if (typeof v === "number") return v;
  if (typeof v === "boolean") return v ? 1 : 0;
  if (typeof v === "string" && NUMERIC.test(v)) return Number(v);
  return null;
}

/** Equality of data. A number equals a numeric string with that value: payloads "1" and 1 look alike to users. */
function equal(r: Run, a: Value, b: Value): boolean {
  step(r);
  if (a === b) return true;
  if (typeof a === "number" && typeof b === "string") return toNumber(b) === a;
  if (typeof a === "string" && typeof b === "number") return toNumber(a) === b;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => equal(r, x, b[i]!));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal(r, a[k]!, b[k]!));
  }
  return false;
}

function compare(op: string, a: Value, b: Value, at: number): boolean {
  if (!((typeof a === "number" && typeof b === "number") || (typeof a === "string" && typeof b === "string"))) {
    throw new ExpressionError(`${op} compares two numbers or two strings, found ${typeName(a)} and ${typeName(b)}`, at);
  }
  return op === "<" ? a < b : op === "<=" ? a <= b : op === ">" ? a > b : a >= b;
}

function member(obj: Value, key: Value): Value {
  if (Array.isArray(obj)) {
    return typeof key === "number" && Number.isInteger(key) && key >= 0 && key < obj.length ? obj[key]! : null;
  }
  if (isObject(obj) && typeof key === "string" && Object.hasOwn(obj, key)) {
    // An own data property of JSON data: reading it cannot run code or reach a prototype.
    return (obj as Record<string, Value>)[key] ?? null;
  }
  return null;
}

type Fn = { min: number; max: number; call(r: Run, args: Value[], at: number): Value };

const str = (v: Value, what: string, at: number): string => {
  if (typeof v !== "string") throw new ExpressionError(`${what} needs a string, found ${typeName(v)}`, at);
  return v;
};

function numbers(r: Run, args: Value[], what: string, at: number): number[] {
  const list = args.length === 1 && Array.isArray(args[0]) ? (args[0] as Value[]) : args;
  step(r, list.length);
  if (list.length === 0) throw new ExpressionError(`${what} needs at least one number`, at);
  return list.map((v) => num(v, what, at));
}

/** Every function an expression can call. Nothing else is callable. */
const FUNCTIONS: ReadonlyMap<string, Fn> = new Map<string, Fn>([
  ["state", { min: 1, max: 1, call: (r, [t], at) => r.scope.state(str(t!, "state()", at)) }],
  ["since", { min: 1, max: 1, call: (r, [t], at) => r.scope.since(str(t!, "since()", at)) }],
  ["number", { min: 1, max: 1, call: (_r, [v]) => toNumber(v!) }],
  ["int", { min: 1, max: 1, call: (_r, [v]) => (toNumber(v!) === null ? null : Math.trunc(toNumber(v!)!)) }],
  ["str", { min: 1, max: 1, call: (_r, [v]) => toText(v!) }],
  ["json", { min: 1, max: 1, call: (_r, [v]) => text(JSON.stringify(v)) }],
  [
    "round",
    {
      min: 1,
      max: 2,
      call: (_r, [v, d], at) => {
        const digits = d === undefined ? 0 : num(d, "round()", at);
        if (!Number.isInteger(digits) || digits < 0 || digits > 10) throw new ExpressionError("round() takes 0..10 digits", at);
        const f = 10 ** digits;
        return Math.round(num(v!, "round()", at) * f) / f;
      },
    },
  ],
  ["abs", { min: 1, max: 1, call: (_r, [v], at) => Math.abs(num(v!, "abs()", at)) }],
  ["floor", { min: 1, max: 1, call: (_r, [v], at) => Math.floor(num(v!, "floor()", at)) }],
  ["ceil", { min: 1, max: 1, call: (_r, [v], at) => Math.ceil(num(v!, "ceil()", at)) }],
  ["min", { min: 1, max: 100, call: (r, a, at) => Math.min(...numbers(r, a, "min()", at)) }],
  ["max", { min: 1, max: 100, call: (r, a, at) => Math.max(...numbers(r, a, "max()", at)) }],
  [
    "len",
    {
      min: 1,
      max: 1,
      call: (_r, [v], at) => {
        if (typeof v === "string" || Array.isArray(v)) return v.length;
        if (isObject(v!)) return Object.keys(v).length;
        throw new ExpressionError(`len() needs a string, list or object, found ${typeName(v!)}`, at);
      },
    },
  ],
  ["lower", { min: 1, max: 1, call: (_r, [v], at) => str(v!, "lower()", at).toLowerCase() }],
  ["upper", { min: 1, max: 1, call: (_r, [v], at) => str(v!, "upper()", at).toUpperCase() }],
  ["contains", { min: 2, max: 2, call: (r, [a, b], at) => contains(r, a!, b!, at) }],
  ["default", { min: 2, max: 2, call: (_r, [v, d]) => (v === null ? d! : v!) }],
  ["now", { min: 0, max: 0, call: (r) => r.scope.now() }],
  ["year", { min: 0, max: 0, call: (r) => r.scope.local().year }],
  ["month", { min: 0, max: 0, call: (r) => r.scope.local().month }],
  ["day", { min: 0, max: 0, call: (r) => r.scope.local().day }],
  ["hour", { min: 0, max: 0, call: (r) => r.scope.local().hour }],
  ["minute", { min: 0, max: 0, call: (r) => r.scope.local().minute }],
  ["second", { min: 0, max: 0, call: (r) => r.scope.local().second }],
  ["weekday", { min: 0, max: 0, call: (r) => WEEKDAYS[r.scope.local().weekday]! }],
  [
    "time",
    {
      min: 0,
      max: 0,
      call: (r) => {
        const l = r.scope.local();
        const p = (n: number) => String(n).padStart(2, "0");
        return `${p(l.hour)}:${p(l.minute)}:${p(l.second)}`;
      },
    },
  ],
]);

export const FUNCTION_NAMES: readonly string[] = [...FUNCTIONS.keys()];

function contains(r: Run, hay: Value, needle: Value, at: number): boolean {
  if (typeof hay === "string") return hay.includes(str(needle, "contains() in a string", at));
  if (Array.isArray(hay)) {
    step(r, hay.length);
    return hay.some((x) => equal(r, x, needle));
  }
  if (isObject(hay)) return typeof needle === "string" && Object.hasOwn(hay, needle);
  throw new ExpressionError(`contains() / in needs a string, list or object, found ${typeName(hay)}`, at);
}

function ev(r: Run, n: Node): Value {
  step(r);
  switch (n.k) {
    case "lit":
      return n.v;
    case "name": {
      const v = r.scope.vars.get(n.name);
      if (v === undefined) {
        const hint = FUNCTIONS.has(n.name) ? ` (call it: ${n.name}(...))` : ` (known: ${[...r.scope.vars.keys()].join(", ")})`;
        throw new ExpressionError(`unknown name ${n.name}${hint}`, n.at);
      }
      return v;
    }
    case "list":
      return n.items.map((i) => ev(r, i));
    case "member":
      return member(ev(r, n.obj), ev(r, n.key));
    case "call": {
      const f = FUNCTIONS.get(n.fn);
      if (f === undefined) throw new ExpressionError(`unknown function ${n.fn}() (known: ${FUNCTION_NAMES.join(", ")})`, n.at);
      if (n.args.length < f.min || n.args.length > f.max) {
        const want = f.min === f.max ? `${f.min}` : `${f.min}..${f.max}`;
        throw new ExpressionError(`${n.fn}() takes ${want} argument${f.max === 1 ? "" : "s"}, found ${n.args.length}`, n.at);
      }
      return f.call(
        r,
        n.args.map((a) => ev(r, a)),
        n.at,
      );
    }
    case "unary": {
      const v = ev(r, n.arg);
      if (n.op === "not") return !truthy(v);
      const x = num(v, `unary ${n.op}`, n.at);
      return n.op === "-" ? -x : x;
    }
    case "logic": {
      const l = ev(r, n.left);
      if (n.op === "and") return truthy(l) ? ev(r, n.right) : l;
      return truthy(l) ? l : ev(r, n.right);
    }
    case "cond":
      return truthy(ev(r, n.test)) ? ev(r, n.then) : ev(r, n.else);
    case "binary": {
      const a = ev(r, n.left);
      const b = ev(r, n.right);
      switch (n.op) {
        case "+":
          if (typeof a === "number" && typeof b === "number") return finite(a + b, n.at);
          if (typeof a === "string" || typeof b === "string") {
            const ta = toText(a);
            const tb = toText(b);
            // Checked before joining, so a huge payload repeated many times is never built.
            if (ta.length + tb.length > EVAL_LIMITS.text) throw new ExpressionError(`text longer than ${EVAL_LIMITS.text} characters`, n.at);
            return ta + tb;
          }
          throw new ExpressionError(`+ adds numbers or joins strings, found ${typeName(a)} and ${typeName(b)}`, n.at);
        case "-":
          return finite(num(a, "-", n.at) - num(b, "-", n.at), n.at);
        case "*":
          return finite(num(a, "*", n.at) * num(b, "*", n.at), n.at);
        case "/":
        case "%": {
          const d = num(b, n.op, n.at);
          if (d === 0) throw new ExpressionError("division by zero", n.at);
          const x = num(a, n.op, n.at);
          return finite(n.op === "/" ? x / d : x % d, n.at);
        }
        case "==":
          return equal(r, a, b);
        case "!=":
          return !equal(r, a, b);
        case "in":
          return contains(r, b, a, n.at);
        default:
          return compare(n.op, a, b, n.at);
      }
    }
  }
}

/** The value of an expression; throws ExpressionError on a runtime error or a limit. */
export function evaluate(e: Expression | Node, scope: Scope): Value {
  return ev({ scope, steps: 0 }, "root" in e ? e.root : e);
}

/**
 * A rendered template: a template that is exactly one `{{ expression }}` keeps the expression's type
 * (so `payload: "{{ trigger.value * 2 }}"` can be a number); otherwise the parts joined as text.
 */
export function render(t: Template, scope: Scope): Value {
  const r: Run = { scope, steps: 0 };
  if (t.single !== undefined) return ev(r, t.single);
  let out = "";
  for (const p of t.parts) out = text(out + (typeof p === "string" ? p : toText(ev(r, p))));
  return out;
}

export function renderText(t: Template, scope: Scope): string {
  return toText(render(t, scope));
}
