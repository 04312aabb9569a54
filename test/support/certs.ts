// Certificates made at test time with the `openssl` command (EC P-256, valid one day): a CA, server
// certificates for 127.0.0.1/localhost, client certificates, and a second unrelated CA, written as
// PEM files into a temporary directory. Also a certificate whose subject CN is not valid UTF-8
// (re-signed DER: openssl itself refuses to write one), for checklist row B5.
import { execFileSync } from "node:child_process";
import { createPrivateKey, sign } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface Ca {
  name: string;
  cert: string;
  key: string;
}

export interface Issued {
  cert: string;
  key: string;
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export interface CertDir {
  dir: string;
  /** A self-signed CA named `name` (files <name>.pem and <name>.key). */
  ca(name: string): Ca;
  /** A certificate for `cn` signed by `ca`; server certificates also cover 127.0.0.1, ::1 and localhost. */
  issue(ca: Ca, name: string, cn: string, kind: "server" | "client"): Issued;
  /**
   * A client certificate signed by `ca` whose CN holds these raw bytes as an ASN.1 string of type
   * `tag` (0x0c UTF8String, 0x1e BMPString, 0x1c UniversalString).
   */
  issueRawCn(ca: Ca, name: string, cnBytes: Buffer, tag?: number): Issued;
  path(file: string): string;
  remove(): void;
}

export function certDir(): CertDir {
  const dir = mkdtempSync(join(tmpdir(), "hub-certs-"));
  let serial = 1;
  const d: CertDir = {
    dir,
    path: (f) => join(dir, f),
    ca(name) {
      openssl(
        [
          "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
          "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "1", "-subj", `/CN=${name}`,
          "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
      );
      return { name, cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
    issue(ca, name, cn, kind) {
      const ext =
        kind === "server"
          ? "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\n"
          : "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
      writeFileSync(join(dir, `${name}.ext`), ext);
      openssl(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", `/CN=${cn}`], dir);
      openssl(
        ["x509", "-req", "-in", `${name}.csr`, "-CA", ca.cert, "-CAkey", ca.key, "-set_serial", String(serial++), "-days", "1", "-extfile", `${name}.ext`, "-out", `${name}.pem`],
        dir,
      );
      return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
    },
    issueRawCn(ca, name, cnBytes, tag = 0x0c) {
      // Issue with a placeholder CN of the same length, then patch the bytes and sign the TBS again.
      const placeholder = "Q".repeat(cnBytes.length);
      const issued = d.issue(ca, name, placeholder, "client");
      const der = pemToDer(readFileSync(issued.cert, "utf8"));
      const cert = readTlv(der, 0);
      const tbs = readTlv(der, cert.start);
      const alg = readTlv(der, tbs.end);
      const tbsBytes = Buffer.from(der.subarray(cert.start, tbs.end));
      const at = tbsBytes.lastIndexOf(Buffer.from(placeholder));
      if (at < 0) throw new Error("placeholder CN not found");
      cnBytes.copy(tbsBytes, at);
      tbsBytes[at - 2] = tag;
      const signature = sign("sha256", tbsBytes, createPrivateKey(readFileSync(ca.key)));
      const bitString = tlv(0x03, Buffer.concat([Buffer.from([0]), signature]));
      const out = tlv(0x30, Buffer.concat([tbsBytes, Buffer.from(der.subarray(tbs.end, alg.end)), bitString]));
      writeFileSync(issued.cert, `-----BEGIN CERTIFICATE-----\n${out.toString("base64").replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----\n`);
      return issued;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return d;
}

function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, ""), "base64");
}

/** One DER element at `at`: where its contents start and where it ends. */
function readTlv(b: Buffer, at: number): { start: number; end: number } {
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i]!;
    start += n;
  }
  return { start, end: start + len };
}

function tlv(tag: number, content: Buffer): Buffer {
  const n = content.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}
