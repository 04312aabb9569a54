// The embedded broker as a hub Service: TCP listeners, connection bookkeeping, the periodic sweep
// (keep-alive, connect timeout, slow consumers), $SYS, and in-process Bus clients.
import net from "node:net";
import type { Bus, Clock, Logger, Service } from "../contracts.js";
import { Connection, connectionContext, type ListenerInfo, type Socketish } from "./connection.js";
import { type BrokerCore, type BrokerLimits, createBrokerCore } from "./core.js";
import { localBus } from "./local-bus.js";
import { RC } from "./reason-codes.js";
import { publishSysTopics } from "./sys-topics.js";

export interface ListenerSpec {
  host: string;
  port: number;
}

export interface BrokerOptions {
  limits: BrokerLimits;
  listeners: ListenerSpec[];
  sysIntervalMs: number;
  version: string;
  clock: Clock;
  log: Logger;
}

export interface EmbeddedBroker extends Service {
  readonly core: BrokerCore;
  /** The Bus a part of the hub uses; `name` shows in logs. */
  bus(name: string): Bus;
  /** Addresses actually bound (port 0 resolved), after start(). */
  addresses(): Array<{ host: string; port: number }>;
  /** Serves one already-connected stream (used by tests over in-memory pipes, and later WebSocket). */
  accept(socket: Socketish, listener?: ListenerInfo): Connection | undefined;
}

const SWEEP_MS = 1_000;

export function createBroker(o: BrokerOptions): EmbeddedBroker {
  const { clock, log } = o;
  const core = createBrokerCore(o.limits, clock, log);
  const servers: net.Server[] = [];
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

  const listen = (spec: ListenerSpec) =>
    new Promise<net.Server>((resolve, reject) => {
      const server = net.createServer({ noDelay: true }, (sock) => {
        accept(sock);
      });
      server.once("error", reject);
      server.listen({ host: spec.host, port: spec.port, ipv6Only: spec.host.includes(":") }, () => {
        server.off("error", reject);
        server.on("error", (err) => log.error("listener error", { host: spec.host, error: err }));
        resolve(server);
      });
    });

  return {
    name: "broker",
    core,
    accept,
    bus: (name) => localBus(core, name),
    addresses() {
      return servers.map((s) => {
        const a = s.address() as net.AddressInfo;
        return { host: a.address, port: a.port };
      });
    },
    async start() {
      for (const spec of o.listeners) {
        try {
          servers.push(await listen(spec));
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          // ::1 is missing when IPv6 is disabled (common on Pis): not fatal if another listener works.
          if (e.code === "EADDRNOTAVAIL" && o.listeners.length > 1) {
            log.warn("listener address not available; skipping it", { host: spec.host, port: spec.port });
            continue;
          }
          const hint = e.code === "EADDRINUSE" ? " (is another MQTT broker such as mosquitto running?)" : "";
          throw new Error(`cannot listen on ${spec.host}:${spec.port}: ${e.code ?? e.message}${hint}`);
        }
      }
      for (const a of this.addresses()) log.info("listening", { host: a.host, port: a.port, protocol: "mqtt" });
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
      const closed = servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
      for (const c of connections) c.fail(RC.SERVER_SHUTTING_DOWN, "server shutting down");
      for (const c of connections) c.socket.destroy();
      await Promise.all(closed);
      core.close();
    },
  };
}
