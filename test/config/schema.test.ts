// The schema's derived artefacts stay in step with it: the committed config.schema.json and the
// documented config.example.yaml.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import t from "tap";
import { configJsonSchema } from "../../hub/config/json-schema.js";
import { formatProblems, loadConfigFile } from "../../hub/config/load.js";

const root = (name: string) => fileURLToPath(new URL(`../../${name}`, import.meta.url));
/** The parts of a JSON Schema these tests walk. */
interface Json {
  properties?: Record<string, Json>;
  items?: Json;
  additionalProperties?: boolean | Json;
  oneOf?: Json[];
  anyOf?: Json[];
  [k: string]: unknown;
}
const jsonSchema = () => configJsonSchema() as Json;
const realDeps = { readFile: (p: string) => readFileSync(p, "utf8"), env: {} };

t.test("the committed config.schema.json is up to date", async (t) => {
  const committed = readFileSync(root("config.schema.json"), "utf8");
  t.equal(
    committed,
    JSON.stringify(configJsonSchema(), null, 2) + "\n",
    "config.schema.json is stale: regenerate it with `npm run build && node dist/hub/main.js schema > config.schema.json`",
  );
});

t.test("the JSON Schema is for editors: titled, described, input side", async (t) => {
  const s = jsonSchema();
  const broker = s.properties!.broker!.properties!;
  t.equal(s.$schema, "http://json-schema.org/draft-07/schema#");
  t.equal(s.title, "hub configuration");
  t.equal(s.additionalProperties, false, "unknown keys are errors");
  t.equal(s.required, undefined, "every top-level key may be omitted");
  const sys = broker.sys_interval!;
  t.match(sys, { type: "string", default: "10s" }, "durations are strings such as 10s");
  const pattern = new RegExp(String(sys.pattern));
  t.ok(pattern.test("1h30m") && !pattern.test("10"));
  t.ok(broker.external!.properties!.password_file, "password_file is accepted");
  t.type(s.properties!.hardware!.description, "string");
});

/** Every key path of the schema, e.g. `broker.limits.max_keepalive`, `devices[].quantities.*.unit`. */
function keyPaths(s: Json, prefix: string, out: string[]): string[] {
  for (const [k, v] of Object.entries(s.properties ?? {})) {
    const p = prefix === "" ? k : `${prefix}.${k}`;
    out.push(p);
    keyPaths(v, p, out);
  }
  if (s.items) keyPaths(s.items, `${prefix}[]`, out);
  if (typeof s.additionalProperties === "object") keyPaths(s.additionalProperties, `${prefix}.*`, out);
  for (const o of [...(s.oneOf ?? []), ...(s.anyOf ?? [])]) keyPaths(o, prefix, out);
  return out;
}

t.test("config.example.yaml documents every option", async (t) => {
  const text = readFileSync(root("config.example.yaml"), "utf8");
  t.match(text, /^# yaml-language-server: \$schema=\.\/config\.schema\.json\n/);
  const paths = keyPaths(jsonSchema(), "", []);
  t.ok(paths.length > 40, `${paths.length} key paths`);
  for (const p of paths) {
    const key = p.slice(p.lastIndexOf(".") + 1).replace("[]", "");
    // As a key, commented out or not: `key:`, `# key:`, `- key:`, or inside a flow mapping.
    t.match(text, new RegExp(`(^|[\\s#{,-])${key}:`, "m"), `${p} is in config.example.yaml`);
  }
});

t.test("config.example.yaml loads with zero problems", async (t) => {
  const r = loadConfigFile(root("config.example.yaml"), realDeps);
  if (!r.ok) return t.fail(formatProblems(r.problems));
  t.equal(r.config.hardware, "simulate");
  t.equal(r.config.state_dir, "./data");
  const sensors = r.config.devices.flatMap((d) => (d.type === "simulated_sensor" ? [d] : []));
  t.same(
    sensors.map((d) => [d.name, Object.keys(d.quantities)]),
    [
      ["living_room", ["temperature", "humidity"]],
      ["garden", ["temperature", "lux"]],
    ],
  );
  const garden = sensors[1]!.quantities;
  t.match(garden.lux, { start: 800, min: 400, max: 1200, step: 250, precision: 0 });
  t.equal(sensors[0]!.quantities.temperature!.start, 21);
  t.equal(sensors[0]!.quantities.humidity!.start, 45);
  t.match(
    r.config.devices.find((d) => d.type === "gpio_input"),
    { name: "button", pin: 17, active_low: true },
    "the simulated house has a button",
  );
  t.match(r.config.devices.find((d) => d.type === "gpio_output"), { name: "relay", pin: 27, safe_state: "OFF" }, "and a relay");
  t.equal(garden.temperature!.start, 12);
});
