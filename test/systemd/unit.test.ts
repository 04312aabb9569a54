// systemd/hub.service as systemd reads it: `systemd-analyze verify` prints nothing (it exits 0 on
// typos and unknown options, so any output fails), `systemd-analyze security` scores 4.0 or less,
// and the settings users rely on are there while those that would cut the hub off from GPIO, I2C,
// serial or V8's JIT (../shared/hardware-notes.md) are not. Skipped where systemd-analyze is missing.
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { REPO_ROOT, runProcess } from "../support/spawn.js";

const UNIT = join(REPO_ROOT, "systemd/hub.service");
const ANALYZE = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].find((p) => existsSync(p));
const skip = ANALYZE ? false : "systemd-analyze is not installed (apt-get install systemd)";

/** Service/Unit/Install settings: name → every value given (in order), comments and sections dropped. */
function settings(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";") || line.startsWith("[")) continue;
    const eq = line.indexOf("=");
    const k = line.slice(0, eq);
    m.set(k, [...(m.get(k) ?? []), line.slice(eq + 1)]);
  }
  return m;
}

/**
 * The unit to check. verify also checks that ExecStart's program exists: where node is not
 * /usr/bin/node (e.g. /usr/local/bin in the node Docker images) check a copy pointing at this node,
 * as install.sh would write it.
 */
async function unitForThisMachine(t: { teardown(fn: () => unknown): void }): Promise<string> {
  if (existsSync("/usr/bin/node")) return UNIT;
  const dir = await mkdtemp(join(tmpdir(), "hub-unit-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const copy = join(dir, "hub.service");
  await writeFile(copy, readFileSync(UNIT, "utf8").replace("ExecStart=/usr/bin/node ", `ExecStart=${process.execPath} `));
  return copy;
}

t.test("systemd-analyze verify prints nothing", { skip }, async (t) => {
  const unit = await unitForThisMachine(t);
  const r = await runProcess(ANALYZE!, ["verify", unit], { timeoutMs: 20_000 });
  t.equal(`${r.stdout}${r.stderr}`.trim(), "", "no warning of any kind");
  t.equal(r.code, 0);
});

t.test("systemd-analyze verify does catch a typo (so the check above can fail)", { skip }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "hub-unit-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = join(dir, "hub.service");
  const text = readFileSync(await unitForThisMachine(t), "utf8").replace("ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes");
  await writeFile(bad, text);
  const r = await runProcess(ANALYZE!, ["verify", bad], { timeoutMs: 20_000 });
  t.match(`${r.stdout}${r.stderr}`, /ProtectHomes/);
});

t.test("systemd-analyze security: exposure 4.0 or less", { skip }, async (t) => {
  const r = await runProcess(ANALYZE!, ["security", "--offline=true", UNIT], { timeoutMs: 20_000 });
  const m = /Overall exposure level for hub\.service: (\d+(?:\.\d+)?)/.exec(r.stdout);
  t.ok(m, `a score is printed\n${r.stdout}\n${r.stderr}`);
  const score = Number(m?.[1]);
  t.ok(score <= 4.0, `exposure ${score} <= 4.0`);
  t.comment(`systemd-analyze security --offline=true systemd/hub.service: ${score}`);
});

t.test("the unit keeps hardware access and says what users rely on", async (t) => {
  const s = settings(readFileSync(UNIT, "utf8"));
  const one = (k: string) => s.get(k)?.at(-1);

  // Hardware: none of these may be on (they hide /dev, make /sys read-only, or kill V8's JIT).
  for (const k of ["PrivateDevices", "ProtectKernelTunables", "MemoryDenyWriteExecute", "PrivateUsers", "ProcSubset"]) {
    t.notOk(s.has(k) && /^(yes|true|on|1|pid)$/.test(one(k)!), `${k} is not enabled`);
  }
  // A device allow-list (ProtectClock implies one) would shut out serial adapters plugged in later.
  t.notOk(s.has("DeviceAllow"), "no DeviceAllow");
  t.notOk(s.has("ProtectClock"), "no ProtectClock (it implies a device allow-list)");
  t.not(one("DevicePolicy") ?? "auto", "closed");
  t.not(one("DevicePolicy") ?? "auto", "strict");
  t.equal(one("SupplementaryGroups"), "gpio i2c dialout");
  t.match(one("RestrictAddressFamilies"), /AF_UNIX/, "AF_UNIX: systemd-notify and the journal");
  t.match(one("RestrictAddressFamilies"), /AF_INET AF_INET6/);

  // Identity and files.
  t.equal(one("User"), "hub");
  t.equal(one("StateDirectory"), "hub");
  t.equal(one("ConfigurationDirectory"), "hub");
  t.equal(one("ProtectSystem"), "strict");
  t.equal(one("ProtectHome"), "yes");
  t.equal(one("PrivateTmp"), "yes");
  t.equal(one("NoNewPrivileges"), "yes");
  t.equal(one("CapabilityBoundingSet"), "", "no capabilities at all");
  t.equal(one("LockPersonality"), "yes");
  t.equal(one("SystemCallErrorNumber"), "EPERM", "a refused system call fails; it does not kill Node");

  // Start, readiness, watchdog, restart.
  const exec = one("ExecStart")!;
  t.match(exec, /^\/usr\/bin\/node --max-semi-space-size=1 --max-old-space-size=(\d+) \/opt\/hub\/dist\/bundle\/hub\.mjs run --config \/etc\/hub\/config\.yaml$/);
  t.equal(one("Type"), "notify");
  t.equal(one("NotifyAccess"), "all", "READY comes from a systemd-notify child process");
  t.match(one("WatchdogSec"), /^\d+s$/);
  t.equal(one("Restart"), "on-failure");
  t.equal(one("RestartPreventExitStatus"), "78", "a bad config (EX_CONFIG) does not restart-loop");
  t.equal(one("ExecReload"), "/bin/kill -HUP $MAINPID");
  t.match(one("Wants"), /network-online\.target/);
  t.match(one("After"), /network-online\.target/);
  t.match(one("After"), /time-sync\.target/);
  t.notMatch(one("Wants"), /time-sync/, "a passive target: ordered after, never pulled in (systemd.special(7))");
  t.equal(one("WantedBy"), "multi-user.target");

  // Memory for a Pi Zero 2 W (512 MB): V8's old space well under the cgroup limit.
  const oldSpace = Number(/--max-old-space-size=(\d+)/.exec(exec)?.[1]);
  const max = Number(/^(\d+)M$/.exec(one("MemoryMax") ?? "")?.[1]);
  t.ok(oldSpace > 0 && max > 0, "both set, MemoryMax in M");
  t.ok(oldSpace + 64 <= max, `old space ${oldSpace} MB + 64 MB for the rest <= MemoryMax ${max} MB`);
  t.ok(max <= 300, "MemoryMax leaves most of a Pi Zero 2 W's 512 MB to the system");

  // Journal only: no log file on the SD card.
  t.equal(one("StandardOutput"), "journal");
  t.equal(one("StandardError"), "journal");
});
