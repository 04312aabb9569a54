// Cross-checks: security by default for listeners.
import t from "tap";
import { isLoopback } from "../../hub/config/check.js";
import { formatProblems, loadConfigText } from "../../hub/config/load.js";
import { fakeDeps, yaml } from "./helpers.js";

t.test("a network listener without allow_anonymous is refused, with its position", async (t) => {
  const r = loadConfigText(yaml("broker:", "  listeners:", "    - host: 0.0.0.0", "      port: 1883"), "c.yaml", fakeDeps());
  t.equal(r.ok, false);
  if (r.ok) return;
  t.match(formatProblems(r.problems), /^c\.yaml:3:13: broker\.listeners\[0\]\.host: expected a loopback address.*allow_anonymous: true/);
});

t.test("allow_anonymous: true written explicitly lets it start; loopback needs nothing", async (t) => {
  const open = loadConfigText(
    yaml("broker:", "  listeners:", "    - { host: 0.0.0.0, port: 1883, allow_anonymous: true }", "    - { host: 127.0.0.1, port: 1884 }"),
    "c.yaml",
    fakeDeps(),
  );
  t.equal(open.ok, true, open.ok ? "" : formatProblems(open.problems));
});

t.test("isLoopback", async (t) => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "localhost", "LOCALHOST"]) t.equal(isLoopback(h), true, h);
  for (const h of ["0.0.0.0", "::", "192.168.1.2", "hub.local", "128.0.0.1"]) t.equal(isLoopback(h), false, h);
});
