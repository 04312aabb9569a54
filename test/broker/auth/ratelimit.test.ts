// The failed-login / flapping counter (hub/broker/auth/ratelimit.ts) when it is full: pruning drops
// the keys whose window is over, also when an older key's window restarted after theirs began (the
// map is kept in window order so pruning stops early), and never the count of a live window.
import t from "tap";
import { createRateLimiter } from "../../../hub/broker/auth/ratelimit.js";
import { memoryLogger } from "../../../hub/log.js";
import { fakeClock } from "../../support/fake-clock.js";

t.test("full: stale keys are pruned, a restarted window keeps counting", async (t) => {
  const clock = fakeClock();
  const log = memoryLogger("debug");
  const l = createRateLimiter({ maxFailures: 3, windowMs: 10_000, banMs: 60_000, maxKeys: 3 }, clock, log);
  l.failed(["a"]);
  clock.advance(1_000);
  l.failed(["b"]);
  clock.advance(11_000); // both windows are over
  l.failed(["a"]); // a's new window starts now: 1 failure
  l.failed(["c"]);
  t.equal(l.size, 3);
  l.failed(["d"]); // full: b is stale and goes; a and c are in their windows
  t.equal(l.size, 3, "one stale key pruned");
  l.failed(["a"]);
  t.equal(l.bannedFor(["a"]), 0, "two failures in a's new window");
  l.failed(["a"]);
  t.equal(l.bannedFor(["a"]), 60_000, "the third in the window bans: a's count survived the pruning");
  clock.advance(11_000);
  l.failed(["e"]); // c and d are stale now; a is past its window but banned: kept
  t.ok(l.size <= 3, `bounded (${l.size})`);
  t.equal(l.bannedFor(["a"]), 49_000, "the ban is kept");
});
