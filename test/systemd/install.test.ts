// systemd/install.sh staged into a temporary root with DESTDIR, as a package build would run it:
// every file it creates with its mode, a second run that changes nothing (and keeps an edited
// config), an upgrade that replaces the program but not config or state, --uninstall that removes
// what it installed and keeps config and state, and its refusals to delete what is not its own.
// The live path (users, chown, systemctl) needs root on a real systemd machine: not run here.
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import t from "tap";
import { HUB_BUNDLE, packageVersion, REPO_ROOT, runProcess } from "../support/spawn.js";

const INSTALL = join(REPO_ROOT, "systemd/install.sh");
const skip = existsSync(HUB_BUNDLE) ? false : "run npm run build first (install.sh installs the build)";

type Tap = { teardown(fn: () => unknown): void };

async function tempRoot(t: Tap): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "hub-install-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function install(destdir: string, args: string[] = []) {
  const env: NodeJS.ProcessEnv = { ...process.env, DESTDIR: destdir };
  // The installer puts this node's path into the unit and the command; make it the one running us.
  env.NODE = process.execPath;
  return runProcess("bash", [INSTALL, ...args], { env, timeoutMs: 60_000 });
}

/** Every path under root (node_modules summarised by its top-level entries) → "mode type". */
function listing(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      const rel = relative(root, p);
      const st = lstatSync(p);
      const kind = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : "f";
      out.set(rel, `${(st.mode & 0o7777).toString(8).padStart(4, "0")} ${kind}`);
      if (st.isDirectory() && !/node_modules\/(@[^/]+\/)?[^/@]+$/.test(rel)) walk(p);
    }
  };
  walk(root);
  return out;
}

const mode = (p: string) => (lstatSync(p).mode & 0o7777).toString(8).padStart(4, "0");

t.test("DESTDIR install: the files, their modes, twice, then --uninstall", { skip }, async (t) => {
  const root = await tempRoot(t);
  const first = await install(root);
  t.equal(first.code, 0, first.stderr);
  t.match(first.stdout, /created \/etc\/hub\/config\.yaml/);
  t.match(first.stdout, /DESTDIR set: not creating users or starting the service/);

  // Outside the prefix: exactly these, with these modes.
  const files = listing(root);
  const outside = [...files].filter(([p]) => !p.startsWith("opt/hub/")).map(([p, m]) => `${m} ${p}`);
  t.same(outside.sort(), [
    "0640 f etc/hub/config.yaml",
    "0644 f usr/lib/systemd/system/hub.service",
    "0644 f usr/lib/sysusers.d/hub.conf",
    "0750 d etc/hub",
    "0755 d etc",
    "0755 d opt",
    "0755 d opt/hub",
    "0755 d usr",
    "0755 d usr/bin",
    "0755 d usr/lib",
    "0755 d usr/lib/systemd",
    "0755 d usr/lib/systemd/system",
    "0755 d usr/lib/sysusers.d",
    "0755 f usr/bin/hub",
  ]);
  t.notOk(existsSync(join(root, "var")), "no /var/lib/hub: systemd creates it (StateDirectory=) with the right owner");

  // The program: the build and production dependencies only.
  const opt = join(root, "opt/hub");
  for (const p of ["dist/bundle/hub.mjs", "dist/hub/main.js", "dist/hub/notify.js", "dist/hub/status.js", "dist/drivers", "package.json", "package-lock.json", "config.example.yaml", "README.md", "node_modules/mqtt/package.json", "node_modules/zod/package.json", "node_modules/yaml/package.json", "systemd/hub.service", "systemd/hub.sysusers", ".hub-install"]) {
    t.ok(existsSync(join(opt, p)), `opt/hub/${p}`);
  }
  for (const p of ["node_modules/typescript", "node_modules/tap", "node_modules/@biomejs", "node_modules/fast-check", "dist/test", "test", "hub"]) {
    t.notOk(existsSync(join(opt, p)), `no opt/hub/${p} (development only)`);
  }
  t.equal(mode(join(opt, "dist/hub/app.js")), "0644");
  t.equal(mode(join(opt, "systemd/install.sh")), "0755", "kept for --uninstall");
  const writable = [...files].filter(([, m]) => (Number.parseInt(m.slice(0, 4), 8) & 0o022) !== 0).map(([p]) => p);
  t.same(writable, [], "nothing group- or world-writable");
  t.equal(JSON.parse(readFileSync(join(opt, "package.json"), "utf8")).version, packageVersion());

  // The unit and the command point at the prefix and at this node.
  const unit = readFileSync(join(root, "usr/lib/systemd/system/hub.service"), "utf8");
  t.match(unit, `ExecStart=${process.execPath} --max-semi-space-size=1 --max-old-space-size=`);
  t.match(unit, " /opt/hub/dist/bundle/hub.mjs run --config /etc/hub/config.yaml\n");
  t.equal(
    unit.replace(process.execPath, "/usr/bin/node"),
    readFileSync(join(REPO_ROOT, "systemd/hub.service"), "utf8"),
    "otherwise the repository's unit unchanged",
  );
  const analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));
  if (analyze) {
    const v = await runProcess(analyze, ["verify", join(root, "usr/lib/systemd/system/hub.service")]);
    t.equal(`${v.stdout}${v.stderr}`.trim(), "", "systemd-analyze verify: the installed unit is clean too");
  }
  const wrapper = readFileSync(join(root, "usr/bin/hub"), "utf8");
  t.match(wrapper, `exec ${process.execPath} --max-semi-space-size=1 /opt/hub/dist/bundle/hub.mjs "$@"`);

  // The config: the example with the state in /var/lib/hub, valid (the installer ran hub check).
  const config = readFileSync(join(root, "etc/hub/config.yaml"), "utf8");
  t.match(config, /^state_dir: \/var\/lib\/hub$/m);
  t.match(config, /^# yaml-language-server: \$schema=\/opt\/hub\/config\.schema\.json$/m);
  t.match(first.stdout, /config\.yaml: ok/);
  t.match(first.stdout, new RegExp(`installed the hub ${packageVersion().replace(/\./g, "\\.")} in `));

  // Second run: same files, same modes; the user's edit to the config is kept.
  const edited = `${config}\n# my own note\n`;
  writeFileSync(join(root, "etc/hub/config.yaml"), edited);
  chmodSync(join(root, "etc/hub/config.yaml"), 0o640);
  mkdirSync(join(root, "var/lib/hub"), { recursive: true });
  writeFileSync(join(root, "var/lib/hub/retained.db"), "state");
  writeFileSync(join(opt, "dist/hub/stale-from-old-version.js"), "");
  const second = await install(root);
  t.equal(second.code, 0, second.stderr);
  t.match(second.stdout, /kept the existing \/etc\/hub\/config\.yaml/);
  t.match(second.stdout, /config\.yaml: ok/, "the kept config was checked with the new version");
  t.equal(readFileSync(join(root, "etc/hub/config.yaml"), "utf8"), edited, "config not overwritten");
  t.equal(readFileSync(join(root, "var/lib/hub/retained.db"), "utf8"), "state", "state kept");
  t.notOk(existsSync(join(opt, "dist/hub/stale-from-old-version.js")), "an upgrade replaces the program as a whole");
  const again = listing(root);
  again.delete("var");
  again.delete("var/lib");
  again.delete("var/lib/hub");
  again.delete("var/lib/hub/retained.db");
  t.same([...again].sort(), [...files].sort(), "idempotent: the same files with the same modes");
  t.notOk(existsSync(join(root, "opt/hub.new")) || existsSync(join(root, "opt/hub.old")), "no staging left behind");

  // Uninstall: the program, unit, sysusers file and command go; config and state stay.
  const un = await install(root, ["--uninstall"]);
  t.equal(un.code, 0, un.stderr);
  for (const p of ["opt/hub", "usr/lib/systemd/system/hub.service", "usr/lib/sysusers.d/hub.conf", "usr/bin/hub"]) {
    t.notOk(existsSync(join(root, p)), `${p} removed`);
  }
  t.equal(readFileSync(join(root, "etc/hub/config.yaml"), "utf8"), edited, "config kept");
  t.equal(readFileSync(join(root, "var/lib/hub/retained.db"), "utf8"), "state", "state kept");
  t.match(un.stdout, /kept the configuration \(\/etc\/hub\), the state \(\/var\/lib\/hub\)/);
  const twice = await install(root, ["--uninstall"]);
  t.equal(twice.code, 0, "uninstalling again is harmless");
});

t.test("the installed copy runs: its own dependencies, the command's default --config", { skip }, async (t) => {
  const dir = await tempRoot(t);
  // A prefix reachable at its real path: <dir>/prefix -> <dir>/root<dir>/prefix, so the command
  // installed under DESTDIR (which names the prefix without DESTDIR) can run here.
  const prefix = join(dir, "prefix");
  const root = join(dir, "root");
  const r = await install(root, ["--prefix", prefix]);
  t.equal(r.code, 0, r.stderr);
  symlinkSync(join(root, prefix), prefix);
  const hub = join(root, "usr/bin/hub");
  t.match(readFileSync(join(root, "usr/lib/systemd/system/hub.service"), "utf8"), ` ${prefix}/dist/bundle/hub.mjs run `);

  const v = await runProcess(hub, ["--version"], { env: { ...process.env, JOURNAL_STREAM: "" } });
  t.equal(v.stdout.trim(), packageVersion(), v.stderr);
  const check = await runProcess(hub, ["check", "--config", join(root, "etc/hub/config.yaml")]);
  t.equal(check.code, 0, check.stderr);
  // Without --config the command reads /etc/hub/config.yaml (absent here: a config error, 78).
  const dflt = await runProcess(hub, ["check"]);
  t.equal(dflt.code, 78);
  t.match(dflt.stderr, /\/etc\/hub\/config\.yaml/);
  // `hub status` loads the mqtt client from the copied node_modules; no hub runs on this config's
  // port here (or another broker does): either way exit 69, not a missing module.
  const status = await runProcess(hub, ["status", "--config", join(root, "etc/hub/config.yaml")]);
  t.equal(status.code, 69, status.stderr);
  t.match(status.stderr, /not answering|is not the hub/);
});

t.test("the sysusers.d file creates the user hub and the hardware groups", { skip }, async (t) => {
  const sysusers = ["/usr/bin/systemd-sysusers", "/bin/systemd-sysusers"].find((p) => existsSync(p));
  if (!sysusers) {
    t.pass("systemd-sysusers is not installed (apt-get install systemd); not checked");
    return;
  }
  const root = await tempRoot(t);
  mkdirSync(join(root, "etc"));
  const r = await runProcess(sysusers, [`--root=${root}`, join(REPO_ROOT, "systemd/hub.sysusers")]);
  t.equal(r.code, 0, r.stderr);
  const passwd = readFileSync(join(root, "etc/passwd"), "utf8");
  const group = readFileSync(join(root, "etc/group"), "utf8");
  t.match(passwd, /^hub:x:\d+:\d+:[^:]*:\/var\/lib\/hub:\/usr\/sbin\/nologin$/m);
  for (const g of ["hub", "gpio", "i2c", "dialout"]) t.match(group, new RegExp(`^${g}:x:\\d+:`, "m"), `group ${g}`);
});

t.test("the installer refuses to delete what it did not install", { skip }, async (t) => {
  const root = await tempRoot(t);
  mkdirSync(join(root, "opt/hub"), { recursive: true });
  writeFileSync(join(root, "opt/hub/precious"), "not ours");
  const un = await install(root, ["--uninstall"]);
  t.not(un.code, 0);
  t.match(un.stderr, /was not installed by this script/);
  const inst = await install(root);
  t.not(inst.code, 0);
  t.match(inst.stderr, /exists and was not installed by this script/);
  t.equal(readFileSync(join(root, "opt/hub/precious"), "utf8"), "not ours");
  t.notOk(existsSync(join(root, "opt/hub.new")), "staging cleaned up");

  for (const bad of ["/", "/usr", "relative/dir"]) {
    const r = await install(root, ["--prefix", bad]);
    t.not(r.code, 0, `--prefix ${bad} refused`);
  }
});

t.test("an upgrade the kept config does not pass changes nothing", { skip }, async (t) => {
  const root = await tempRoot(t);
  mkdirSync(join(root, "etc/hub"), { recursive: true });
  const bad = "broker:\n  listeners:\n    - { host: 127.0.0.1, port: 99999 }\n";
  writeFileSync(join(root, "etc/hub/config.yaml"), bad);
  const r = await install(root);
  t.not(r.code, 0);
  t.match(r.stderr, /port: expected an integer 0\.\.65535/);
  t.match(r.stderr, /has problems with this version \(above\); nothing was changed/);
  t.notOk(existsSync(join(root, "opt/hub")), "the program was not installed");
  t.notOk(existsSync(join(root, "opt/hub.new")), "staging cleaned up");
  t.notOk(existsSync(join(root, "usr")), "nor the unit");
  t.equal(readFileSync(join(root, "etc/hub/config.yaml"), "utf8"), bad, "the config is left alone");
});
