// TLS material reloads (SIGHUP -> broker.reload() -> reloadTls()) without dropping connected clients,
// a broken file keeps the old certificate (in-process, and with the built hub and a real SIGHUP);
// and the per-listener max_connections cap. The built-hub test needs `npm run build` first.
import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import net from "node:net";
import t from "tap";
import { certDir } from "../support/certs.js";
import { fingerprintOf, handshake, startListeners, tlsSpec } from "../support/listeners.js";
import { collect, connect, end } from "../support/mqtt.js";
import { freePort, killOnTeardown, runHub, spawnHub } from "../support/spawn.js";

const d = certDir();
t.teardown(() => d.remove());
const ca = d.ca("ca");
const first = d.issue(ca, "first", "localhost", "server");
const second = d.issue(ca, "second", "localhost", "server");

t.test("reload: new handshakes get the new certificate, connected clients stay; a broken file keeps the old", async (t) => {
  const cert = d.path("live.pem");
  const key = d.path("live.key");
  copyFileSync(first.cert, cert);
  copyFileSync(first.key, key);
  const b = await startListeners([
    { host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert, key }) },
    { host: "127.0.0.1", port: 0, protocol: "wss", tls: tlsSpec({ cert, key }) },
  ]);
  t.teardown(() => b.stop());
  const caPem = readFileSync(ca.cert);
  const before = await handshake(b.port(0), { ca: caPem });
  t.equal(before.ok && before.fingerprint, fingerprintOf(first.cert), "serving the first certificate");
  if (before.ok) before.socket.destroy();
  const c = await connect(`mqtts://127.0.0.1:${b.port(0)}`, { ca: caPem });
  const got = collect(c);
  await c.subscribeAsync("r/#", { qos: 1 });

  copyFileSync(second.cert, cert);
  copyFileSync(second.key, key);
  await b.broker.reload?.(); // what SIGHUP calls (hub/lifecycle.ts)
  for (const [i, what] of [[0, "mqtts"], [1, "wss"]] as const) {
    const after = await handshake(b.port(i), { ca: caPem });
    t.equal(after.ok && after.fingerprint, fingerprintOf(second.cert), `${what}: a new connection sees the new certificate`);
    if (after.ok) after.socket.destroy();
  }
  await c.publishAsync("r/1", "still here", { qos: 1 });
  t.equal((await got.count(1))[0]!.payload, "still here", "the client connected before the reload still works");

  writeFileSync(cert, "");
  const r = b.broker.reloadTls();
  t.match(r, [{ ok: false, error: /live\.pem.*empty/ }, { ok: false }], "both listeners report the broken file");
  t.ok(b.lines.some((l) => /TLS certificate not reloaded; the previous one stays in use/.test(l)), "logged why");
  const kept = await handshake(b.port(0), { ca: caPem });
  t.equal(kept.ok && kept.fingerprint, fingerprintOf(second.cert), "still serving the last good certificate");
  if (kept.ok) kept.socket.destroy();
  await c.publishAsync("r/2", "and still", { qos: 1 });
  t.equal((await got.count(2))[1]!.payload, "and still");
  await end(c);
});

t.test("max_connections per listener: the extra connection is refused at once, others unaffected", async (t) => {
  const b = await startListeners([
    { host: "127.0.0.1", port: 0, max_connections: 2 },
    { host: "127.0.0.1", port: 0 },
  ]);
  t.teardown(() => b.stop());
  const url = `mqtt://127.0.0.1:${b.port(0)}`;
  const c1 = await connect(url);
  const c2 = await connect(url);
  const refused = await new Promise<string>((resolve) => {
    const s = net.connect(b.port(0), "127.0.0.1");
    s.on("close", () => resolve("closed"));
    s.on("error", () => {});
    s.resume();
  });
  t.equal(refused, "closed", "the third is closed by the listener");
  const other = await connect(`mqtt://127.0.0.1:${b.port(1)}`);
  t.pass("another listener still accepts");
  await c1.publishAsync("x", "still fine", { qos: 1 });
  t.ok(b.lines.some((l) => /listener connection limit reached/.test(l)), "logged");
  await end(c1, c2, other);
});

t.test("the built hub: SIGHUP swaps the certificate of its mqtts listener; a missing CA file stops the start", async (t) => {
  const cert = d.path("hub.pem");
  const key = d.path("hub.key");
  copyFileSync(first.cert, cert);
  copyFileSync(first.key, key);
  const [plain, tlsPort] = [await freePort(), await freePort()];
  const config = d.path("hub.yaml");
  const yaml = (ca: string) =>
    [
      "hardware: simulate",
      `state_dir: ${d.path("state")}`,
      "broker:",
      "  listeners:",
      `    - { host: 127.0.0.1, port: ${plain} }`,
      `    - { host: 127.0.0.1, port: ${tlsPort}, protocol: mqtts, tls: { cert_file: ${cert}, key_file: ${key}${ca} } }`,
      "",
    ].join("\n");
  writeFileSync(config, yaml(""));
  const hub = spawnHub(["run", "--config", config]);
  killOnTeardown(t, hub);
  await hub.waitFor(/hub running/, { stream: "stdout" });
  t.ok(hub.out.some((l) => /listening protocol=mqtts host=127\.0\.0\.1 port=\d+ anonymous=yes tls=yes client_cert=no/.test(l)), "logged at start");
  const caPem = readFileSync(ca.cert);
  const c = await connect(`mqtts://127.0.0.1:${tlsPort}`, { ca: caPem });
  copyFileSync(second.cert, cert);
  copyFileSync(second.key, key);
  hub.kill("SIGHUP");
  await hub.waitFor(/TLS certificate reloaded/, { stream: "stdout" });
  const after = await handshake(tlsPort, { ca: caPem });
  t.equal(after.ok && after.fingerprint, fingerprintOf(second.cert), "new connections get the new certificate");
  if (after.ok) after.socket.destroy();
  await c.publishAsync("still", "connected", { qos: 1 });
  t.pass("the client connected before SIGHUP still works");
  await end(c);
  hub.kill("SIGTERM");
  t.equal((await hub.waitExit()).code, 0);

  writeFileSync(config, yaml(`, ca_file: ${d.path("missing-ca.pem")}, require_client_cert: true`));
  const bad = await runHub(["run", "--config", config]);
  t.equal(bad.code, 78, "refused as a config problem");
  t.match(bad.stderr, /broker\.listeners\[1\]\.tls\.ca_file: expected a readable PEM file of CA certificates, found ".*missing-ca\.pem": cannot read it \(ENOENT\)/);
});
