// The broker's network listeners: one server per configured listener, speaking MQTT over TCP (mqtt),
// TLS (mqtts), WebSocket (ws) or WebSocket over TLS (wss), each handing connected streams to the
// broker with that listener's security settings (ListenerInfo). TLS material is checked before the
// port opens (fail closed) and swapped on SIGHUP with setSecureContext(), which affects only new
// handshakes: connected clients keep their session keys and stay connected.
import type http from "node:http";
import net from "node:net";
import type { Duplex } from "node:stream";
import type tls from "node:tls";
import type { WebSocket, WebSocketServer } from "ws";
import type { Clock, Logger } from "../contracts.js";
import { isLoopback } from "./loopback.js";
import type { ListenerInfo, Socketish } from "./connection.js";
import type { ListenerTlsConfig } from "./listener-schema.js";
import type { ReadFile, TlsMaterial } from "./tls.js";

/** node:tls and the certificate helpers, loaded only for mqtts/wss listeners (see openListener). */
type TlsParts = typeof import("./tls.js") & { lib: typeof tls };

export type ListenerProtocol = "mqtt" | "mqtts" | "ws" | "wss";

/** One listener as configured (`broker.listeners[]`); tests may give only host and port. */
export interface ListenerSpec {
  host: string;
  port: number;
  protocol?: ListenerProtocol;
  /** ws/wss: the URL path; default /mqtt. */
  path?: string;
  tls?: ListenerTlsConfig;
  allow_anonymous?: boolean;
  max_connections?: number;
}

export interface ListenerDeps {
  /** Serves one connected stream (the broker enforces its global connection limit there). */
  accept(socket: Socketish, listener: ListenerInfo): void;
  readFile: ReadFile;
  clock: Clock;
  log: Logger;
  /** TLS handshakes and WebSocket upgrades must finish within this too (slowloris, checklist A9). */
  connectTimeoutMs: number;
  maxPacketSize: number;
}

export interface OpenListener {
  readonly info: ListenerInfo;
  readonly protocol: ListenerProtocol;
  /** The address actually bound (port 0 resolved). */
  address(): { host: string; port: number };
  /** Re-reads the TLS files; on a problem keeps the current material and says why. undefined: no TLS. */
  reloadTls(): { ok: true } | { ok: false; error: string } | undefined;
  /** Stops accepting; resolves once every socket of this listener is closed. */
  close(): Promise<void>;
  /** Destroys sockets still in a TLS handshake or WebSocket upgrade (they are not broker connections yet). */
  destroySockets(): void;
}

/** A listen() or TLS material failure; `code` is the errno (EADDRINUSE, EADDRNOTAVAIL) when there is one. */
export class ListenerError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export const WS_SUBPROTOCOLS = ["mqtt", "mqttv3.1"];

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/** At most one log line per `everyMs` for a repeated event (scanners, connection floods), with the count. */
function limited(clock: Clock, everyMs: number, log: (fields: Record<string, unknown>) => void) {
  let last = Number.NEGATIVE_INFINITY;
  let count = 0;
  return (fields: Record<string, unknown>) => {
    count++;
    const now = clock.monotonic();
    if (now - last < everyMs) return;
    last = now;
    log({ ...fields, times: count });
    count = 0;
  };
}

function loadMaterial(t: TlsParts, spec: ListenerSpec, label: string, readFile: ReadFile): TlsMaterial {
  if (!spec.tls) throw new ListenerError(`${label}: ${spec.protocol} needs tls.cert_file and tls.key_file`);
  const r = t.readTlsMaterial(spec.tls, readFile);
  if (!r.ok) throw new ListenerError(`${label}: ${r.problems.map(t.describeTlsProblem).join("; ")}`);
  return r.material;
}

/** The WebSocket as the byte stream a Connection serves (binary frames; packets may span frames). */
function webSocketStream(createWebSocketStream: typeof import("ws").createWebSocketStream, ws: WebSocket, raw: net.Socket, cn: string | undefined): Socketish {
  // MQTT-6.0.0-1: a text frame closes the connection. Registered before the stream's own listener,
  // so the frame's bytes never reach the parser (a destroyed stream ignores the push that follows).
  let stream: (Duplex & Socketish) | undefined;
  ws.on("message", (_data, isBinary) => {
    if (isBinary) return;
    stream?.destroy();
    ws.terminate();
  });
  stream = createWebSocketStream(ws, { allowHalfOpen: false }) as Duplex & Socketish;
  // The connection corks its writes per event-loop turn; with _writev they leave as one WebSocket
  // message instead of one message per packet, each waiting for the previous one's write callback.
  // A frame may carry several MQTT packets (MQTT-6.0.0-2 makes receivers accept that).
  stream._writev = (chunks, callback) => {
    ws.send(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk as Buffer)), callback);
  };
  stream.remoteAddress = raw.remoteAddress;
  stream.remotePort = raw.remotePort;
  if (cn !== undefined) stream.peerCommonName = cn;
  return stream;
}

export async function openListener(spec: ListenerSpec, deps: ListenerDeps): Promise<OpenListener> {
  const { clock, log } = deps;
  const protocol = spec.protocol ?? "mqtt";
  const secure = protocol === "mqtts" || protocol === "wss";
  const web = protocol === "ws" || protocol === "wss";
  const path = spec.path ?? "/mqtt";
  const tlsCfg = spec.tls;
  const requireCert = secure && tlsCfg?.require_client_cert === true;
  let info: ListenerInfo = {
    name: `${protocol}://${hostPort(spec.host, spec.port)}`,
    allowAnonymous: spec.allow_anonymous ?? isLoopback(spec.host),
    identityAsUsername: requireCert && tlsCfg?.identity_as_username === true,
  };

  // Loaded here, only for TLS listeners: node:tls and node:crypto (which initialises OpenSSL) add
  // ~1.3 MB of RSS that a loopback-only hub never uses.
  const t: TlsParts | undefined = secure
    ? await Promise.all([import("node:tls"), import("./tls.js")]).then(([lib, parts]) => ({ ...parts, lib: lib.default }))
    : undefined;
  let material: TlsMaterial | undefined;
  if (t) {
    material = loadMaterial(t, spec, info.name, deps.readFile);
    warnIfExpired(material, info.name, clock, log);
  }
  const tlsOptions: tls.TlsOptions | undefined = material && {
    ...material.options,
    requestCert: requireCert,
    rejectUnauthorized: requireCert,
    handshakeTimeout: deps.connectTimeoutMs,
  };

  /**
   * The verified client certificate's CN, checked; `false` when the client must be refused: with
   * identity_as_username a certificate without a usable CN cannot name a user (checklist B5).
   */
  const identity = (sock: tls.TLSSocket, remote: string): string | undefined | false => {
    if (!requireCert) return undefined;
    const id = t!.peerCommonName(sock);
    if ("cn" in id) return id.cn;
    if (!info.identityAsUsername) return undefined;
    log.warn("refusing client: its certificate cannot name a user", { listener: info.name, remote, why: id.error });
    return false;
  };

  const onDrop = limited(clock, 60_000, (f) => log.warn("listener connection limit reached; refusing new connections", { ...f, listener: info.name, max: spec.max_connections }));
  const onTlsError = limited(clock, 60_000, (f) => log.info("TLS handshake failed (further ones this minute are logged at debug)", { ...f, listener: info.name }));

  let server: net.Server;
  let wss: WebSocketServer | undefined;
  if (!web) {
    if (material && t) {
      server = t.lib.createServer({ ...tlsOptions, noDelay: true });
      server.on("secureConnection", (sock: tls.TLSSocket) => {
        const cn = identity(sock, `${sock.remoteAddress}:${sock.remotePort}`);
        if (cn === false) {
          sock.destroy();
          return;
        }
        if (cn !== undefined) (sock as tls.TLSSocket & Socketish).peerCommonName = cn;
        deps.accept(sock, info);
      });
    } else {
      server = net.createServer({ noDelay: true }, (sock) => deps.accept(sock, info));
    }
  } else {
    // Imported here, only for ws/wss listeners: ws (22 modules) and node:http(s) add ~2 MB of RSS.
    const [{ createWebSocketStream, WebSocketServer }, httpLib, httpsLib] = await Promise.all([import("ws"), import("node:http"), import("node:https")]);
    const httpServer = material ? httpsLib.createServer({ ...tlsOptions, noDelay: true }) : httpLib.createServer({ noDelay: true });
    // Bounds the time before the upgrade; after it the broker's connect timeout applies.
    httpServer.headersTimeout = deps.connectTimeoutMs;
    httpServer.requestTimeout = deps.connectTimeoutMs;
    wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      // One message normally holds one packet; the margin lets a client put a few in one frame.
      // ws buffers a whole message before handing it on, so this bounds memory per client.
      maxPayload: deps.maxPacketSize + 65_536,
      // MQTT-6.0.0-4: the subprotocol is "mqtt" ("mqttv3.1" for old 3.1 clients).
      handleProtocols: (offered) => WS_SUBPROTOCOLS.find((p) => offered.has(p)) ?? false,
    });
    const w = wss;
    httpServer.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.writeHead(426, { "content-type": "text/plain", connection: "close", upgrade: "websocket" });
      res.end(`MQTT over WebSocket: connect a WebSocket to ${path} with subprotocol mqtt\n`);
    });
    httpServer.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      const remote = `${socket.remoteAddress}:${socket.remotePort}`;
      const pathname = (req.url ?? "").split("?")[0];
      if (pathname !== path) {
        log.debug("WebSocket upgrade to an unknown path refused", { listener: info.name, remote, path: pathname });
        socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      const cn = secure ? identity(socket as tls.TLSSocket, remote) : undefined;
      if (cn === false) {
        socket.end("HTTP/1.1 403 Forbidden\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      w.handleUpgrade(req, socket, head, (ws) => deps.accept(webSocketStream(createWebSocketStream, ws, socket, cn), info));
    });
    server = httpServer;
  }
  if (spec.max_connections !== undefined) {
    // Counts TCP connections, including those still in a TLS handshake or WebSocket upgrade.
    server.maxConnections = spec.max_connections;
    server.on("drop", (d?: net.DropArgument) => onDrop({ remote: d ? `${d.remoteAddress}:${d.remotePort}` : undefined }));
  }
  server.on("tlsClientError", (err: Error, sock: tls.TLSSocket) => {
    // OpenSSL's reason ("peer did not return a certificate"), not its multi-line error string.
    const e = err as Error & { reason?: string; code?: string };
    const fields = { listener: info.name, remote: `${sock.remoteAddress}:${sock.remotePort}`, error: e.reason ?? e.code ?? e.message };
    log.debug("TLS handshake failed", fields);
    onTlsError(fields);
  });
  // Sockets still in a TLS handshake or WebSocket upgrade, for destroySockets(). A plain TCP socket
  // is handed to the broker in the same tick it is accepted (the broker closes it from then on), so
  // it is not tracked: that saves a Set entry and a 'close' listener per connection on the
  // handshake path (issue 3, handshakes/s).
  const sockets = new Set<net.Socket>();
  if (secure || web) {
    server.on("connection", (s: net.Socket) => {
      sockets.add(s);
      s.once("close", () => sockets.delete(s));
    });
  }

  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => reject(new ListenerError(`cannot listen on ${hostPort(spec.host, spec.port)}: ${err.code ?? err.message}`, err.code));
    server.once("error", failed);
    server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.host.includes(":") }, () => {
      server.off("error", failed);
      server.on("error", (err) => log.error("listener error", { listener: info.name, error: err }));
      resolve();
    });
  });
  const bound = server.address() as net.AddressInfo;
  info = { ...info, name: `${protocol}://${hostPort(bound.address, bound.port)}${web ? path : ""}` };
  log.info("listening", {
    protocol,
    host: bound.address,
    port: bound.port,
    ...(web ? { path } : {}),
    // With certificate identities every client has a user name (auth/authenticate.ts): none is anonymous.
    anonymous: info.allowAnonymous && !info.identityAsUsername ? "yes" : "no",
    tls: secure ? "yes" : "no",
    ...(secure ? { client_cert: requireCert ? "required" : "no" } : {}),
  });

  return {
    get info() {
      return info;
    },
    protocol,
    address: () => ({ host: bound.address, port: bound.port }),
    reloadTls() {
      if (!t) return undefined;
      let next: TlsMaterial;
      try {
        next = loadMaterial(t, spec, info.name, deps.readFile);
        (server as tls.Server).setSecureContext(next.options);
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        log.error("TLS certificate not reloaded; the previous one stays in use", { listener: info.name, error });
        return { ok: false, error };
      }
      warnIfExpired(next, info.name, clock, log);
      log.info("TLS certificate reloaded", { listener: info.name, subject: next.leaf.subject.replace(/\n/g, ", "), expires: next.leaf.validTo });
      return { ok: true };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        wss?.close();
      });
    },
    destroySockets() {
      for (const s of sockets) s.destroy();
    },
  };
}

function warnIfExpired(m: TlsMaterial, listener: string, clock: Clock, log: Logger): void {
  const until = Date.parse(m.leaf.validTo);
  if (Number.isFinite(until) && until < clock.now()) {
    log.warn("the TLS certificate has expired; clients will refuse it", { listener, expired: m.leaf.validTo });
  }
}
