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

t.test("listeners that cannot share a port: the same address, or a wildcard address and any other (EADDRINUSE)", async (t) => {
  const check = (a: string, b: string) => {
    const r = loadConfigText(
      yaml("broker:", "  listeners:", `    - { host: "${a}", port: 1883, allow_anonymous: true }`, `    - { host: "${b}", port: 1883, allow_anonymous: true }`),
      "c.yaml",
      fakeDeps(),
    );
    return r.ok ? "" : formatProblems(r.problems);
  };
  for (const [a, b] of [["127.0.0.1", "127.0.0.1"], ["0.0.0.0", "127.0.0.1"], ["127.0.0.1", "0.0.0.0"], ["::", "0.0.0.0"], ["::", "::1"], ["192.168.1.2", "::"]]) {
    t.match(check(a!, b!), /^c\.yaml:4:7: broker\.listeners\[1\]: expected a host and port not used by another listener.*again \(also listeners\[0\]/, `${a} + ${b}`);
  }
  for (const [a, b] of [["127.0.0.1", "::1"], ["0.0.0.0", "::1"], ["127.0.0.1", "192.168.1.2"]]) t.equal(check(a!, b!), "", `${a} + ${b} may share the port`);
});

t.test("a password or ACL file that cannot be read is reported at its key in the config", async (t) => {
  const text = yaml("broker:", "  auth:", "    passwd_file: /etc/hub/passwd", "    acl_file: /etc/hub/acl");
  const r = loadConfigText(text, "c.yaml", fakeDeps({ "/etc/hub/passwd": "" }));
  t.equal(r.ok, false);
  if (r.ok) return;
  t.equal(
    formatProblems(r.problems),
    'c.yaml:4:15: broker.auth.acl_file: expected a readable ACL file (mosquitto acl_file syntax), found "/etc/hub/acl": cannot read it (ENOENT)',
  );
  t.equal(loadConfigText(text, "c.yaml", fakeDeps({ "/etc/hub/passwd": "", "/etc/hub/acl": "" })).ok, true, "both readable: their contents are checked by broker/auth");
});
