// The broker conformance checklist, sections A–G and H5 (/work/shared/broker-checklist.md), end to end:
// raw bytes over a real TCP socket to a real broker, asserting what comes back (CONNACK/DISCONNECT
// reason codes, SUBACK codes, close) and that the other clients are unaffected. One table; each row
// is a checklist row (or one case of it) and becomes one subtest, so the output reads like the
// checklist. Timers run on a fake clock (the broker's sweep is clock.every(1000)), sockets are real.
// The gate's units have their own tests (framing, wire-strings, packet-rules, parse-fuzz).
import t from "tap";
import { createCtx, type Row } from "./checklist/ctx.js";
import { rowsA } from "./checklist/a-framing.js";
import { rowsB } from "./checklist/b-strings.js";
import { rowsC } from "./checklist/c-connect.js";
import { rowsD } from "./checklist/d-publish.js";
import { rowsE } from "./checklist/e-subscribe.js";
import { rowsF } from "./checklist/f-qos.js";
import { rowsG } from "./checklist/g-security.js";
import { rowsH } from "./checklist/h-resource.js";

const rows: Row[] = [...rowsA, ...rowsB, ...rowsC, ...rowsD, ...rowsE, ...rowsF, ...rowsG, ...rowsH];

// tap does not run the body of a todo test. CHECKLIST_RUN_TODO=1 runs the todo rows that have one as
// ordinary tests, to watch them fail today (or find that a fix made them pass).
const runTodo = process.env.CHECKLIST_RUN_TODO === "1";

for (const row of rows) {
  const name = `${row.id} ${row.title}`;
  const run = row.run;
  if (!run) {
    t.test(name, { todo: row.todo ?? "not written yet" }, () => {});
    continue;
  }
  t.test(runTodo && row.todo ? `[todo: ${row.todo}] ${name}` : name, { todo: runTodo ? undefined : row.todo }, async (t) => {
    const { ctx, healthCheck, close } = await createCtx(t, row);
    t.teardown(close);
    await run(ctx);
    await healthCheck();
  });
}
