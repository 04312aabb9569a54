// Test support for the broker's listeners: an embedded broker with the given listener specs on
// 127.0.0.1 port 0, its log lines, the port of each listener, and small event-driven waits for
// TLS handshakes (never sleeps; every wait has a timeout).
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import { createBroker, type EmbeddedBroker } from "../../hub/broker/broker.js";
import type { BrokerLimits } from "../../hub/broker/core.js";
import type { ListenerSpec } from "../../hub/broker/listeners.js";
import { systemClock } from "../../hub/clock.js";
import type { Clock } from "../../hub/contracts.js";
import { memoryLogger } from "../../hub/log.js";
import { defaultLimits } from "./broker.js";

export interface ListenerBroker {
  broker: EmbeddedBroker;
  lines: string[];
  /** Bound port of listener i. */
  port(i?: number): number;
  stop(): Promise<void>;
}

export async function startListeners(
  listeners: ListenerSpec[],
  o: { limits?: Partial<BrokerLimits>; clock?: Clock; readFile?: (p: string) => Buffer } = {},
): Promise<ListenerBroker> {
  const log = memoryLogger("debug");
  const broker = createBroker({
    limits: { ...defaultLimits(), ...o.limits },
    listeners,
    readFile: o.readFile ?? ((p) => readFileSync(p)),
    sysIntervalMs: 0,
    version: "test",
    clock: o.clock ?? systemClock(),
    log,
  });
  await broker.start();
  return {
    broker,
    lines: log.lines,
    port: (i = 0) => broker.addresses()[i]!.port,
    stop: () => broker.stop(),
  };
}

/** The base of a TLS listener spec (defaults of the schema spelled out). */
export function tlsSpec(files: { cert: string; key: string; ca?: string }, more: Partial<NonNullable<ListenerSpec["tls"]>> = {}): NonNullable<ListenerSpec["tls"]> {
  return {
    cert_file: files.cert,
    key_file: files.key,
    ...(files.ca === undefined ? {} : { ca_file: files.ca }),
    min_version: "TLSv1.2",
    require_client_cert: false,
    identity_as_username: false,
    ...more,
  };
}

export type Handshake = { ok: true; socket: tls.TLSSocket; fingerprint: string } | { ok: false; code: string; message: string };

/**
 * A TLS handshake with the broker, resolved when it completes or fails (or after 5 s). On success the
 * socket is left open for the caller (who destroys it); `fingerprint` is the server certificate's.
 * A client whose certificate the server refuses learns it only from the server's alert, which under
 * TLS 1.3 arrives after the client's own handshake is done: so success waits for a first read too.
 */
export function handshake(port: number, o: tls.ConnectionOptions & { waitForServer?: boolean }): Promise<Handshake> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, ...o });
    let done = false;
    const finish = (r: Handshake) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (!r.ok) s.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, code: "TIMEOUT", message: "no answer in 5 s" }), 5_000);
    s.on("error", (e: NodeJS.ErrnoException) => finish({ ok: false, code: e.code ?? "ERROR", message: e.message }));
    s.on("close", () => finish({ ok: false, code: "CLOSED", message: "closed by the server" }));
    s.on("secureConnect", () => {
      const ok = { ok: true as const, socket: s, fingerprint: s.getPeerCertificate().fingerprint256 };
      if (!o.waitForServer) return finish(ok);
      // MQTT: send a CONNECT; a CONNACK proves the server accepted the handshake.
      s.write(Buffer.from("101000044d5154540402003c0004746c7331", "hex"));
      s.once("data", () => finish(ok));
    });
  });
}

export function fingerprintOf(certFile: string): string {
  return new X509Certificate(readFileSync(certFile)).fingerprint256;
}
