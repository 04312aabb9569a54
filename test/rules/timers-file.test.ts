// The rule timers file (<state_dir>/rules-timers.json): atomic replace, missing = empty, a corrupt
// file moved aside (the hub still starts), a failed write leaves the previous file whole, and an
// engine restarted on the same file resumes a pending `for`. Real files in a temp dir.
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { memoryLogger } from "../../hub/log.js";
import { jsonTimerStore, type SavedTimer, type TimerFs } from "../../rules/timers.js";
import { harness, MONDAY_NOON_UTC } from "./harness.js";

const sample: SavedTimer[] = [
  { kind: "for", rule: "door", version: "abc", trigger: 0, vars: { kind: "state", to: "open" }, due: 1_700_000_300_000 },
  { kind: "run", rule: "light", version: "def", path: [1, "then", 0, 2, 1], vars: { trigger: { value: "hall" } }, due: 1_700_000_600_000, started: 1_700_000_000_000 },
  { kind: "run", rule: "wait", version: "ghi", path: [0], vars: {}, started: 1_700_000_000_000 },
];

const tmp = () => fs.mkdtempSync(join(tmpdir(), "hub-timers-"));

t.test("save then load gives the same timers; the temp file is gone; a missing file is empty", async (t) => {
  const dir = tmp();
  const file = join(dir, "rules-timers.json");
  const log = memoryLogger();
  const store = jsonTimerStore(file, fs, log, () => 42);
  t.same(store.load(), [], "no file yet");
  store.save(sample);
  t.same(store.load(), sample);
  t.same(fs.readdirSync(dir), ["rules-timers.json"], "no temp file left");
  t.match(JSON.parse(fs.readFileSync(file, "utf8")), { format: 1, saved_at: 42 });
  store.save([]);
  t.same(store.load(), []);
  t.same(log.lines, []);
});

t.test("a corrupt file is moved aside with a warning and the rules start without timers", async (t) => {
  const dir = tmp();
  const file = join(dir, "rules-timers.json");
  fs.writeFileSync(file, '{"format":1,"timers":[{"kind":"for"');
  const log = memoryLogger();
  t.same(jsonTimerStore(file, fs, log, () => 7).load(), []);
  t.same(fs.readdirSync(dir), ["rules-timers.json.corrupt-7"]);
  t.match(log.lines.join("\n"), /WARN .*the rule timers file is corrupt: moved aside/);
  const noStart = { ...sample[2], started: undefined }; // would throw when the run resumed (a date in its trace)
  fs.writeFileSync(file, JSON.stringify({ format: 1, timers: [sample[0], { kind: "run", rule: 3 }, noStart] }));
  t.same(jsonTimerStore(file, fs, log, () => 8).load(), [sample[0]], "a malformed entry is dropped, the rest kept");
  t.match(log.lines.join("\n"), /some saved rule timers are malformed and were dropped .*dropped=2/);
});

t.test("a write that fails half way leaves the previous file whole", async (t) => {
  const dir = tmp();
  const file = join(dir, "rules-timers.json");
  const store = jsonTimerStore(file, fs, memoryLogger(), () => 1);
  store.save(sample);
  const failing: TimerFs = {
    ...fs,
    writeSync: (fd: number, data: string) => {
      fs.writeSync(fd, data.slice(0, 10));
      throw Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" });
    },
  };
  t.throws(() => jsonTimerStore(file, failing, memoryLogger(), () => 2).save([]), /ENOSPC/);
  t.same(store.load(), sample, "the old set is intact");
});

t.test("the engine on a timers file: a pending `for` survives a restart of the process", async (t) => {
  const dir = tmp();
  const file = join(dir, "rules-timers.json");
  const yaml = `
- id: door
  triggers: [{ trigger: state, topic: hub/door, to: open, for: 5m }]
  actions: [{ action: publish, topic: out, payload: open }]
`;
  const a = await harness(yaml, { status: false, timers: jsonTimerStore(file, fs, memoryLogger(), () => 0) });
  await a.publish("hub/door", "closed", true);
  await a.publish("hub/door", "open", true);
  await a.stop();
  t.match(JSON.parse(fs.readFileSync(file, "utf8")).timers, [{ kind: "for", rule: "door", due: MONDAY_NOON_UTC + 5 * 60_000 }]);
  const b = await harness(yaml, {
    start: MONDAY_NOON_UTC + 4 * 60_000,
    status: false,
    timers: jsonTimerStore(file, fs, memoryLogger(), () => 0),
    before: (publish) => publish("hub/door", "open", true),
  });
  await b.advance(60_000);
  t.same(b.on("out"), ["open"]);
  await b.stop();
  t.same(JSON.parse(fs.readFileSync(file, "utf8")).timers, []);
});
