// Cross-field checks of `broker.listeners[]` that the per-field schema cannot express: TLS settings
// only where TLS is spoken, certificate files that exist and hold what they should (so `hub check`
// finds a broken file before a restart does), and client certificates only with a CA to check them.
// Called from hub/config/check.ts; each problem's path becomes file:line:col in the loader.
import type { ListenerSpecConfig } from "./listener-schema.js";
import { type ReadFile, readTlsMaterial } from "./tls.js";

export interface ListenerProblem {
  /** Below `broker.listeners[i]`. */
  path: (string | number)[];
  expected: string;
  found: string;
}

const EXPECTED_FILE = {
  cert_file: "a readable PEM certificate file",
  key_file: "a readable unencrypted PEM private key matching cert_file",
  ca_file: "a readable PEM file of CA certificates",
} as const;

/** Problems of one listener; `readFile` (optional) also checks the TLS files themselves. */
export function listenerProblems(l: ListenerSpecConfig, readFile?: ReadFile): ListenerProblem[] {
  const problems: ListenerProblem[] = [];
  const secure = l.protocol === "mqtts" || l.protocol === "wss";
  const tls = l.tls;
  if (!secure) {
    if (tls !== undefined) {
      problems.push({ path: ["tls"], expected: `no tls on a ${l.protocol} listener (use protocol: ${l.protocol === "ws" ? "wss" : "mqtts"} for TLS)`, found: "tls settings" });
    }
    return problems;
  }
  if (tls === undefined) {
    problems.push({ path: ["protocol"], expected: `tls: { cert_file, key_file } with protocol ${l.protocol}`, found: "no tls settings" });
    return problems;
  }
  for (const field of ["cert_file", "key_file"] as const) {
    if (tls[field] === undefined) problems.push({ path: ["tls"], expected: `tls.${field} with protocol ${l.protocol}`, found: `no ${field}` });
  }
  if (tls.require_client_cert && tls.ca_file === undefined) {
    problems.push({ path: ["tls", "require_client_cert"], expected: "tls.ca_file (the CA that signs client certificates) with require_client_cert", found: "no ca_file" });
  }
  if (tls.identity_as_username && !tls.require_client_cert) {
    problems.push({ path: ["tls", "identity_as_username"], expected: "require_client_cert: true with identity_as_username", found: "require_client_cert: false" });
  }
  if (readFile !== undefined && tls.cert_file !== undefined && tls.key_file !== undefined) {
    const r = readTlsMaterial(tls, readFile);
    if (!r.ok) {
      for (const p of r.problems) problems.push({ path: ["tls", p.field], expected: EXPECTED_FILE[p.field], found: `${JSON.stringify(p.file)}: ${p.problem}` });
    }
  }
  return problems;
}
