// The bridge's durable queue: order, group commit, bounds and each drop policy with exact counts,
// durability across close/reopen and across kill -9, a corrupt file moved aside, a full disk.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import t, { type Test } from "tap";
import { type OutMessage, openQueue, type Queue, type QueueOptions } from "../../hub/bridge/queue.js";
import { memoryLogger } from "../../hub/log.js";
import { fakeClock } from "../support/fake-clock.js";

const OPTS: QueueOptions = { maxMessages: 1000, maxBytes: 1 << 20, policy: "drop_oldest", synchronous: "normal" };

function dir(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), "hub-bridge-q-"));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

const msg = (i: number | string, extra: Partial<OutMessage> = {}): OutMessage => ({ topic: `t/${i}`, payload: Buffer.from(String(i)), qos: 1, retain: false, ...extra });
const payloads = (q: Queue) => q.peek(0, 1_000_000).map((m) => m.payload.toString());

function open(t: Test, path: string, o: Partial<QueueOptions> = {}, protect?: (id: number) => boolean) {
  const log = memoryLogger();
  const clock = fakeClock();
  let commits = 0;
  const q = openQueue(path, { ...OPTS, ...o }, { clock, log, protect, onAppend: () => commits++ });
  t.teardown(() => q.close());
  return { q, log, clock, commits: () => commits };
}

t.test("messages come out in arrival order; appends of one turn are one commit", async (t) => {
  const { q, commits } = open(t, join(dir(t), "q.db"));
  for (let i = 0; i < 100; i++) q.append(msg(i));
  t.equal(q.depth(), 0, "not committed before the end of the turn");
  await new Promise((r) => setImmediate(r));
  t.equal(commits(), 1, "one group commit for 100 appends");
  t.equal(q.depth(), 100);
  t.equal(q.bytes(), 10 * (3 + 1) + 90 * (4 + 2), "bytes = topic + payload");
  const first = q.peek(0, 10);
  t.same(first.map((m) => m.payload.toString()), ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]);
  t.same(q.peek(first[9]!.id, 2).map((m) => m.topic), ["t/10", "t/11"], "peek after an id continues in order");
  for (const m of first) q.remove(m.id);
  q.flush();
  t.equal(q.depth(), 90);
  t.equal(payloads(q)[0], "10");
});

t.test("close and reopen keeps every message, its properties and its order", async (t) => {
  const path = join(dir(t), "q.db");
  const a = openQueue(path, OPTS, { clock: fakeClock(), log: memoryLogger() });
  const props = { contentType: "text/plain", correlationData: Buffer.from([0, 1, 255]), userProperties: { a: "1", b: ["x", "y"] }, messageExpiryInterval: 60 };
  a.append(msg("first", { qos: 2, retain: true, properties: props }));
  for (let i = 0; i < 50; i++) a.append(msg(i, { qos: 0 }));
  a.close();
  const { q } = open(t, path);
  t.equal(q.depth(), 51);
  const [m] = q.peek(0, 1);
  t.same({ topic: m!.topic, qos: m!.qos, retain: m!.retain, payload: m!.payload.toString() }, { topic: "t/first", qos: 2, retain: true, payload: "first" });
  t.same(m!.properties, props);
  t.same(payloads(q).slice(1), Array.from({ length: 50 }, (_, i) => String(i)));
});

t.test("kill -9 while the queue holds messages loses none that were committed", async (t) => {
  const path = join(dir(t), "q.db");
  const child = fileURLToPath(new URL("./fixtures/queue-crash-child.ts", import.meta.url));
  const loader = fileURLToPath(new URL("../../node_modules/@tapjs/typescript/dist/esm/import.mjs", import.meta.url));
  const p = spawn(process.execPath, [`--import=file://${loader}`, child, path, "200", "7"], { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, TS_NODE_TRANSPILE_ONLY: "1" } });
  let out = "";
  p.stdout.on("data", (d) => {
    out += d;
  });
  const exit = await new Promise<NodeJS.Signals | null>((resolve) => p.on("exit", (_c, s) => resolve(s)));
  t.equal(exit, "SIGKILL", "the child died by SIGKILL");
  const committed = Number(/committed (\d+)\n$/.exec(out)?.[1]);
  t.equal(committed, 1400, "7 commits of 200 were reported before the kill");
  const { q, log } = open(t, path);
  t.equal(q.depth(), committed, "every committed message is there after the crash");
  t.same(payloads(q), Array.from({ length: committed }, (_, i) => String(i)), "in order, none lost, none twice");
  t.notMatch(log.lines.join("\n"), /corrupt/);
});

t.test("drop_oldest: past max_messages the oldest go, each counted", async (t) => {
  const { q } = open(t, join(dir(t), "q.db"), { maxMessages: 5 });
  for (let i = 0; i < 8; i++) q.append(msg(i));
  q.flush();
  t.same(payloads(q), ["3", "4", "5", "6", "7"]);
  t.equal(q.dropped.oldest, 3);
  t.equal(q.depth(), 5);
  for (let i = 8; i < 10; i++) q.append(msg(i));
  q.flush();
  t.same(payloads(q), ["5", "6", "7", "8", "9"]);
  t.equal(q.dropped.oldest, 5, "counts add up across commits");
});

t.test("drop_oldest: past max_bytes the oldest go until the new one fits", async (t) => {
  // Each message: topic "t/N" (3 bytes) + 97 bytes payload = 100 bytes.
  const { q } = open(t, join(dir(t), "q.db"), { maxBytes: 1024 });
  for (let i = 0; i < 12; i++) q.append({ topic: `t/${i % 10}`, payload: Buffer.alloc(97, i), qos: 1, retain: false });
  q.flush();
  t.equal(q.depth(), 10);
  t.equal(q.bytes(), 1000);
  t.equal(q.dropped.oldest, 2);
  t.equal(q.peek(0, 1)[0]!.payload[0], 2, "the two oldest were dropped");
});

t.test("drop_new: past a bound the new messages are refused, each counted", async (t) => {
  const { q } = open(t, join(dir(t), "q.db"), { maxMessages: 5, policy: "drop_new" });
  for (let i = 0; i < 8; i++) q.append(msg(i));
  q.flush();
  t.same(payloads(q), ["0", "1", "2", "3", "4"]);
  t.equal(q.dropped.new, 3);
  t.equal(q.dropped.oldest, 0);
  const big = open(t, join(dir(t), "b.db"), { maxBytes: 1024 }).q;
  big.append({ topic: "x", payload: Buffer.alloc(2000), qos: 1, retain: false });
  big.append(msg("small"));
  big.flush();
  t.same(payloads(big), ["small"], "a message larger than max_bytes is refused whatever the policy");
  t.equal(big.dropped.new, 1);
});

t.test("latest_only keeps the newest message per topic, counting the replaced ones", async (t) => {
  const { q } = open(t, join(dir(t), "q.db"));
  q.append(msg("a", { payload: Buffer.from("a1"), latestOnly: true }));
  q.append(msg("log", { payload: Buffer.from("l1") }));
  q.append(msg("a", { payload: Buffer.from("a2"), latestOnly: true }));
  q.append(msg("log", { payload: Buffer.from("l2") }));
  q.flush();
  q.append(msg("a", { payload: Buffer.from("a3"), latestOnly: true }));
  q.flush();
  t.same(payloads(q), ["l1", "l2", "a3"], "other topics keep every message; the state topic only its newest");
  t.equal(q.dropped.superseded, 2);
});

t.test("messages handed to the client (protected) are never dropped", async (t) => {
  const onWire = new Set<number>();
  const { q } = open(t, join(dir(t), "q.db"), { maxMessages: 3 }, (id) => onWire.has(id));
  for (let i = 0; i < 3; i++) q.append(msg(i, { latestOnly: true }));
  q.flush();
  for (const m of q.peek(0, 2)) onWire.add(m.id);
  q.append(msg(0, { latestOnly: true, payload: Buffer.from("0b") }));
  q.append(msg(3));
  q.flush();
  t.same(payloads(q), ["0", "1", "3"], "0 and 1 are on the wire: 2, then 0b, were the oldest that could go");
  t.equal(q.dropped.superseded, 0, "a protected message is not superseded");
  t.equal(q.dropped.oldest, 2);
});

t.test("max_age: expire() drops messages older than the limit, counted", async (t) => {
  const { q, clock } = open(t, join(dir(t), "q.db"), { maxAgeMs: 300_000 });
  q.append(msg("old"));
  q.flush();
  clock.advance(200_000);
  q.append(msg("newer"));
  q.flush();
  t.equal(q.expire(), 0);
  clock.advance(100_001);
  t.equal(q.expire(), 1);
  t.same(payloads(q), ["newer"]);
  t.equal(q.dropped.expired, 1);
  t.equal(q.oldestAt(), clock.now() - 100_001);
});

t.test("a corrupt file is moved aside with a clear log line and a fresh queue starts", async (t) => {
  const d = dir(t);
  const path = join(d, "bridge-cloud.db");
  writeFileSync(path, Buffer.alloc(8192, 0x5a));
  const { q, log } = open(t, path);
  t.ok(q.durable);
  t.equal(q.depth(), 0);
  t.match(log.lines.join("\n"), /ERROR.*bridge queue file is corrupt; moved it aside and started an empty queue file=.*bridge-cloud\.db moved_to=.*bridge-cloud\.db\.corrupt-/);
  t.equal(readdirSync(d).filter((f) => f.startsWith("bridge-cloud.db.corrupt-")).length, 1, "the bad file is kept for inspection");
  q.append(msg(1));
  q.flush();
  t.equal(q.depth(), 1, "the fresh queue works");
});

t.test("a file that cannot be opened: the queue runs in memory and says so", async (t) => {
  const { q, log } = open(t, join(dir(t), "missing-dir", "q.db"));
  t.notOk(q.durable);
  t.match(log.lines.join("\n"), /ERROR.*cannot open the bridge queue file; queueing in memory only/);
  q.append(msg(1));
  q.flush();
  t.same(payloads(q), ["1"]);
});

t.test("a full disk is logged and counted, never thrown; writing resumes when there is room", async (t) => {
  const path = join(dir(t), "q.db");
  const { q, log } = open(t, path, { maxPageCount: 12, maxBytes: 1 << 30 });
  let i = 0;
  for (; i < 200 && q.dropped.write_failed === 0; i++) {
    q.append({ topic: `t/${i}`, payload: Buffer.alloc(3000, 1), qos: 1, retain: false });
    q.flush();
  }
  t.ok(q.dropped.write_failed > 0, "the message that did not fit is counted");
  const kept = q.depth();
  t.ok(kept > 0 && kept < i, `${kept} messages kept`);
  t.match(log.lines.join("\n"), /ERROR.*cannot write the bridge queue \(disk full\?\)/);
  // Room again: the oldest are sent (removed), then new messages are stored.
  for (const m of q.peek(0, 5)) q.remove(m.id);
  q.flush();
  q.append(msg("after"));
  q.flush();
  t.equal(q.depth(), kept - 5 + 1);
  t.match(log.lines.at(-1), /bridge queue writes work again/);
  t.ok(existsSync(path));
});

t.test("after a large backlog drained, shrink() gives the space back to the file system", async (t) => {
  const d = dir(t);
  const path = join(d, "q.db");
  const { q } = open(t, path, { maxBytes: 1 << 30, maxMessages: 100_000 });
  const big = Buffer.alloc(1000, 0x61);
  for (let i = 0; i < 5000; i++) q.append(msg(i, { payload: big }));
  q.flush();
  const pages = () => q.db.pragma("page_count", { simple: true }) as number;
  const full = pages();
  t.ok(full > 1200, `5 MB of messages take ${full} pages`);
  t.equal(q.shrink(), 0, "nothing to give back while they are queued");
  for (const m of q.peek(0, 5000)) q.remove(m.id);
  q.flush();
  t.equal(q.depth(), 0);
  t.ok(q.shrink() > 1200, "the free pages were released");
  t.ok(pages() < 20, `the file is small again (${pages()} pages)`);
  t.equal(q.shrink(), 0, "and a second call has nothing to do");
});

t.test("a queue file made before auto_vacuum is converted once, keeping its messages", async (t) => {
  const path = join(dir(t), "old.db");
  const Database = (await import("better-sqlite3")).default;
  const old = new Database(path);
  old.pragma("journal_mode = WAL");
  old.exec("CREATE TABLE queue (id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, topic TEXT NOT NULL, payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, props TEXT, latest INTEGER NOT NULL DEFAULT 0, size INTEGER NOT NULL)");
  old.prepare("INSERT INTO queue (at, topic, payload, qos, retain, size) VALUES (0, 't/a', ?, 1, 0, 4)").run(Buffer.from("a"));
  t.equal(old.pragma("auto_vacuum", { simple: true }), 0);
  old.close();
  const { q } = open(t, path);
  t.equal(q.db.pragma("auto_vacuum", { simple: true }), 2, "incremental now");
  t.same(payloads(q), ["a"]);
});
