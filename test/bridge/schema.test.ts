// The `bridges:` config: defaults, mosquitto's invalid prefix combinations, secrets from files,
// errors with file:line:col, and the JSON Schema editors get.
import t from "tap";
import { loadConfigText } from "../../hub/config/load.js";
import { configJsonSchema } from "../../hub/config/json-schema.js";

const load = (yaml: string, files: Record<string, string> = {}) =>
  loadConfigText(yaml, "/etc/hub/config.yaml", {
    readFile: (p) => {
      const v = files[p];
      if (v === undefined) throw Object.assign(new Error("no such file"), { code: "ENOENT" });
      return v;
    },
    env: { CLOUD_PW: "from-env" },
  });

t.test("a minimal bridge gets the documented defaults", async (t) => {
  const r = load(["bridges:", "  - name: cloud", "    url: mqtts://broker.example.com:8883", "    topics:", "      - pattern: sensors/#"].join("\n"));
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  const b = r.config.bridges[0]!;
  t.equal(b.protocol_version, 5);
  t.equal(b.keepalive, 60_000);
  t.equal(b.clean_start, false);
  t.equal(b.session_expiry, 86_400_000);
  t.equal(b.reconnect_min, 1_000);
  t.equal(b.reconnect_max, 120_000);
  t.equal(b.max_inflight, 32);
  t.same(b.queue, { max_messages: 100_000, max_bytes: 67_108_864, policy: "drop_oldest", synchronous: "normal" });
  t.same(b.topics, [{ pattern: "sensors/#", direction: "out", qos: 1, local_prefix: "", remote_prefix: "", latest_only: false }]);
  t.equal(r.config.bridges.length, 1);
  const none = load("hardware: simulate");
  t.same(none.ok && none.config.bridges, [], "no bridges by default");
});

t.test("password_file and environment variables work as for the external broker; the secret is not echoed", async (t) => {
  const base = ["bridges:", "  - name: a", "    url: [mqtts://one:8883, mqtts://two:8883]", "    topics: [{ pattern: x }]"];
  const r = load([...base, "    password_file: secrets/pw"].join("\n"), { "/etc/hub/secrets/pw": "s3cret\n" });
  t.equal(r.ok && r.config.bridges[0]!.password, "s3cret");
  t.same(r.ok && r.config.bridges[0]!.url, ["mqtts://one:8883", "mqtts://two:8883"]);
  // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${ENV} syntax under test
  const e = load([...base, "    password: ${CLOUD_PW}"].join("\n"));
  t.equal(e.ok && e.config.bridges[0]!.password, "from-env");
  const bad = load([...base, "    password: 12", "    keepalive: 1500ms"].join("\n"));
  t.notOk(bad.ok);
  t.notMatch(JSON.stringify(bad), /"12"/);
});

t.test("mosquitto's invalid combinations and bad values are reported with their position", async (t) => {
  const r = load(
    [
      "bridges:",
      "  - name: a",
      "    url: http://x",
      "    keepalive: 1500ms",
      "    topics:",
      '      - { pattern: "", local_prefix: local }',
      '      - { pattern: "", remote_prefix: remote }',
      '      - { pattern: "" }',
      "      - { pattern: a/#, local_prefix: x/+/ }",
      "      - { pattern: a#b }",
      "      - { pattern: x, direction: sideways, qos: 3 }",
    ].join("\n"),
  );
  t.notOk(r.ok);
  if (r.ok) return;
  const lines = r.problems.map((p) => `${p.line}:${p.path}: ${p.expected}`);
  t.match(lines.join("\n"), /3:bridges\[0\]\.url: a URL like mqtts:/);
  t.match(lines.join("\n"), /4:bridges\[0\]\.keepalive: whole seconds/);
  t.match(lines.join("\n"), /6:bridges\[0\]\.topics\[0\]\.pattern: both local_prefix and remote_prefix/);
  t.match(lines.join("\n"), /7:bridges\[0\]\.topics\[1\]\.pattern: both local_prefix/);
  t.match(lines.join("\n"), /8:bridges\[0\]\.topics\[2\]\.pattern: both local_prefix/);
  t.match(lines.join("\n"), /9:bridges\[0\]\.topics\[3\]\.local_prefix: a topic prefix without/);
  t.match(lines.join("\n"), /10:bridges\[0\]\.topics\[4\]\.pattern: a valid topic filter/);
  t.match(lines.join("\n"), /11:bridges\[0\]\.topics\[5\]\.direction/);
  t.match(lines.join("\n"), /11:bridges\[0\]\.topics\[5\]\.qos: 0, 1 or 2/);
  t.equal(lines.filter((l) => l.startsWith("10:")).length, 1, "one problem for a bad pattern");
});

t.test("checks across fields: cert_file needs key_file, bridge names are unique", async (t) => {
  const r = load(
    [
      "bridges:",
      "  - name: a",
      "    url: mqtts://x",
      "    tls: { cert_file: c.pem }",
      "    topics: [{ pattern: x }]",
      "  - name: a",
      "    url: mqtt://y",
      "    topics: [{ pattern: y }]",
      "    reconnect_min: 5m",
      "    reconnect_max: 1m",
    ].join("\n"),
  );
  t.notOk(r.ok);
  if (r.ok) return;
  const lines = r.problems.map((p) => `${p.line}:${p.path}: ${p.expected}`).join("\n");
  t.match(lines, /4:bridges\[0\]\.tls: cert_file and key_file together/);
  t.match(lines, /9:bridges\[1\]\.reconnect_min: at most reconnect_max/);
  const dup = load(["bridges:", "  - { name: a, url: mqtt://x, topics: [{ pattern: x }] }", "  - { name: a, url: mqtt://y, topics: [{ pattern: y }] }"].join("\n"));
  t.match(!dup.ok && dup.problems.map((p) => `${p.line}:${p.path}: ${p.expected}`).join("\n"), /3:bridges\[1\]\.name: a name not used by another bridge \(also bridges\[0\]\)/);
});

t.test("AWS IoT Core: a QoS 2 rule is refused (AWS never acknowledges QoS 2); elsewhere it is fine", async (t) => {
  const aws = (url: string) =>
    load(["bridges:", "  - name: aws", `    url: ${url}`, "    topics:", "      - { pattern: a/#, qos: 1 }", "      - { pattern: b/#, direction: in, qos: 2 }"].join("\n"));
  const r = aws("mqtts://abcdefghij1234-ats.iot.eu-central-1.amazonaws.com:8883");
  t.notOk(r.ok);
  if (!r.ok) t.same(r.problems.map((p) => `${p.line}:${p.path}: ${p.expected}`), ["6:bridges[0].topics[1].qos: 0 or 1: AWS IoT Core does not support QoS 2 (it never acknowledges it)"]);
  t.notOk(aws("mqtts://a1b2c3-ats.iot.cn-north-1.amazonaws.com.cn").ok, "China regions too");
  t.ok(aws("mqtts://broker.example.com:8883").ok, "another broker may take QoS 2");
});

t.test("the JSON Schema for editors lists every bridge option", async (t) => {
  const s = JSON.stringify(configJsonSchema());
  for (const key of ["bridges", "remote_prefix", "latest_only", "max_inflight", "alpn", "servername", "drop_new", "password_file", "session_expiry"]) {
    t.match(s, `"${key}"`, key);
  }
});
