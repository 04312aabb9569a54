// The embedded broker as a hub Service: its listeners (listeners.ts), connection bookkeeping, the
// periodic sweep (keep-alive, connect timeout, slow consumers), $SYS, and in-process Bus clients.
import { readFileSync } from "node:fs";
import type { Bus, Clock, Logger, Service } from "../contracts.js";
import { Connection, connectionContext, type ListenerInfo, type Socketish } from "./connection.js";
import { type BrokerCore, type BrokerLimits, createBrokerCore } from "./core.js";
import { ListenerError, type ListenerProtocol, type ListenerSpec, type OpenListener, openListener } from "./listeners.js";
import { localBus } from "./local-bus.js";
import { RC } from "./reason-codes.js";
import type { BrokerStore } from "./store/journal.js";
import { publishSysTopics } from "./sys-topics.js";
import type { ReadFile } from "./tls.js";

export type { ListenerSpec } from "./listeners.js";

export interface BrokerOptions {
  limits: BrokerLimits;
  listeners: ListenerSpec[];
  /** Reads TLS certificate and key files (at start and on reload); default: the real filesystem. */
  readFile?: ReadFile;
  sysIntervalMs: number;
  version: string;
  clock: Clock;
  log: Logger;
  /** Durable state (store/journal.ts); opened and restored by start() before any listener accepts. */
  store?: BrokerStore;
}

export interface EmbeddedBroker extends Service {
  readonly core: BrokerCore;
  /** The Bus a part of the hub uses; `name` shows in logs. */
  bus(name: string): Bus;
  /** Addresses actually bound (port 0 resolved), after start(), in the order of the listeners. */
  addresses(): Array<{ host: string; port: number; protocol: ListenerProtocol }>;
  /** Serves one already-connected stream (listeners.ts, and tests over in-memory pipes). */
  accept(socket: Socketish, listener?: ListenerInfo): Connection | undefined;
  /**
   * Re-reads every TLS listener's certificate, key and CA files (SIGHUP). New handshakes use them;
   * connected clients stay. A listener whose files are broken keeps its old material (logged).
   */
  reloadTls(): Array<{ listener: string; ok: boolean; error?: string }>;
}

const SWEEP_MS = 1_000;

export function createBroker(o: BrokerOptions): EmbeddedBroker {
  const { clock, log } = o;
  const core = createBrokerCore(o.limits, clock, log, o.store);
  const listeners: OpenListener[] = [];
  const connections = new Set<Connection>();
  const ctx = connectionContext(core, (closed) => connections.delete(closed));
  const cancels: Array<() => void> = [];
  let refusedLogged = Number.NEGATIVE_INFINITY;

  const accept = (socket: Socketish, listener?: ListenerInfo): Connection | undefined => {
    if (connections.size >= o.limits.maxConnections) {
      // H3: refused at once; existing clients unaffected. Logged at most once a minute.
      if (clock.monotonic() - refusedLogged > 60_000) {
        refusedLogged = clock.monotonic();
        log.warn("connection limit reached; refusing new connections", { max: o.limits.maxConnections });
      }
      socket.destroy();
      return undefined;
    }
    const c = new Connection(ctx, socket, listener);
    connections.add(c);
    return c;
  };

  const listenerDeps = {
    accept: (socket: Socketish, listener: ListenerInfo) => void accept(socket, listener),
    readFile: o.readFile ?? ((p: string) => readFileSync(p)),
    clock,
    log,
    connectTimeoutMs: o.limits.connectTimeoutMs,
    maxPacketSize: o.limits.maxPacketSize,
  };
  const reloadTls = () => {
    const out: Array<{ listener: string; ok: boolean; error?: string }> = [];
    for (const l of listeners) {
      const r = l.reloadTls();
      if (r) out.push({ listener: l.info.name, ...r });
    }
    return out;
  };

  return {
    name: "broker",
    core,
    accept,
    bus: (name) => localBus(core, name),
    reloadTls,
    async reload() {
      reloadTls();
    },
    addresses() {
      return listeners.map((l) => ({ ...l.address(), protocol: l.protocol }));
    },
    async start() {
      o.store?.open(core); // restored before the first client can connect
      for (const spec of o.listeners) {
        try {
          listeners.push(await openListener(spec, listenerDeps));
        } catch (err) {
          const code = err instanceof ListenerError ? err.code : undefined;
          // ::1 is missing when IPv6 is disabled (common on Pis): not fatal if another listener works.
          if (code === "EADDRNOTAVAIL" && o.listeners.length > 1) {
            log.warn("listener address not available; skipping it", { host: spec.host, port: spec.port });
            continue;
          }
          // Nothing half-open stays behind a failed start (the lifecycle stops only started parts).
          await Promise.all(listeners.splice(0).map((l) => l.close()));
          const hint = code === "EADDRINUSE" ? " (is another MQTT broker such as mosquitto running?)" : "";
          throw new Error(`${err instanceof Error ? err.message : String(err)}${hint}`);
        }
      }
      cancels.push(
        clock.every(SWEEP_MS, () => {
          const now = clock.monotonic();
          for (const c of connections) c.sweep(now);
          core.sweepCongestion(now);
        }),
      );
      if (o.sysIntervalMs > 0) {
        publishSysTopics(core, o.version);
        cancels.push(clock.every(o.sysIntervalMs, () => publishSysTopics(core, o.version)));
      }
    },
    async stop() {
      for (const c of cancels.splice(0)) c();
      // Stop accepting first; server.close() calls back only once every connection is gone.
      const open = listeners.splice(0);
      const closed = open.map((l) => l.close());
      for (const c of connections) c.fail(RC.SERVER_SHUTTING_DOWN, "server shutting down");
      for (const c of connections) c.socket.destroy();
      for (const l of open) l.destroySockets();
      await Promise.all(closed);
      o.store?.close(); // after every session went offline: flushed, then closed
      core.close();
    },
  };
}
