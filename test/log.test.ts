import t from "tap";
import { createLogger, logFormatFor, redact } from "../hub/log.js";

function capture(format: "text" | "json" | "journal", level: "debug" | "info" | "warn" | "error" = "info") {
  const lines: string[] = [];
  const log = createLogger({ level, format, write: (l) => lines.push(l), now: () => Date.UTC(2026, 0, 1) }, "hub");
  return { log, lines };
}

t.test("journal format carries syslog priorities and the component", async (t) => {
  const { log, lines } = capture("journal", "debug");
  log.child("broker").warn("slow consumer", { client: "ha" });
  log.error("boom");
  log.info("hello");
  log.debug("detail");
  t.same(lines, ["<4>hub/broker: slow consumer client=ha", "<3>hub: boom", "<6>hub: hello", "<7>hub: detail"]);
});

t.test("JOURNAL_STREAM selects the journal format", async (t) => {
  t.equal(logFormatFor("text", { JOURNAL_STREAM: "8:1234" }), "journal");
  t.equal(logFormatFor("json", {}), "json");
});

t.test("levels filter; one line per event even for multi-line messages", async (t) => {
  const { log, lines } = capture("text", "warn");
  log.info("not shown");
  log.warn("two\nlines");
  t.equal(lines.length, 1);
  t.match(lines[0], /^2026-01-01T00:00:00.000Z WARN {2}hub: two ⏎ lines$/);
});

t.test("secrets are never written, in text or JSON", async (t) => {
  for (const format of ["text", "json", "journal"] as const) {
    const { log, lines } = capture(format);
    log.info("connecting", { url: "mqtt://x", password: "hunter2", tls: { key_passphrase: "s3cret" }, token: "abc" });
    t.notMatch(lines[0], /hunter2|s3cret|abc"/, format);
    t.match(lines[0], /redacted/, format);
  }
  t.same(redact({ a: { password: "p", b: 1 } }), { a: { password: "<redacted>", b: 1 } });
});

t.test("json lines parse and include the component", async (t) => {
  const { log, lines } = capture("json");
  log.child("devices").info("online", { device: "garden" });
  const rec = JSON.parse(lines[0]!);
  t.match(rec, { level: "info", component: "hub/devices", msg: "online", device: "garden" });
});
