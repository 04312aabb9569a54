// Config cross-checks of broker listeners, through the loader so each problem has its file:line:col:
// TLS only on mqtts/wss and required there, require_client_cert needs ca_file, identity_as_username
// needs require_client_cert, client-certificate identity counts as authentication on a network
// address, and `hub check` finds empty or unreadable TLS files.
import t from "tap";
import { formatProblems, loadConfigText } from "../../hub/config/load.js";
import { fakeDeps, yaml } from "../config/helpers.js";

function problems(text: string, files: Record<string, string> = {}): string[] {
  const r = loadConfigText(text, "c.yaml", fakeDeps(files));
  return r.ok ? [] : formatProblems(r.problems).split("\n");
}

t.test("tls where it does not belong, and missing where it is needed", async (t) => {
  const p = problems(
    yaml(
      "broker:",
      "  listeners:",
      "    - host: 127.0.0.1", // 3
      "      port: 1883",
      "      tls: { cert_file: a.pem, key_file: a.key }", // 5
      "    - host: 127.0.0.1",
      "      port: 8883",
      "      protocol: mqtts", // 8
      "    - host: 127.0.0.1",
      "      port: 8884",
      "      protocol: wss",
      "      tls: { cert_file: a.pem }", // 12
    ),
    { "a.pem": "x", "a.key": "y" },
  );
  t.match(p[0], /^c\.yaml:5:12: broker\.listeners\[0\]\.tls: expected no tls on a mqtt listener \(use protocol: mqtts for TLS\)/);
  t.match(p[1], /^c\.yaml:8:17: broker\.listeners\[1\]\.protocol: expected tls: \{ cert_file, key_file \} with protocol mqtts/);
  t.match(p[2], /^c\.yaml:12:12: broker\.listeners\[2\]\.tls: expected tls\.key_file with protocol wss/);
  t.equal(p.length, 3, p.join("\n"));
});

t.test("client certificates: require_client_cert needs ca_file, identity_as_username needs require_client_cert", async (t) => {
  const p = problems(
    yaml(
      "broker:",
      "  listeners:",
      "    - host: 127.0.0.1",
      "      port: 8883",
      "      protocol: mqtts",
      "      tls:",
      "        cert_file: s.pem",
      "        key_file: s.key",
      "        require_client_cert: true", // 9
      "    - host: 127.0.0.1",
      "      port: 8884",
      "      protocol: mqtts",
      "      tls: { cert_file: s.pem, key_file: s.key, identity_as_username: true }", // 13
    ),
  );
  t.match(p.join("\n"), /c\.yaml:9:30: broker\.listeners\[0\]\.tls\.require_client_cert: expected tls\.ca_file/);
  t.match(p.join("\n"), /c\.yaml:13:\d+: broker\.listeners\[1\]\.tls\.identity_as_username: expected require_client_cert: true/);
});

t.test("hub check reads the TLS files: unreadable and empty ones are named", async (t) => {
  const p = problems(
    yaml("broker:", "  listeners:", "    - { host: 127.0.0.1, port: 8883, protocol: mqtts, tls: { cert_file: s.pem, key_file: s.key, ca_file: ca.pem } }"),
    { "ca.pem": "", "s.key": "" },
  );
  const all = p.join("\n");
  t.match(all, /tls\.cert_file: expected a readable PEM certificate file, found "s\.pem": cannot read it \(ENOENT\)/);
  t.match(all, /tls\.key_file: expected .*found "s\.key": the file is empty/);
  t.match(all, /tls\.ca_file: expected a readable PEM file of CA certificates, found "ca\.pem": the file is empty/);
});

t.test("a network listener: client-certificate identity is authentication; TLS alone is not", async (t) => {
  const tlsOnly = problems(yaml("broker:", "  listeners:", "    - { host: 0.0.0.0, port: 8883, protocol: mqtts, tls: { cert_file: s.pem, key_file: s.key } }"), {});
  t.match(tlsOnly.join("\n"), /c\.yaml:3:15: broker\.listeners\[0\]\.host: expected a loopback address .*allow_anonymous: true/);
  const certs = problems(
    yaml(
      "broker:",
      "  listeners:",
      "    - { host: 0.0.0.0, port: 8883, protocol: mqtts, tls: { cert_file: s.pem, key_file: s.key, ca_file: ca.pem, require_client_cert: true, identity_as_username: true } }",
    ),
  );
  t.notMatch(certs.join("\n"), /allow_anonymous/, "no anonymous-access problem");
});

t.test("path: ws listeners default to /mqtt; a path must start with /", async (t) => {
  const r = loadConfigText(yaml("broker:", "  listeners:", "    - { host: 127.0.0.1, port: 8080, protocol: ws }"), "c.yaml", fakeDeps());
  t.equal(r.ok && r.config.broker.listeners[0]!.path, "/mqtt");
  t.match(problems(yaml("broker:", "  listeners:", "    - { host: 127.0.0.1, port: 8080, protocol: ws, path: mqtt }")).join("\n"), /path: expected a URL path starting with \//);
  t.match(problems(yaml("broker:", "  listeners:", "    - { host: 127.0.0.1, port: 8883, protocol: mqtts, tls: { cert_file: a, key_file: b, min_version: TLSv1.1 } }")).join("\n"), /min_version: expected TLSv1\.2 or TLSv1\.3/);
});
