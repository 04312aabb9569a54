// The expression and template language: semantics, errors with columns, hostile input, limits, fuzzing.
import fc from "fast-check";
import t from "tap";
import { EVAL_LIMITS, evaluate, render, renderText, type Scope } from "../../rules/evaluate.js";
import { ExpressionError, LIMITS, parseExpression, parseTemplate, stateTopics, type Value } from "../../rules/expressions.js";
import { payloadValue } from "../../rules/values.js";

const states = new Map<string, Value>([
  ["hub/porch/lux", 7],
  ["hub/porch_light", "ON"],
  ["hub/json", { a: { b: [1, 2, 3] } }],
]);

function scope(vars: Record<string, Value> = {}): Scope {
  return {
    vars: new Map(Object.entries({ trigger: { value: 21.1, payload: { x: 5, list: [10, 20] }, topic: "hub/a/b" }, ...vars })),
    state: (topic) => states.get(topic) ?? null,
    since: (topic) => (states.has(topic) ? 42 : null),
    now: () => 1_700_000_000_000,
    local: () => ({ year: 2024, month: 1, day: 15, hour: 7, minute: 5, second: 9, weekday: 1 }),
  };
}
const ev = (src: string, vars?: Record<string, Value>) => evaluate(parseExpression(src), scope(vars));
const fails = (t: { throws(f: () => unknown, re: RegExp, msg: string): unknown }, src: string, re: RegExp, what = src) => t.throws(() => ev(src), re, what);

t.test("arithmetic, comparison and boolean operators", async (t) => {
  t.equal(ev("trigger.value * 1.8 + 32"), 21.1 * 1.8 + 32);
  t.equal(ev("1 + 2 * 3 - 4 / 2"), 5);
  t.equal(ev("(1 + 2) * 3"), 9);
  t.equal(ev("7 % 3"), 1);
  t.equal(ev("-2 * -3"), 6);
  t.equal(ev("state('hub/porch/lux') < 10"), true);
  t.equal(ev("state('hub/porch/lux') < 10 and state('hub/porch_light') == 'ON'"), true);
  t.equal(ev("state('hub/nothing') == null"), true);
  t.equal(ev("not 1 == 2"), true, "not binds looser than ==");
  t.equal(ev("!true || false"), false);
  t.equal(ev("1 > 2 ? 'a' : 'b'"), "b");
  t.equal(ev("true ? 1 : false ? 2 : 3"), 1);
  t.equal(ev("'a' + 1"), "a1");
  t.equal(ev("'abc' < 'abd'"), true);
  t.equal(ev("2 in [1, 2, 3]"), true);
  t.equal(ev("'ell' in 'hello'"), true);
  t.equal(ev("'x' in trigger.payload"), true);
  t.equal(ev("[1, [2]] == [1, [2]]"), true);
  t.equal(ev("1 == '1' and '2.50' == 2.5 and 1 != 'one' and 2 in ['1', '2']"), true, "numbers equal numeric strings");
  t.equal(ev("true == 'true'"), false);
  t.equal(ev("0 or 'fallback'"), "fallback");
  t.equal(ev("null and 1"), null);
});

t.test("plain data paths and functions", async (t) => {
  t.equal(ev("trigger.payload.x"), 5);
  t.equal(ev("trigger.payload.list[1]"), 20);
  t.equal(ev("trigger.payload['x']"), 5);
  t.equal(ev("trigger.payload.missing"), null);
  t.equal(ev("trigger.payload.list[7]"), null);
  t.equal(ev("state('hub/json').a.b[2]"), 3);
  t.equal(ev("round(21.456, 1)"), 21.5);
  t.equal(ev("round(2.5)"), 3);
  t.equal(ev("number('21.5') + 1"), 22.5);
  t.equal(ev("number('abc')"), null);
  t.equal(ev("int('7.9')"), 7);
  t.equal(ev("str(1.5) + '!'"), "1.5!");
  t.equal(ev("min(3, 1, 2) + max([4, 5])"), 6);
  t.equal(ev("abs(-2) + floor(1.7) + ceil(1.2)"), 5);
  t.equal(ev("len('abc') + len([1]) + len(trigger.payload)"), 6);
  t.equal(ev("upper('on') == 'ON' and lower('OFF') == 'off'"), true);
  t.equal(ev("contains([1, 2], 2) and contains('abc', 'b')"), true);
  t.equal(ev("default(state('nope'), 'unknown')"), "unknown");
  t.equal(ev("json(trigger.payload.list)"), "[10,20]");
  t.equal(ev("since('hub/porch/lux')"), 42);
  t.equal(ev("now()"), 1_700_000_000_000);
  t.equal(ev("hour() * 100 + minute()"), 705);
  t.equal(ev("weekday()"), "mon");
  t.equal(ev("time()"), "07:05:09");
  t.equal(ev("[year(), month(), day(), second()] == [2024, 1, 15, 9]"), true);
});

t.test("templates", async (t) => {
  const s = scope();
  t.equal(renderText(parseTemplate("{{ trigger.value * 1.8 + 32 }} °F"), s), "69.98 °F", "float noise is trimmed");
  t.equal(render(parseTemplate("{{ trigger.value * 2 }}"), s), 42.2, "a lone {{ }} keeps its type");
  t.equal(render(parseTemplate("  {{ 1 }}  "), s), "  1  ");
  t.equal(renderText(parseTemplate("plain"), s), "plain");
  t.equal(renderText(parseTemplate("{{ '}}' }} and {{ \"{{\" }}"), s), "}} and {{", "braces inside strings");
  t.equal(renderText(parseTemplate("{{ trigger.payload }}"), s), '{"x":5,"list":[10,20]}');
  t.equal(renderText(parseTemplate("[{{ null }}]"), s), "[]");
  t.throws(() => parseTemplate("a {{ 1 + }} b"), /ends too early|unexpected/);
  t.throws(() => parseTemplate("a {{ 1"), /without a closing/);
});

t.test("syntax errors say where", async (t) => {
  t.throws(() => parseExpression("1 +"), { message: "expression ends too early at column 4" });
  t.throws(() => parseExpression("a < b < c"), /cannot be chained/);
  t.throws(() => parseExpression("trigger.value("), /only functions/);
  t.throws(() => parseExpression("'abc"), /unterminated string at column 1/);
  t.throws(() => parseExpression("1 @ 2"), /unexpected character "@" at column 3/);
  t.throws(() => parseExpression("a.1"), /expected a field name/);
  t.throws(() => parseExpression("'\\x'"), /unknown escape/);
  t.throws(() => parseExpression(""), /ends too early/);
});

t.test("runtime errors are ExpressionErrors, not crashes", async (t) => {
  fails(t, "foo + 1", /unknown name foo/);
  fails(t, "state", /unknown name state \(call it/);
  fails(t, "eval('1')", /unknown function eval/);
  fails(t, "state()", /takes 1 argument/);
  fails(t, "1 / 0", /division by zero/);
  fails(t, "'a' - 1", /needs a number/);
  fails(t, "'a' < 1", /two numbers or two strings/);
  fails(t, "1e308 * 10", /finite/);
  fails(t, "round(1, 11)", /0..10 digits/);
});

t.test("hostile input cannot reach JavaScript objects", async (t) => {
  for (const src of [
    "trigger.constructor",
    "trigger['constructor']",
    "trigger.__proto__",
    "trigger['__proto__']",
    "trigger.payload.constructor.constructor",
    "trigger.payload.list.constructor",
    "trigger.toString",
    "trigger.payload.hasOwnProperty",
    "'abc'.length",
    "'abc'.constructor",
    "trigger.payload.list.length",
    "trigger.prototype",
  ]) {
    t.equal(ev(src), null, `${src} is just a missing field`);
  }
  for (const src of ["constructor", "this", "globalThis", "process", "require", "Function", "__proto__", "prototype"]) {
    fails(t, src, /unknown name/);
  }
  t.throws(() => parseExpression("trigger.constructor('return process')()"), /only functions/);
  t.equal(ev("(1).constructor"), null, "a number has no fields");
  t.throws(() => parseExpression("`$" + "{process}`"), /unexpected character/);
  t.throws(() => parseExpression("trigger.value = 1"), /unexpected character "="/);
  t.throws(() => parseExpression("a; b"), /unexpected character/);
  // A JSON payload may carry a key named __proto__: it is data, and reading it changes nothing.
  const hostile = payloadValue('{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}}');
  t.same(ev("trigger.payload.__proto__", { trigger: { payload: hostile } }), { polluted: true });
  t.equal(ev("trigger.payload.constructor.prototype", { trigger: { payload: hostile } }), 1);
  t.equal(ev("trigger.payload.__proto__.polluted and trigger.payload.polluted == null", { trigger: { payload: hostile } }), true);
  t.equal(({} as Record<string, unknown>).polluted, undefined, "Object.prototype untouched");
});

t.test("limits bound work and memory", async (t) => {
  t.throws(() => parseExpression("(".repeat(5000)), /too long/);
  t.throws(() => parseExpression(`${"(".repeat(100)}1${")".repeat(100)}`), /nested too deeply/);
  t.throws(() => parseExpression("-".repeat(100) + "1"), /nested too deeply/);
  t.throws(() => parseExpression("not ".repeat(100) + "1"), /nested too deeply/);
  t.throws(() => parseExpression(Array(1200).fill("1").join("+")), /too large/);
  t.ok(parseExpression(Array(400).fill("1").join("+")), "long flat sums are fine");
  // Doubling a string 20 times would need 1 MB: refused at the text limit, not built.
  const big = "x".repeat(40_000);
  t.throws(() => ev("s + s", { s: big }), /longer than 65536/);
  t.throws(() => ev("str(s) + str(s) + str(s)", { s: "y".repeat(30_000) }), /longer than 65536/);
  const list = Array.from({ length: 20_000 }, (_, i) => i);
  t.throws(() => ev("max(l)", { l: list }), /more than 10000 steps/);
  t.throws(() => ev("5 in l", { l: list }), /more than 10000 steps/);
  t.throws(() => ev("l == m", { l: list, m: [...list] }), /more than 10000 steps/);
  t.throws(() => renderText(parseTemplate(`{{ s }}${"{{ s }}".repeat(3)}`), scope({ s: "z".repeat(20_000) })), /longer than/);
  t.equal(EVAL_LIMITS.steps, 10_000);
  t.equal(LIMITS.depth, 40);
});

t.test("fuzz: any input parses or fails with an ExpressionError, and evaluation never escapes", async (t) => {
  const alphabet = fc.constantFrom(..."()[]{}.,'\"+-*/%<>=!?:&| \\abcdefghijklmnopqrstuvwxyz_0123456789".split(""), "constructor", "__proto__", "state", "trigger", "{{", "}}");
  fc.assert(
    fc.property(fc.array(alphabet, { maxLength: 60 }).map((a) => a.join("")), (src) => {
      for (const parse of [parseExpression, parseTemplate]) {
        let parsed: ReturnType<typeof parseExpression> | ReturnType<typeof parseTemplate> | undefined;
        try {
          parsed = parse(src);
        } catch (err) {
          if (!(err instanceof ExpressionError)) throw err;
        }
        if (parsed === undefined) continue;
        try {
          const v = "root" in parsed ? evaluate(parsed, scope()) : render(parsed, scope());
          if (typeof v === "function") throw new Error("a function escaped");
        } catch (err) {
          if (!(err instanceof ExpressionError)) throw err;
        }
      }
    }),
    { numRuns: 3000 },
  );
  t.pass("3000 random sources");
});

t.test("stateTopics finds the topics an expression reads", async (t) => {
  const e = parseExpression("state('hub/a') > 1 and since(\"hub/b\") < 60");
  t.same([...stateTopics([e.root]).topics], ["hub/a", "hub/b"]);
  t.equal(stateTopics([e.root]).dynamic, false);
  t.equal(stateTopics([parseExpression("state(trigger.topic)").root]).dynamic, true);
});
