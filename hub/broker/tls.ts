// TLS material of the broker's mqtts and wss listeners: read the PEM files, check them, and turn them
// into secure-context options. Fails closed: an empty or unreadable CA, certificate or key file is an
// error naming the file (at start, in `hub check`, and on SIGHUP, where the old material stays). OpenSSL
// would otherwise accept an empty CA list and then refuse every client, or a key that does not match
// the certificate and fail only at the first handshake. The peer identity helper is here too.
import { createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import type { PeerCertificate, SecureContextOptions, TLSSocket } from "node:tls";
import { errnoOf } from "./auth/file-check.js";
import type { ListenerTlsConfig } from "./listener-schema.js";

/** Reads a whole file; throws a NodeJS.ErrnoException on failure. Injected (tests, `hub check`). */
export type ReadFile = (path: string) => string | Buffer;

export type TlsField = "cert_file" | "key_file" | "ca_file";

export interface TlsFileProblem {
  field: TlsField;
  file: string;
  /** What is wrong, without the file's contents (a key is a secret). */
  problem: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** The certificates of a PEM file, or a problem. */
function certificates(text: string): X509Certificate[] | string {
  if (text.trim() === "") return "the file is empty";
  const blocks = text.match(PEM_CERT);
  if (!blocks) return "the file holds no PEM certificate (-----BEGIN CERTIFICATE-----)";
  const out: X509Certificate[] = [];
  for (const [i, b] of blocks.entries()) {
    try {
      out.push(new X509Certificate(b));
    } catch {
      return `certificate ${i + 1} of the file is not a valid X.509 certificate`;
    }
  }
  return out;
}

export interface TlsMaterial {
  /** Options for tls.createServer / server.setSecureContext. */
  options: SecureContextOptions;
  /** The server certificate (first of cert_file), for logging its expiry. */
  leaf: X509Certificate;
}

/**
 * Reads and checks cert_file, key_file and ca_file. Returns every problem, each naming its file, or
 * the material.
 */
export function readTlsMaterial(tls: ListenerTlsConfig, readFile: ReadFile): { ok: true; material: TlsMaterial } | { ok: false; problems: TlsFileProblem[] } {
  const problems: TlsFileProblem[] = [];
  const read = (field: TlsField, file: string): string | undefined => {
    try {
      return readFile(file).toString();
    } catch (err) {
      problems.push({ field, file, problem: `cannot read it (${errnoOf(err)})` });
      return undefined;
    }
  };
  let leaf: X509Certificate | undefined;
  let cert: string | undefined;
  let key: KeyObject | undefined;
  let ca: string | undefined;
  if (tls.cert_file === undefined) problems.push({ field: "cert_file", file: "", problem: "cert_file is required for TLS" });
  else {
    cert = read("cert_file", tls.cert_file);
    if (cert !== undefined) {
      const certs = certificates(cert);
      if (typeof certs === "string") problems.push({ field: "cert_file", file: tls.cert_file, problem: certs });
      else leaf = certs[0];
    }
  }
  if (tls.key_file === undefined) problems.push({ field: "key_file", file: "", problem: "key_file is required for TLS" });
  else {
    const text = read("key_file", tls.key_file);
    if (text !== undefined) {
      if (text.trim() === "") problems.push({ field: "key_file", file: tls.key_file, problem: "the file is empty" });
      else {
        try {
          key = createPrivateKey(text);
        } catch {
          // Never the parser's message: it may quote the key.
          problems.push({ field: "key_file", file: tls.key_file, problem: "the file holds no readable unencrypted PEM private key" });
        }
      }
      if (key && leaf && !leaf.checkPrivateKey(key)) {
        problems.push({ field: "key_file", file: tls.key_file, problem: `the key does not belong to the certificate in ${tls.cert_file}` });
      }
    }
  }
  if (tls.ca_file !== undefined) {
    ca = read("ca_file", tls.ca_file);
    if (ca !== undefined) {
      const certs = certificates(ca);
      if (typeof certs === "string") {
        problems.push({ field: "ca_file", file: tls.ca_file, problem: certs });
        ca = undefined;
      }
    }
  }
  if (problems.length > 0 || !leaf || !key || cert === undefined) return { ok: false, problems };
  return {
    ok: true,
    material: {
      leaf,
      options: {
        cert,
        key: key.export({ type: "pkcs8", format: "pem" }),
        ...(ca === undefined ? {} : { ca }),
        minVersion: tls.min_version,
      },
    },
  };
}

/** One line for a log or an error: `tls.cert_file "/etc/hub/server.pem": cannot read it (ENOENT)`. */
export function describeTlsProblem(p: TlsFileProblem): string {
  return p.file === "" ? `tls.${p.field}: ${p.problem}` : `tls.${p.field} ${JSON.stringify(p.file)}: ${p.problem}`;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The verified client certificate's subject CN, or why there is none usable. A CN that is not
 * well-formed text (bad UTF-8 shows up as U+FFFD, lone surrogates, U+0000) is refused rather than used
 * as a user name (checklist B5; mosquitto 2.0.16).
 */
export function peerCommonName(socket: TLSSocket): { cn: string } | { error: string } {
  if (!socket.authorized) return { error: `client certificate not verified (${String(socket.authorizationError ?? "none sent")})` };
  const cert = socket.getPeerCertificate() as PeerCertificate | Record<string, never>;
  const cn = (cert as PeerCertificate).subject?.CN as unknown;
  if (cn === undefined) return { error: "client certificate has no subject CN" };
  if (typeof cn !== "string") return { error: "client certificate has more than one subject CN" };
  if (cn === "") return { error: "client certificate has an empty subject CN" };
  if (LONE_SURROGATE.test(cn) || /[\u0000\ufffd]/.test(cn)) return { error: "client certificate subject CN is not valid UTF-8 text" };
  if (Buffer.byteLength(cn) > 65535) return { error: "client certificate subject CN is too long for an MQTT user name" };
  return { cn };
}
