// The reconnect flapping detector (hub/broker/auth/flapping.ts, checklist H5) on a fake clock: the
// (max+1)th accepted connection of a client id within the window starts a ban, logged once; other ids are not
// affected; the ban ends; the tracking stays bounded and a flood of fresh client ids neither costs a
// full scan per CONNECT nor lifts an existing ban. The broker-level row is H5 in the checklist test.
import t from "tap";
import { createFlappingDetector } from "../../../hub/broker/auth/flapping.js";
import { createRateLimiter } from "../../../hub/broker/auth/ratelimit.js";
import { memoryLogger } from "../../../hub/log.js";
import { fakeClock } from "../../support/fake-clock.js";

t.test("max connects per window, then a ban of banMs, logged once", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const f = createFlappingDetector({ maxConnects: 3, windowMs: 60_000, banMs: 300_000 }, clock, log);
  for (let i = 0; i < 3; i++) t.equal(f.connected("dev"), 0, `connect ${i + 1} allowed`);
  t.equal(f.bannedFor("dev"), 0, "not banned yet");
  t.equal(f.connected("dev"), 300_000, "the fourth within the window starts a ban");
  t.equal(f.connected("other"), 0, "another client id is not");
  t.equal(f.bannedFor("other"), 0);
  clock.advance(1_000);
  for (let i = 0; i < 5; i++) t.equal(f.bannedFor("dev"), 299_000, "still banned, time left counts down");
  const lines = log.lines.filter((l) => l.includes("reconnects too often"));
  t.equal(lines.length, 1, "one line per ban");
  t.match(lines[0], /WARN .*client=dev connects=4 window_s=60 ban_s=300/);
  clock.advance(299_001);
  t.equal(f.bannedFor("dev"), 0, "allowed again after the ban");
  t.equal(f.connected("dev"), 0, "and counting starts afresh");
});

t.test("connects spread over windows never ban", async (t) => {
  const clock = fakeClock();
  const f = createFlappingDetector({ maxConnects: 2, windowMs: 10_000, banMs: 60_000 }, clock, memoryLogger("debug"));
  for (let i = 0; i < 20; i++) {
    t.equal(f.connected("slow"), 0);
    clock.advance(6_000);
  }
});

t.test("bounded: a flood of fresh keys evicts in batches and keeps the bans", async (t) => {
  const clock = fakeClock();
  const m = createRateLimiter({ maxFailures: 5, windowMs: 60_000, banMs: 300_000, maxKeys: 100 }, clock, memoryLogger("debug"));
  for (let i = 0; i < 5; i++) m.failed(["early"]);
  t.ok(m.bannedFor(["early"]) > 0, "early key banned");
  let largest = 0;
  for (let i = 0; i < 10_000; i++) {
    m.failed([`fresh-${i}`]);
    largest = Math.max(largest, m.size);
  }
  t.ok(largest <= 100, `never more than maxKeys tracked (${largest})`);
  t.ok(m.bannedFor(["early"]) > 0, "the ban survives 10,000 fresh keys (unbanned ones are evicted first)");
});
