// The bridge over TLS against mosquitto with certificates made now by openssl: server verified
// against our CA, client-certificate authentication (require_certificate true), a wrong CA refused
// with a clear log line, insecure: true warned about; SNI and ALPN as sent on the wire.
import tls from "node:tls";
import { readFileSync } from "node:fs";
import t from "tap";
import { collect, connect, end } from "../support/mqtt.js";
import { type Cloud, makePki, missingTools, type Pki, startMosquitto } from "./fixtures/cloud.js";
import { harness, tempDir, until } from "./fixtures/harness.js";

const missing = missingTools();
if (missing) {
  t.test("TLS bridge tests", { skip: missing }, async () => {});
} else {
  let cloud: Cloud;
  let pki: Pki;
  t.before(async () => {
    const dir = tempDir(t);
    pki = makePki(dir);
    cloud = await startMosquitto(dir, [`cafile ${pki.ca}`, `certfile ${pki.serverCert}`, `keyfile ${pki.serverKey}`, "require_certificate true"], "tls");
  });
  t.teardown(() => cloud?.stop());

  const url = (port: number) => `mqtts://127.0.0.1:${port}`;
  const topics = [{ pattern: "#", local_prefix: "t/", remote_prefix: "tls/" }];

  t.test("CA + client certificate: the bridge connects and forwards", async (t) => {
    const watcher = await connect(url(cloud.port), { protocolVersion: 5, clientId: "tls-watch", ca: readFileSync(pki.ca), cert: readFileSync(pki.clientCert), key: readFileSync(pki.clientKey) });
    t.teardown(() => end(watcher));
    const rx = collect(watcher);
    await watcher.subscribeAsync("tls/#", { qos: 1 });
    const h = await harness(t, cloud.port, { client_id: "hub-tls", topics, tls: { ca_file: pki.ca, cert_file: pki.clientCert, key_file: pki.clientKey } }, { scheme: "mqtts" });
    h.bridge.stats(); // online (the harness waited for it)
    await h.pub("t/reading", "21.5");
    await until("the reading upstream", () => rx.got.some((m) => m.topic === "tls/reading" && m.payload === "21.5"));
    t.notMatch(h.log.lines.join("\n"), /WARN/, "no warnings with a proper setup");
  });

  t.test("a broker certificate from another CA is refused with a clear error", async (t) => {
    const h = await harness(t, cloud.port, { client_id: "hub-wrong-ca", topics, tls: { ca_file: pki.otherCa, cert_file: pki.clientCert, key_file: pki.clientKey } }, { start: false, scheme: "mqtts" });
    await h.bridge.start();
    t.teardown(() => h.bridge.stop());
    await until("the refusal logged", () => h.log.lines.some((l) => /cannot connect upstream/.test(l)));
    const line = h.log.lines.find((l) => /cannot connect upstream/.test(l))!;
    t.match(line, /WARN .*reason="the broker's TLS certificate is not trusted \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\): check tls\.ca_file"/);
    t.notOk(h.bridge.stats().online);
  });

  t.test("without a client certificate the broker refuses us, and the log says why", async (t) => {
    const h = await harness(t, cloud.port, { client_id: "hub-no-cert", topics, tls: { ca_file: pki.ca } }, { start: false, scheme: "mqtts" });
    await h.bridge.start();
    t.teardown(() => h.bridge.stop());
    await until("the refusal logged", () => h.log.lines.some((l) => /cannot connect upstream/.test(l)));
    t.match(h.log.lines.find((l) => /cannot connect upstream/.test(l)), /the broker refused our TLS client certificate: check tls\.cert_file and tls\.key_file \(tlsv13 alert certificate required\)"/);
    t.notOk(h.bridge.stats().online);
  });

  t.test("a certificate for another host name is refused; servername says which name to check", async (t) => {
    const h = await harness(t, cloud.port, { client_id: "hub-sni", topics, tls: { ca_file: pki.ca, cert_file: pki.clientCert, key_file: pki.clientKey, servername: "cloud.example.com" } }, { start: false, scheme: "mqtts" });
    await h.bridge.start();
    t.teardown(() => h.bridge.stop());
    await until("the refusal logged", () => h.log.lines.some((l) => /cannot connect upstream/.test(l)));
    t.match(h.log.lines.find((l) => /cannot connect upstream/.test(l)), /certificate is for another host name: check the URL or tls\.servername/);
  });

  t.test("insecure: true connects despite the wrong CA and is logged as a warning at every start", async (t) => {
    const h = await harness(t, cloud.port, { client_id: "hub-insecure", topics, tls: { ca_file: pki.otherCa, cert_file: pki.clientCert, key_file: pki.clientKey, insecure: true } }, { scheme: "mqtts" });
    t.ok(h.bridge.stats().online);
    await h.bridge.stop();
    await h.bridge.start();
    await h.status("online");
    t.equal(h.log.lines.filter((l) => /WARN .*TLS certificate verification is OFF for this bridge/.test(l)).length, 2);
  });

  t.test("SNI, ALPN and TLS >= 1.2 on the wire (AWS IoT Core on port 443 needs x-amzn-mqtt-ca)", async (t) => {
    const seen: { servername?: string; alpn?: string[]; version?: string }[] = [];
    const server = tls.createServer({
      cert: readFileSync(pki.serverCert),
      key: readFileSync(pki.serverKey),
      ALPNCallback: ({ servername, protocols }) => {
        seen.push({ servername, alpn: protocols });
        return protocols[0];
      },
    });
    server.on("secureConnection", (s) => {
      seen.at(-1)!.version = s.getProtocol() ?? undefined;
      s.destroy(); // not an MQTT server: the bridge just retries
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    t.teardown(() => server.close());
    const port = (server.address() as { port: number }).port;
    const h = await harness(
      t,
      port,
      { client_id: "hub-alpn", url: `mqtts://127.0.0.1:${port}`, topics, tls: { ca_file: pki.ca, servername: "localhost", alpn: ["x-amzn-mqtt-ca"] } },
      { start: false },
    );
    await h.bridge.start();
    t.teardown(() => h.bridge.stop());
    await until("a TLS connection", () => seen.some((s) => s.version !== undefined));
    t.same(seen[0], { servername: "localhost", alpn: ["x-amzn-mqtt-ca"], version: "TLSv1.3" });

    // A server that stops at TLS 1.1 is refused by the bridge (minVersion TLSv1.2).
    const old = tls.createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), maxVersion: "TLSv1.1", minVersion: "TLSv1" });
    await new Promise<void>((resolve) => old.listen(0, "127.0.0.1", resolve));
    t.teardown(() => old.close());
    const oldPort = (old.address() as { port: number }).port;
    const h2 = await harness(t, oldPort, { client_id: "hub-old-tls", url: `mqtts://127.0.0.1:${oldPort}`, topics, tls: { ca_file: pki.ca } }, { start: false, scheme: "mqtts" });
    await h2.bridge.start();
    t.teardown(() => h2.bridge.stop());
    await until("the refusal logged", () => h2.log.lines.some((l) => /cannot connect upstream/.test(l)));
    t.match(h2.log.lines.find((l) => /cannot connect upstream/.test(l)), /no TLS version both sides accept; the bridge needs TLS 1\.2 or newer \(tlsv1 alert protocol version\)/);
    t.notOk(h2.bridge.stats().online);
  });
}
