// How the bridge connects: addresses from the config, MQTT.js options (will, session, keep-alive on
// our clock), and the plain-language reasons it logs for failures.
import t from "tap";
import { clientOptions, explain, servers } from "../../hub/bridge/connection.js";
import { bridgeSchema } from "../../hub/bridge/schema.js";
import { fakeClock } from "../support/fake-clock.js";

const cfg = (extra: Record<string, unknown> = {}) => bridgeSchema.parse({ name: "c", url: "mqtts://broker.example.com", topics: [{ pattern: "#" }], ...extra });

t.test("addresses: default ports, IPv6 literals, the failover order kept", async (t) => {
  t.same(servers(cfg({ url: ["mqtts://a.example", "mqtt://[::1]:1884", "mqtt://b:1883"] })), [
    { url: "mqtts://a.example", host: "a.example", port: 8883, tls: true },
    { url: "mqtt://[::1]:1884", host: "::1", port: 1884, tls: false },
    { url: "mqtt://b:1883", host: "b", port: 1883, tls: false },
  ]);
  t.equal(servers(cfg({ url: "mqtt://h" }))[0]!.port, 1883);
});

t.test("client options: will on the status topic, persistent session, keep-alive in seconds", async (t) => {
  const o = clientOptions(cfg({ keepalive: "30s", password: "pw", username: "u" }), "hub-1", "hub-1/status", fakeClock());
  t.equal(o.keepalive, 30);
  t.equal(o.clean, false);
  t.equal(o.reconnectPeriod, 0, "we reconnect ourselves");
  t.equal(o.protocolVersion, 5);
  t.same(o.properties, { sessionExpiryInterval: 86_400 });
  t.same(o.will, { topic: "hub-1/status", payload: Buffer.from("offline"), qos: 1, retain: true });
  t.equal(o.username, "u");
  t.equal(o.password, "pw");
  const none = clientOptions(cfg({ status_topic: false, clean_start: true, protocol_version: 4 }), "x", undefined, fakeClock());
  t.equal(none.will, undefined, "status_topic: false sets no will");
  t.equal(none.properties, undefined, "no MQTT 5 properties on 3.1.1");
  t.equal(none.clean, true);
});

t.test("the keep-alive timer runs on the injected clock", async (t) => {
  const clock = fakeClock();
  const timer = clientOptions(cfg(), "x", undefined, clock).timerVariant as { set: (f: () => void, ms: number) => unknown; clear: (id: unknown) => void };
  let n = 0;
  const id = timer.set(() => n++, 500);
  clock.advance(1_500);
  t.equal(n, 3);
  timer.clear(id);
  clock.advance(1_500);
  t.equal(n, 3);
  t.equal(clock.pending(), 0);
});

t.test("failures are explained with what to check", async (t) => {
  const e = (message: string, code?: string | number) => Object.assign(new Error(message), code === undefined ? {} : { code });
  t.match(explain(e("x", "ECONNREFUSED")), /connection refused: is the broker running/);
  t.match(explain(e("x", "ENOTFOUND")), /host name not found/);
  t.match(explain(e("self-signed certificate in certificate chain", "SELF_SIGNED_CERT_IN_CHAIN")), /not trusted \(SELF_SIGNED_CERT_IN_CHAIN\): check tls\.ca_file/);
  t.match(explain(e("certificate has expired", "CERT_HAS_EXPIRED")), /has expired/);
  t.match(explain(e("Connection refused: Not authorized", 5)), /the broker refused: Connection refused: Not authorized \(reason code 5\)/);
  t.match(explain(e("Keepalive timeout")), /1\.5 x keepalive/);
  t.equal(
    explain(e("C0:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../ssl/rec_layer_s3.c:1605:SSL alert number 116")),
    "the broker refused our TLS client certificate: check tls.cert_file and tls.key_file (tlsv13 alert certificate required)",
  );
  t.match(explain(e("C0:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:../ssl/record.c:1")), /is this a TLS port\?/);
});
