// Topic name / filter validity (D1, D2, D6, E2, E4) and the reference matcher (MQTT 5 §4.7).
import fc from "fast-check";
import t from "tap";
import { matches, parseShared, validTopicFilter, validTopicName } from "../../hub/broker/topics.js";

const limits = { maxLength: 1024, maxLevels: 32 };
const levels = (n: number, level = "a") => Array.from({ length: n }, () => level).join("/");

t.test("validTopicName", async (t) => {
  const cases: [string, boolean, string][] = [
    ["a", true, "single level"],
    ["a/b/c", true, "three levels"],
    ["/", true, "two empty levels"],
    ["a//b", true, "empty middle level"],
    ["$SYS/broker", true, "$ topics are valid names"],
    ["\uFEFFa", true, "BOM kept (B3)"],
    ["__proto__", true, "prototype name"],
    ["", false, "empty (D2, MQTT-4.7.3-1)"],
    ["a/+", false, "+ (D1)"],
    ["a/#", false, "# (D1)"],
    ["a+b", false, "+ inside a level"],
    ["#", false, "bare #"],
    ["a\u0000b", false, "U+0000 (MQTT-4.7.3-2)"],
    [levels(32), true, "32 levels (cap)"],
    [levels(33), false, "33 levels (cap+1, D6)"],
    [levels(10_000), false, "10,000 levels (D6)"],
    ["x".repeat(1024), true, "byte length at cap"],
    ["x".repeat(1025), false, "byte length over cap"],
    ["é".repeat(513), false, "byte length over cap in UTF-8 though 513 chars"],
    ["é".repeat(512), true, "1024 UTF-8 bytes"],
  ];
  for (const [topic, ok, why] of cases) t.equal(validTopicName(topic, limits), ok, `${why}: ${JSON.stringify(topic.slice(0, 20))}`);
  t.notOk(validTopicName("a/".repeat(5_000_000), { maxLength: 65_535, maxLevels: 32 }), "10 MB topic rejected");
});

t.test("validTopicFilter", async (t) => {
  const cases: [string, boolean, string][] = [
    ["a", true, "literal"],
    ["#", true, "bare #"],
    ["+", true, "bare +"],
    ["a/#", true, "trailing #"],
    ["+/+/#", true, "mixed"],
    ["a/+/b", true, "+ in the middle"],
    ["/+", true, "+ after empty level"],
    ["+/", true, "+ before empty level"],
    ["//", true, "empty levels"],
    ["$share/g/a", true, "shared is syntactically a filter"],
    ["a/#/b", false, "# not last (E2)"],
    ["a#", false, "a# (E2)"],
    ["a+", false, "a+ (E2)"],
    ["+a", false, "+a (E2)"],
    ["a/b#", false, "# inside a level"],
    ["##", false, "##"],
    ["++", false, "++"],
    ["#/", false, "# followed by an empty level"],
    ["", false, "empty"],
    ["a/\u0000", false, "U+0000"],
    [levels(32, "+"), true, "32 levels"],
    [levels(33, "+"), false, "33 levels (D6)"],
    [levels(10_000), false, "10,000 levels (D6)"],
    ["x".repeat(1025), false, "too long"],
  ];
  for (const [filter, ok, why] of cases) t.equal(validTopicFilter(filter, limits), ok, `${why}: ${JSON.stringify(filter.slice(0, 20))}`);
});

t.test("parseShared (E4)", async (t) => {
  t.same(parseShared("$share/g/a/+"), { group: "g", filter: "a/+" });
  t.same(parseShared("$share/g/#"), { group: "g", filter: "#" });
  t.same(parseShared("$share/__proto__/constructor"), { group: "__proto__", filter: "constructor" });
  t.same(parseShared("$share/g/$SYS/#"), { group: "g", filter: "$SYS/#" });
  t.same(parseShared("$share/g//"), { group: "g", filter: "/" }, "empty levels are a valid filter");
  for (const f of ["a/b", "#", "$share", "$SHARE/g/a", "$sharex/g/a", "$SYS/#"]) t.equal(parseShared(f), null, `not shared: ${f}`);
  for (const f of ["$share/", "$share/ab", "$share//x", "$share/a+b/x", "$share/a#/x", "$share/+/x", "$share/#/x", "$share/g/", "$share/g/a/#/b", "$share/g/a+", "$share/g\u0000/x"]) {
    t.equal(parseShared(f), "invalid", `invalid: ${JSON.stringify(f)}`);
  }
  t.equal(parseShared(`$share/g/${levels(40)}`, limits), "invalid", "inner filter checked against the level cap");
  t.same(parseShared(`$share/g/${levels(40)}`), { group: "g", filter: levels(40) }, "default limits are the protocol maxima");
});

t.test("matches: table", async (t) => {
  const cases: [string, string, boolean][] = [
    ["a/b", "a/b", true],
    ["a/b", "a/c", false],
    ["a/b", "a/b/c", false],
    ["a/b/c", "a/b", false],
    ["a/+", "a/b", true],
    ["a/+", "a", false],
    ["a/+", "a/", true],
    ["a/+", "a/b/c", false],
    ["+/+", "/", true],
    ["+", "/", false],
    ["/+", "/x", true],
    ["a/#", "a", true],
    ["a/#", "a/b/c", true],
    ["a/#", "ab", false],
    ["#", "a/b", true],
    ["#", "/", true],
    ["+/#", "a", true],
    ["+/#", "/", true],
    ["a/+/#", "a", false],
    ["a/+/#", "a/b", true],
    ["a//b", "a//b", true],
    ["a//b", "a/b", false],
    ["ab", "a", false],
    ["a", "ab", false],
    // MQTT-4.7.2-1: $ topics are not matched by a leading wildcard (D8, D9).
    ["#", "$SYS/x", false],
    ["+/x", "$SYS/x", false],
    ["+", "$foo", false],
    ["$SYS/#", "$SYS/x", true],
    ["$SYS/+", "$SYS/x", true],
    ["$foo/bar", "$foo/bar", true],
    ["a/#", "a/$x", true],
    ["a/+", "a/$x", true],
    ["__proto__/+", "__proto__/constructor", true],
    ["\uFEFFa", "a", false],
  ];
  for (const [f, topic, want] of cases) t.equal(matches(f, topic), want, `${f} vs ${topic}`);
});

/** A naive split-based matcher, independent of the index walk in `matches`. */
function naive(filter: string, topic: string): boolean {
  if (topic.startsWith("$") && (filter.startsWith("+") || filter.startsWith("#"))) return false;
  const f = filter.split("/");
  const tp = topic.split("/");
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= tp.length) return false;
    if (f[i] !== "+" && f[i] !== tp[i]) return false;
  }
  return f.length === tp.length;
}

const topicLevel = fc.constantFrom("a", "b", "$s", "");
// Topics and filters must be non-empty (MQTT-4.7.3-1): `[""]` would join to "".
const arbTopic = fc
  .array(topicLevel, { minLength: 1, maxLength: 5 })
  .map((l) => l.join("/"))
  .filter((s) => s.length > 0);
const arbFilter = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "$s", "", "+"), { minLength: 0, maxLength: 4 }), fc.boolean())
  .map(([l, hash]) => (hash ? [...l, "#"] : l).join("/"))
  .filter((s) => s.length > 0);

t.test("matches agrees with a naive matcher (property)", async (t) => {
  fc.assert(
    fc.property(arbFilter, arbTopic, (f, topic) => validTopicFilter(f, limits) && matches(f, topic) === naive(f, topic)),
    { seed: 1234, numRuns: 2000 },
  );
  t.pass("2000 cases");
});
