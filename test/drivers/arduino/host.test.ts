// Both ends of hubproto agree: HubLink.h (the library users flash) is compiled on this machine with
// g++ and a tiny Arduino shim, driven with hub lines made by the hub's formatter (a SET for an
// output and a PWM, a ping, a report request, a banner request, a corrupted line, an unknown channel), and every line
// it prints must pass the hub's parser: checksums, escapes (a space, a backslash, UTF-8 °), values.
// Skipped with a reason when g++ is missing.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { type BoardMessage, formatHubCommand, formatLine, parseBoardLine } from "../../../drivers/arduino/protocol.js";
import { REPO_ROOT } from "../../support/spawn.js";

const gxx = spawnSync("g++", ["--version"], { stdio: "ignore" });
const skip = gxx.error ? "g++ is not installed (apt install g++)" : false;
if (skip) t.comment(`skipping the HubLink host test: ${skip}`);

t.test("HubLink.h output parses in the hub, and it obeys the hub's commands", { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hublink-"));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const exe = join(dir, "hublink");
  const cc = spawnSync(
    "g++",
    ["-std=c++11", "-Wall", "-Wextra", "-Werror", "-I", join(REPO_ROOT, "test/drivers/arduino/shim"), "-I", join(REPO_ROOT, "drivers/arduino/HubLink"), join(REPO_ROOT, "test/drivers/arduino/shim/host-main.cpp"), "-o", exe],
    { encoding: "utf8" },
  );
  t.equal(cc.status, 0, `compiles without warnings: ${cc.stderr}`);
  if (cc.status !== 0) return;
  const input = [
    formatHubCommand({ type: "set", channel: "pump", value: 1 }),
    formatHubCommand({ type: "set", channel: "fan", value: 127.5 }),
    formatHubCommand({ type: "ping", token: "7" }),
    formatLine("SET pump 0").replace("0*", "1*"), // damaged on the wire: must be refused, not obeyed
    formatHubCommand({ type: "set", channel: "nope", value: 1 }),
    formatHubCommand({ type: "set", channel: "soil", value: 1 }),
    formatHubCommand({ type: "report" }),
    formatHubCommand({ type: "hello" }),
  ].join("");
  const run = spawnSync(exe, [], { input, encoding: "latin1", timeout: 10_000 });
  t.equal(run.status, 0);
  t.equal(run.stderr.trim(), "pump=1 fan=128", "the damaged SET pump 0 was not obeyed; 127.5 rounds to 128");
  const lines = run.stdout.split("\n").filter((l) => l !== "");
  const parsed = lines.map((l) => parseBoardLine(l));
  for (const [i, p] of parsed.entries()) t.ok(p.ok, `line ${i} parses: ${JSON.stringify(lines[i])} ${p.ok ? "" : p.detail}`);
  const msgs = parsed.flatMap((p) => (p.ok ? [p.message] : [])) as BoardMessage[];
  t.same(msgs[0], {
    type: "hello",
    version: 1,
    board: "host test",
    channels: [
      { name: "soil", kind: "sensor", unit: "%" },
      { name: "temp", kind: "sensor", unit: "°C" },
      { name: "door", kind: "binary" },
      { name: "pump", kind: "output" },
      { name: "fan", kind: "pwm" },
    ],
    fields: { fw: "HubLink-1.1" },
    notes: [],
  });
  const after = msgs.slice(1);
  t.same(after.slice(0, 5), [
    { type: "reading", channel: "pump", value: 1 },
    { type: "reading", channel: "fan", value: 128 },
    { type: "pong", token: "7" },
    { type: "error", code: "checksum", text: "" },
    { type: "error", code: "unknown_channel", text: "nope" },
  ]);
  t.same(after[5], { type: "error", code: "read_only", text: "soil" });
  const report = after.slice(6, 11);
  t.same(report, [
    { type: "reading", channel: "soil", value: 41.5 },
    { type: "reading", channel: "temp", value: -3.25 },
    { type: "reading", channel: "door", value: 1 },
    { type: "reading", channel: "pump", value: 1 },
    { type: "reading", channel: "fan", value: 128 },
  ]);
  t.match(lines[7], /^R soil 41\.5\*[0-9A-F]{2}$/, "one decimal as asked");
  t.same(after[11], msgs[0], "HELLO from the hub: the banner again (native-USB boards do not reset on open)");
  t.same(after.at(-1), { type: "event", name: "note", text: "back\\slash and space" });
});
