// How a bridge reaches its remote broker: the failover address list, the TCP/TLS stream each
// attempt opens (TLS ≥ 1.2, CA, client certificate, SNI, ALPN), the MQTT.js client options, the
// reconnect backoff, and plain-language explanations of connection errors for the log.
import { readFileSync } from "node:fs";
import net from "node:net";
import tls from "node:tls";
import type { IClientOptions, IStream, Timer } from "mqtt";
import type { Clock } from "../contracts.js";
import type { BridgeConfig } from "./schema.js";

export interface Server {
  /** For logs: the URL as configured, without credentials. */
  url: string;
  host: string;
  port: number;
  tls: boolean;
}

export function servers(cfg: BridgeConfig): Server[] {
  const urls = typeof cfg.url === "string" ? [cfg.url] : cfg.url;
  return urls.map((u) => {
    const p = new URL(u);
    const secure = p.protocol === "mqtts:";
    // URL keeps IPv6 literals in brackets; net/tls want them bare.
    const host = p.hostname.replace(/^\[(.*)\]$/, "$1");
    return { url: `${p.protocol}//${p.host}`, host, port: p.port === "" ? (secure ? 8883 : 1883) : Number(p.port), tls: secure };
  });
}

export interface TlsMaterial {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/** Reads the TLS files; a missing or unreadable one is a clear error naming the option. */
export function readTlsMaterial(cfg: BridgeConfig): TlsMaterial {
  const out: TlsMaterial = {};
  const read = (field: "ca_file" | "cert_file" | "key_file", path: string | undefined): Buffer | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path);
    } catch (err) {
      throw new Error(`bridge ${cfg.name}: cannot read tls.${field} ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  };
  const t = cfg.tls;
  const ca = read("ca_file", t?.ca_file);
  const cert = read("cert_file", t?.cert_file);
  const key = read("key_file", t?.key_file);
  if (ca) out.ca = ca;
  if (cert) out.cert = cert;
  if (key) out.key = key;
  return out;
}

/** Opens the socket for one attempt. Errors are reported to `onError` before MQTT.js sees them. */
export function openStream(s: Server, cfg: BridgeConfig, material: TlsMaterial, onError: (err: Error) => void): IStream {
  let sock: net.Socket;
  if (s.tls) {
    const t = cfg.tls;
    const opts: tls.ConnectionOptions = {
      host: s.host,
      port: s.port,
      // Verification is on unless the config says insecure: true (logged at every start).
      rejectUnauthorized: !(t?.insecure ?? false),
      minVersion: "TLSv1.2",
      ...material,
    };
    // SNI must be a host name, never an IP address (RFC 6066 §3).
    const sni = t?.servername ?? (net.isIP(s.host) === 0 ? s.host : undefined);
    if (sni !== undefined) opts.servername = sni;
    if (t?.alpn) opts.ALPNProtocols = t.alpn;
    sock = tls.connect(opts);
  } else {
    sock = net.connect({ host: s.host, port: s.port });
  }
  sock.setNoDelay(true);
  sock.on("error", onError);
  return sock as unknown as IStream;
}

/** MQTT.js's keep-alive timer driven by our Clock, so tests control it and detection is exact. */
export function clockTimer(clock: Clock): Timer {
  return {
    set: ((fn: () => void, ms: number) => clock.every(ms, fn)) as unknown as Timer["set"],
    clear: ((cancel: () => void) => cancel()) as unknown as Timer["clear"],
  };
}

export function clientOptions(cfg: BridgeConfig, clientId: string, statusTopic: string | undefined, clock: Clock): IClientOptions {
  const v5 = cfg.protocol_version === 5;
  const opts: IClientOptions = {
    protocolId: "MQTT",
    protocolVersion: cfg.protocol_version,
    clientId,
    keepalive: cfg.keepalive / 1000,
    clean: cfg.clean_start,
    // We reconnect ourselves (backoff with jitter through the Clock) and resubscribe ourselves.
    reconnectPeriod: 0,
    manualConnect: true,
    resubscribe: false,
    // A QoS 0 publish while down fails at once (it stays in our queue) instead of piling up in MQTT.js.
    queueQoSZero: false,
    // Our own Clock-driven timeout ends a silent attempt first; this real-time one is a backstop.
    connectTimeout: cfg.connect_timeout * 2 + 5_000,
    timerVariant: clockTimer(clock),
  };
  if (statusTopic !== undefined) opts.will = { topic: statusTopic, payload: Buffer.from("offline"), qos: 1, retain: true };
  if (cfg.username !== undefined) opts.username = cfg.username;
  if (cfg.password !== undefined) opts.password = cfg.password;
  if (v5) opts.properties = { sessionExpiryInterval: cfg.clean_start ? 0 : cfg.session_expiry / 1000 };
  return opts;
}

/**
 * Full-jitter exponential backoff (the "Full Jitter" of AWS's Exponential Backoff and Jitter):
 * a uniformly random delay in [0, min(max, min * 2^attempt)).
 */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 52));
  return Math.floor(random() * ceiling);
}

const UNTRUSTED = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** One sentence for the log saying what went wrong and what to check. */
export function explain(err: Error): string {
  const code = (err as { code?: unknown }).code;
  const msg = err.message;
  if (typeof code === "string") {
    if (UNTRUSTED.has(code)) return `the broker's TLS certificate is not trusted (${code}): check tls.ca_file`;
    if (code === "CERT_HAS_EXPIRED") return "the broker's TLS certificate has expired (CERT_HAS_EXPIRED)";
    if (code === "CERT_NOT_YET_VALID") return "the broker's TLS certificate is not valid yet: check this machine's clock (CERT_NOT_YET_VALID)";
    if (code === "ERR_TLS_CERT_ALTNAME_INVALID") return `the broker's TLS certificate is for another host name: check the URL or tls.servername (${msg})`;
    if (code === "ECONNREFUSED") return "connection refused: is the broker running, and is the port right?";
    if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "host name not found (DNS)";
    if (code === "ECONNRESET") return "the connection was reset by the other side";
    if (code === "EHOSTUNREACH" || code === "ENETUNREACH") return "no route to the broker (network down?)";
  }
  // OpenSSL's messages: "...:SSL routines:<function>:<reason>:<file>:<line>:..."; the reason is the news.
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(msg)?.[1] ?? msg;
  if (/certificate required|bad certificate|unknown ca|certificate unknown/i.test(ssl)) {
    return `the broker refused our TLS client certificate: check tls.cert_file and tls.key_file (${ssl})`;
  }
  if (/alert protocol version|unsupported protocol/i.test(ssl)) return `no TLS version both sides accept; the bridge needs TLS 1.2 or newer (${ssl})`;
  if (/wrong version number|packet length too long/i.test(ssl)) return `TLS handshake failed: is this a TLS port? (${ssl})`;
  if (msg === "Keepalive timeout") return "no answer from the broker for 1.5 x keepalive: the link is dead";
  if (typeof code === "number") return `the broker refused: ${msg} (reason code ${code})`;
  return msg;
}
