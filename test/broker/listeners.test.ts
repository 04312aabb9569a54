// MQTT over TLS (mqtts listeners) with certificates made at test time: the mqtt client with the right
// CA publishes and subscribes, the wrong CA and TLS 1.1 are refused, client certificates are
// required and checked (their CN becomes peerCommonName), mosquitto_pub/sub work with --cafile, and a
// listener with broken TLS files does not start.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import t from "tap";
import type { Connection } from "../../hub/broker/connection.js";
import { connect, collect, end } from "../support/mqtt.js";
import { certDir } from "../support/certs.js";
import { handshake, startListeners, tlsSpec } from "../support/listeners.js";
import { killOnTeardown, runProcess, spawnProcess } from "../support/spawn.js";

const d = certDir();
t.teardown(() => d.remove());
const ca = d.ca("ca");
const otherCa = d.ca("other-ca");
const server = d.issue(ca, "server", "localhost", "server");
const alice = d.issue(ca, "alice", "alice", "client");
const mallory = d.issue(otherCa, "mallory", "alice", "client");
const caPem = readFileSync(ca.cert);

t.test("mqtts: the mqtt client trusting the CA publishes and subscribes", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key }) }]);
  t.teardown(() => b.stop());
  const url = `mqtts://127.0.0.1:${b.port()}`;
  const sub = await connect(url, { ca: caPem, protocolVersion: 5 });
  const pub = await connect(url, { ca: caPem });
  const got = collect(sub);
  await sub.subscribeAsync("tls/#", { qos: 1 });
  await pub.publishAsync("tls/a", "over TLS", { qos: 1 });
  const [m] = await got.count(1);
  t.equal(m!.payload, "over TLS");
  await end(sub, pub);
  t.ok(b.lines.some((l) => /listening protocol=mqtts host=127\.0\.0\.1 port=\d+ anonymous=yes tls=yes/.test(l)), "one log line for the listener");
});

t.test("mqtts: a client trusting another CA refuses the server; TLS 1.1 is refused by the server", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key }) }]);
  t.teardown(() => b.stop());
  const wrong = await handshake(b.port(), { ca: readFileSync(otherCa.cert) });
  t.match(wrong, { ok: false, code: /UNABLE_TO_VERIFY|SELF_SIGNED|UNABLE_TO_GET_ISSUER/ }, "untrusted server certificate");
  await t.rejects(connect(`mqtts://127.0.0.1:${b.port()}`, { ca: readFileSync(otherCa.cert) }), "the mqtt client does not connect");

  // The client allows TLS 1.0/1.1 (SECLEVEL=0 lets OpenSSL 3 offer them): the refusal is the server's.
  const old = await handshake(b.port(), { ca: caPem, minVersion: "TLSv1", maxVersion: "TLSv1.1", ciphers: "DEFAULT@SECLEVEL=0" });
  t.match(old, { ok: false, code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" }, "server answers TLS 1.1 with a protocol_version alert");
  const control = await handshake(b.port(), { ca: caPem, minVersion: "TLSv1", maxVersion: "TLSv1.2", ciphers: "DEFAULT@SECLEVEL=0" });
  t.equal(control.ok, true, "the same client offering up to TLS 1.2 gets in");
  if (control.ok) control.socket.destroy();
});

t.test("min_version TLSv1.3 refuses a TLS 1.2 client", async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key }, { min_version: "TLSv1.3" }) }]);
  t.teardown(() => b.stop());
  t.match(await handshake(b.port(), { ca: caPem, maxVersion: "TLSv1.2" }), { ok: false, code: "ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION" });
  const ok = await handshake(b.port(), { ca: caPem });
  t.equal(ok.ok, true);
  if (ok.ok) ok.socket.destroy();
});

t.test("require_client_cert: none refused, other CA refused, the right one accepted with its CN", async (t) => {
  const b = await startListeners([
    { host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key, ca: ca.cert }, { require_client_cert: true, identity_as_username: true }) },
  ]);
  t.teardown(() => b.stop());
  t.ok(
    b.lines.some((l) => /listening protocol=mqtts .*anonymous=no tls=yes client_cert=required/.test(l)),
    "logged as not anonymous: every client is named by its certificate, even on loopback",
  );
  const none = await handshake(b.port(), { ca: caPem, waitForServer: true });
  t.equal(none.ok, false, `no certificate: ${none.ok ? "" : none.code}`);
  const other = await handshake(b.port(), { ca: caPem, cert: readFileSync(mallory.cert), key: readFileSync(mallory.key), waitForServer: true });
  t.equal(other.ok, false, `certificate from another CA: ${other.ok ? "" : other.code}`);
  t.equal(b.broker.core.sessions.size, 0, "neither reached the broker");

  const url = `mqtts://127.0.0.1:${b.port()}`;
  const c = await connect(url, { ca: caPem, cert: readFileSync(alice.cert), key: readFileSync(alice.key), clientId: "alice-phone" });
  const conn = b.broker.core.sessions.get("alice-phone")?.link as Connection | undefined;
  t.equal(conn?.socket.peerCommonName, "alice", "the verified CN is the socket's peerCommonName");
  t.equal(conn?.listener.identityAsUsername, true, "the listener info says the CN is the user name");
  await c.publishAsync("x", "y", { qos: 1 });
  await end(c);
});

t.test("identity_as_username: a certificate CN holding U+0000 cannot name a user (checklist B5)", async (t) => {
  const nul = d.issueRawCn(ca, "nul", Buffer.from("ev\u0000il"));
  const b = await startListeners([
    { host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key, ca: ca.cert }, { require_client_cert: true, identity_as_username: true }) },
  ]);
  t.teardown(() => b.stop());
  const r = await handshake(b.port(), { ca: caPem, cert: readFileSync(nul.cert), key: readFileSync(nul.key), waitForServer: true });
  t.equal(r.ok, false, "refused");
  t.ok(b.lines.some((l) => /refusing client: its certificate cannot name a user/.test(l) && /not valid UTF-8 text/.test(l)), "logged why");
  // Ill-formed UTF-8 (overlong C0 AF) or a lone surrogate in a CN never gets this far: OpenSSL 3
  // refuses to decode such a certificate, on the client and on the server alike.
  const overlong = d.issueRawCn(ca, "overlong", Buffer.from([0x41, 0xc0, 0xaf, 0x42]));
  await t.rejects(handshake(b.port(), { ca: caPem, cert: readFileSync(overlong.cert), key: readFileSync(overlong.key) }), { code: "ERR_OSSL_ASN1_INVALID_UTF8STRING" });
});

const noMosquitto = spawnSync("mosquitto_sub", ["--help"]).error ? "mosquitto_sub is not installed (apt-get install mosquitto-clients)" : false;
if (noMosquitto) t.comment(`skipping the mosquitto test: ${noMosquitto}`);

t.test("mosquitto_sub and mosquitto_pub over TLS with --cafile", { skip: noMosquitto }, async (t) => {
  const b = await startListeners([{ host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key }) }]);
  t.teardown(() => b.stop());
  const port = String(b.port());
  // -d traces the protocol (line-buffered through stdbuf): publish once "Subscribed" is printed.
  const sub = spawnProcess("mosquitto_sub", ["-d", "-h", "127.0.0.1", "-p", port, "--cafile", ca.cert, "-t", "m/#", "-C", "1", "-v", "-W", "10"], {
    lineBuffered: true,
  });
  killOnTeardown(t, sub);
  await sub.waitFor(/^Subscribed \(mid: \d+\)/, { stream: "stdout" });
  const pub = await runProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "--cafile", ca.cert, "-t", "m/1", "-m", "hello", "-q", "1"]);
  t.equal(pub.code, 0, pub.stderr);
  t.equal((await sub.waitExit()).code, 0, sub.transcript());
  t.ok(sub.out.includes("m/1 hello"), "mosquitto_sub received it over TLS");
  const wrong = await runProcess("mosquitto_pub", ["-h", "127.0.0.1", "-p", port, "--cafile", otherCa.cert, "-t", "m/1", "-m", "x"]);
  t.not(wrong.code, 0, "with the wrong CA mosquitto_pub fails");
});

t.test("broken TLS files: the listener does not start and the error names the file", async (t) => {
  const empty = d.path("empty.pem");
  writeFileSync(empty, "");
  const cases: Array<[string, Parameters<typeof tlsSpec>[0], RegExp]> = [
    ["empty CA", { cert: server.cert, key: server.key, ca: empty }, /tls\.ca_file ".*empty\.pem": the file is empty/],
    ["missing CA", { cert: server.cert, key: server.key, ca: d.path("nope.pem") }, /tls\.ca_file ".*nope\.pem": cannot read it \(ENOENT\)/],
    ["key of another certificate", { cert: server.cert, key: alice.key }, /tls\.key_file ".*alice\.key": the key does not belong to the certificate/],
    ["empty certificate", { cert: empty, key: server.key }, /tls\.cert_file ".*empty\.pem": the file is empty/],
    ["a key where the certificate should be", { cert: server.key, key: server.key }, /tls\.cert_file ".*server\.key": the file holds no PEM certificate/],
  ];
  for (const [name, files, msg] of cases) {
    await t.rejects(
      startListeners([{ host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec(files, { require_client_cert: files.ca !== undefined }) }]),
      { message: msg },
      name,
    );
  }
});
