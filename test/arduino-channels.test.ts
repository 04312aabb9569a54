// The remembered banner channels (hub/arduino-channels.ts): written when a banner differs, not
// rewritten when it does not (SD cards wear), read back by the next start for configured devices
// only, and a missing or damaged file is an empty memory with a warning, never a failed start.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t, { type Test } from "tap";
import { CHANNELS_FILE, channelMemory } from "../hub/arduino-channels.js";
import { memoryLogger } from "../hub/log.js";

const dir = (t: Test) => {
  const d = mkdtempSync(join(tmpdir(), "arduino-channels-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
};

const greenhouse = { board: "greenhouse", channels: [{ name: "soil", kind: "sensor" as const, unit: "%" }, { name: "pump", kind: "output" as const }] };

t.test("a banner is remembered once and read back by the next start", async (t) => {
  const d = dir(t);
  const log = memoryLogger();
  const first = channelMemory(d, ["greenhouse", "shed"], log);
  t.same(await first.load(), {}, "no file yet: nothing remembered, no warning");
  t.same(log.lines, []);
  t.equal(await first.remember("greenhouse", greenhouse), true);
  const file = join(d, CHANNELS_FILE);
  const written = statSync(file).mtimeMs;
  t.equal(await first.remember("greenhouse", structuredClone(greenhouse)), false, "the same banner again: no write");
  t.equal(statSync(file).mtimeMs, written);
  await first.remember("shed", { board: "shed", channels: [{ name: "fan", kind: "pwm" }] });

  const again = channelMemory(d, ["greenhouse"], log);
  t.same(await again.load(), { greenhouse }, "only configured devices are read");
  t.equal(await again.remember("greenhouse", greenhouse), false, "what was read counts as remembered");
  await again.remember("greenhouse", { ...greenhouse, channels: greenhouse.channels.slice(1) });
  t.same(JSON.parse(readFileSync(file, "utf8")), { greenhouse: { board: "greenhouse", channels: [{ name: "pump", kind: "output" }] } }, "a removed device's entry is dropped on the next write");
});

t.test("a damaged file is an empty memory with a warning", async (t) => {
  const d = dir(t);
  const log = memoryLogger();
  writeFileSync(join(d, CHANNELS_FILE), "{ not json");
  t.same(await channelMemory(d, ["greenhouse"], log).load(), {});
  t.match(log.lines.join("\n"), /not valid JSON/);
  writeFileSync(join(d, CHANNELS_FILE), JSON.stringify({ greenhouse: { board: "x", channels: [{ name: "BAD NAME", kind: "sensor" }] }, shed: { board: "s", channels: [{ name: "fan", kind: "laser" }] } }));
  t.same(await channelMemory(d, ["greenhouse", "shed"], log).load(), {}, "entries with invalid channels are ignored");
});
