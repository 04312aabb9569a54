// The bridge's topic mapping against mosquitto's documented semantics (mosquitto.conf(5), `topic`):
// the prefix table, wildcards, directions, rule order, and what stays unmapped.
import t from "tap";
import { compileRules, localFilters, mapInbound, mapOutbound, remoteSubscriptions, type TopicRule } from "../../hub/bridge/mapping.js";

const rule = (pattern: string, direction: TopicRule["direction"], local_prefix = "", remote_prefix = "", qos: TopicRule["qos"] = 1): TopicRule => ({
  pattern,
  direction,
  qos,
  local_prefix,
  remote_prefix,
});

t.test("mosquitto.conf(5)'s table of prefixes: full local topic <-> full remote topic", async (t) => {
  // [pattern, local prefix, remote prefix, full local topic, full remote topic]
  const table: [string, string, string, string, string][] = [
    ["pattern", "L/", "R/", "L/pattern", "R/pattern"],
    ["pattern", "L/", "", "L/pattern", "pattern"],
    ["pattern", "", "R/", "pattern", "R/pattern"],
    ["pattern", "", "", "pattern", "pattern"],
    ["", "local", "remote", "local", "remote"],
  ];
  for (const [pattern, lp, rp, local, remote] of table) {
    const rules = compileRules([rule(pattern, "both", lp, rp)]);
    t.equal(mapOutbound(rules, local)?.topic, remote, `out: ${JSON.stringify([pattern, lp, rp])}`);
    t.equal(mapInbound(rules, remote)?.topic, local, `in: ${JSON.stringify([pattern, lp, rp])}`);
    t.same(localFilters(rules), [local]);
    t.same([...remoteSubscriptions(rules).keys()], [remote]);
  }
});

t.test("wildcards: the pattern is matched after the prefix, the rest of the topic is kept", async (t) => {
  const rules = compileRules([rule("#", "both", "local/topic/", "remote/topic/"), rule("sensors/+/temp", "out", "hub/", "things/pi/")]);
  const cases: [string, string | undefined][] = [
    ["local/topic/a", "remote/topic/a"],
    ["local/topic/a/b/c", "remote/topic/a/b/c"],
    ["local/topic/", "remote/topic/"], // '#' matches the empty level after the prefix
    ["hub/sensors/den/temp", "things/pi/sensors/den/temp"],
    ["hub/sensors/den/hum", undefined],
    ["hub/sensors/den/temp/x", undefined],
    ["other/x", undefined],
  ];
  for (const [local, remote] of cases) t.equal(mapOutbound(rules, local)?.topic, remote, local);
  t.equal(mapInbound(rules, "remote/topic/cmd/set")?.topic, "local/topic/cmd/set");
  t.equal(mapInbound(rules, "things/pi/sensors/den/temp"), undefined, "an out rule maps nothing inbound");
});

t.test("directions: out only goes up, in only comes down, both does both", async (t) => {
  const out = compileRules([rule("a/#", "out")]);
  const inn = compileRules([rule("a/#", "in")]);
  const both = compileRules([rule("a/#", "both")]);
  t.equal(mapOutbound(out, "a/1")?.topic, "a/1");
  t.equal(mapInbound(out, "a/1"), undefined);
  t.equal(mapOutbound(inn, "a/1"), undefined);
  t.equal(mapInbound(inn, "a/1")?.topic, "a/1");
  t.equal(mapOutbound(both, "a/1")?.topic, "a/1");
  t.equal(mapInbound(both, "a/1")?.topic, "a/1");
  t.same(localFilters(inn), [], "an in rule needs no local subscription");
  t.equal(remoteSubscriptions(out).size, 0, "an out rule needs no remote subscription");
});

t.test("rules are tried in order: the first matching rule decides topic and QoS", async (t) => {
  const rules = compileRules([rule("hub/+/set", "in", "", "cmd/", 2), rule("hub/#", "both", "", "all/", 0)]);
  const inCmd = mapInbound(rules, "cmd/hub/lamp/set");
  t.equal(inCmd?.topic, "hub/lamp/set");
  t.equal(inCmd?.rule.qos, 2);
  t.equal(mapInbound(rules, "all/hub/lamp/set")?.topic, "hub/lamp/set", "the second rule still maps its own remote topics");
  const up = mapOutbound(rules, "hub/lamp/set");
  t.equal(up?.topic, "all/hub/lamp/set", "the in rule is skipped going up");
  t.equal(up?.rule.index, 1);
});

t.test("topics a rule cannot take stay unmapped", async (t) => {
  const rules = compileRules([rule("#", "both", "L/", "R/")]);
  t.equal(mapOutbound(rules, "$SYS/broker/uptime"), undefined, "# does not match $ topics (MQTT-4.7.2-1)");
  // '#' also matches the parent level, so L/# matches "L"; the prefix "L/" cannot be stripped from it.
  // mosquitto would send it as "R/L"; we do not invent a topic.
  t.equal(mapOutbound(rules, "L"), undefined);
  t.equal(mapInbound(rules, "R"), undefined);
  const noRemote = compileRules([rule("#", "out", "L/", "")]);
  t.equal(mapOutbound(noRemote, "L/"), undefined, "an empty remote topic is never produced");
});

t.test("subscriptions: distinct filters, highest QoS per remote filter", async (t) => {
  const rules = compileRules([rule("a/#", "out", "", "", 0), rule("a/#", "both", "", "", 1), rule("b", "in", "", "", 2), rule("b", "in", "", "", 0)]);
  t.same(localFilters(rules), ["a/#"]);
  t.same([...remoteSubscriptions(rules)], [
    ["a/#", 1],
    ["b", 2],
  ]);
});

t.test("topics that look like object keys are plain strings", async (t) => {
  const rules = compileRules([rule("__proto__/#", "both", "", "constructor/")]);
  t.equal(mapOutbound(rules, "__proto__/x")?.topic, "constructor/__proto__/x");
  t.equal(mapInbound(rules, "constructor/__proto__/x")?.topic, "__proto__/x");
});
