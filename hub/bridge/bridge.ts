// One uplink to an upstream ("cloud") broker, as a Service: local messages matching an out/both rule
// are appended to the durable queue (queue.ts) before anything else, then drained upstream in order
// with at most `max_inflight` unacknowledged (after a reconnect with a backlog, a quarter of them
// are kept for live messages on topics with nothing queued: live-lane.ts); a row is removed when the remote acknowledged it
// (QoS 1/2) or it was written to the socket (QoS 0). Inbound messages are published locally with
// the mapped topic and QoS, and acknowledged upstream only after that (inbound.ts).
// - One MQTT.js client for the bridge's life, reconnected by us (backoff with full jitter through the
//   Clock, failover over the address list). With clean_start: false it keeps its in-flight packets
//   across reconnects and resends them with the same packet ids, so QoS 2 stays exactly-once; the
//   QoS 2 part of that state is also on disk (session-store.ts), so it holds across a hub crash too;
//   so is a QoS 2 message from upstream between our PUBREC and its PUBREL (incoming-store.ts).
// - Loop prevention for `both`: remote subscriptions use No Local (MQTT 5), and every message we
//   publish locally carries the user property `hub-bridge: <name>`; marked messages never go up.
//   A bus that drops properties is covered by remembering what we just published (echo check).
// - Link state `online`/`offline` (retained) on <base>/bridge/<name>/status; our remote will marks
//   the hub offline upstream; counters on <base>/bridge/<name>/<counter>, logged when they change.
import { hostname } from "node:os";
import { join } from "node:path";
import type { IClientPublishOptions, IConnackPacket, MqttClient } from "mqtt";
import type { Bus, Cancel, Clock, Logger, Message, QoS, Service } from "../contracts.js";
import { backoffDelay, clientOptions, explain, openStream, readTlsMaterial, type Server, servers, type TlsMaterial } from "./connection.js";
import { type BridgeStats, bridgeStats, counterPublisher } from "./counters.js";
import { liveLane } from "./live-lane.js";
import { type IncomingStore, openIncomingStore } from "./incoming-store.js";
import { inbound } from "./inbound.js";
import { compileRules, localFilters, mapOutbound } from "./mapping.js";
import { type OutMessage, openQueue, type Queue, type QueuedMessage } from "./queue.js";
import { openSessionStore, type SessionStore } from "./session-store.js";
import { echoMemory, isRefusal, upstreamProps } from "./origin.js";
import type { BridgeConfig } from "./schema.js";

/** Rows read from the queue per event-loop turn, so a large backlog never blocks the hub. */
const DRAIN_BATCH = 1024;

export interface BridgeDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  stateDir: string;
  /** The hub's base topic (default "hub"): counters go to <base>/bridge/<name>/... */
  baseTopic?: string;
  /** For the backoff jitter; tests pass a fixed one. */
  random?: () => number;
  hostname?: string;
}

export type { BridgeStats };

export interface Bridge extends Service {
  stats(): BridgeStats;
  /** The queue (open between start and stop), for tests and diagnostics. */
  queue(): Queue | undefined;
}

export function createBridge(cfg: BridgeConfig, deps: BridgeDeps): Bridge {
  const { bus, clock, log } = deps;
  const rules = compileRules(cfg.topics);
  const base = `${deps.baseTopic ?? "hub"}/bridge/${cfg.name}`;
  const ownPrefix = `${base}/`;
  const clientId = cfg.client_id ?? `hub-${deps.hostname ?? hostname()}-${cfg.name}`;
  const remoteStatus = cfg.status_topic === false ? undefined : (cfg.status_topic ?? `${clientId}/status`);
  const addresses = servers(cfg);
  const random = deps.random ?? Math.random;
  const v5 = cfg.protocol_version === 5;

  let queue: Queue | undefined;
  let session: SessionStore | undefined;
  let held: IncomingStore | undefined; // inbound QoS 2 between PUBREC and PUBREL, on disk
  let client: MqttClient | undefined;
  let material: TlsMaterial = {};
  let server: Server = addresses[0]!;
  let online = false;
  let everOnline = false;
  let stopping = false;
  let subscribedRemote = false;
  let attempt = 0; // failed attempts since the last success: the backoff exponent
  let opened = 0; // streams opened: picks the next address (failover)
  let lastError: Error | undefined;
  let lastReported = "";
  let retryCancel: Cancel | undefined;
  let connectCancel: Cancel | undefined;
  let statsCancel: Cancel | undefined;
  const localCancels: Cancel[] = [];
  // Queue ids handed to MQTT.js and not yet acknowledged; `cursor` is the highest id handed over.
  const inflight = new Set<number>();
  let cursor = 0;
  let window = cfg.max_inflight;
  // Messages sent ahead of a backlog (live-lane.ts); a subset of `inflight`.
  const lane = liveLane();
  const liveIds = new Set<number>();
  let drainScheduled = false;
  let sent = 0;
  let reconnects = 0;
  const publishChanged = counterPublisher(bus, log, base);
  const echoes = echoMemory(cfg.name);
  const down = inbound({ name: cfg.name, rules, v5, bus, log, echoes });

  const publishLocal = (topic: string, payload: string, qos: QoS) =>
    bus.publish({ topic, payload: Buffer.from(payload), qos, retain: true }).catch((err) => log.warn("cannot publish locally", { topic, error: err }));

  // ---- outbound: local bus -> queue -> remote ------------------------------------------------

  const onLocal = (filter: string) => (m: Message) => {
    if (queue === undefined || stopping || m.topic.startsWith(ownPrefix)) return;
    const r = mapOutbound(rules, m.topic);
    // A topic matching several local filters arrives once per filter: the first rule's filter takes
    // it (and only that delivery may consume the echo memory).
    if (r === undefined || r.rule.localFilter !== filter || echoes.isEcho(m)) return;
    const out: OutMessage = { topic: r.topic, payload: m.payload, qos: Math.min(m.qos, r.rule.qos) as QoS, retain: m.retain };
    const props = v5 ? upstreamProps(m.properties) : undefined;
    if (props !== undefined) out.properties = props;
    if (r.rule.latestOnly) out.latestOnly = true;
    queue.append(out);
  };

  const scheduleDrain = () => {
    if (drainScheduled || !online) return;
    drainScheduled = true;
    setImmediate(drain);
  };

  const onSent = (id: number, err: Error | undefined) => {
    if (queue === undefined) return;
    inflight.delete(id);
    liveIds.delete(id);
    if (err === undefined) {
      queue.remove(id);
      sent++;
    } else if (isRefusal(err)) {
      // The remote will never take it (not authorized, too large, ...): retrying would block the queue.
      queue.remove(id);
      queue.countDrop("rejected");
      log.warn("the remote refused a message; dropped", { reason: err.message });
    } else if (id <= cursor) {
      // Not delivered: only a QoS 0 message can fail so ("No connection to broker"); MQTT.js keeps
      // QoS 1/2 ones and resends them itself. Rewind so drain() sends it again once connected.
      cursor = id - 1;
    }
    scheduleDrain();
  };

  const send = (c: MqttClient, q: Queue, r: QueuedMessage) => {
    let props = r.properties;
    if (props?.messageExpiryInterval !== undefined) {
      // MQTT-3.3.2-6: forward the remaining lifetime; an expired message is not sent at all.
      const left = props.messageExpiryInterval - Math.floor((clock.now() - r.at) / 1000);
      if (left <= 0) {
        q.remove(r.id);
        q.countDrop("expired");
        return;
      }
      props = { ...props, messageExpiryInterval: left };
    }
    inflight.add(r.id);
    const id = r.id;
    const opts: IClientPublishOptions = { qos: r.qos, retain: r.retain };
    if (v5 && props !== undefined) opts.properties = props;
    // MQTT.js stores a QoS 1/2 packet synchronously inside publish(): the session store links it to its row.
    session?.sending(id);
    c.publish(r.topic, r.payload, opts, (err) => onSent(id, err ?? undefined));
    session?.sending(undefined);
  };

  function drain() {
    drainScheduled = false;
    let budget = DRAIN_BATCH;
    // Live messages have a reserved share of the window (so one taken now goes out at once, not
    // after the backlog); the backlog, in order, has the rest.
    const room = Math.min(window - inflight.size, lane.share() - liveIds.size);
    if (room > 0 && online && client?.connected === true && queue !== undefined) {
      for (const r of lane.take(queue, cursor, room)) {
        budget--;
        if (inflight.has(r.id)) continue;
        liveIds.add(r.id);
        send(client, queue, r);
      }
    }
    while (online && client?.connected === true && queue !== undefined && inflight.size - liveIds.size < window - lane.share()) {
      if (budget <= 0) {
        scheduleDrain(); // yield to the event loop; go on next turn
        return;
      }
      const rows = queue.peek(cursor, Math.min(window - lane.share() - (inflight.size - liveIds.size), budget));
      if (rows.length === 0) return;
      budget -= rows.length;
      for (const r of rows) {
        cursor = r.id;
        if (!inflight.has(r.id)) send(client, queue, r);
        // A send that failed at once rewound the cursor: never move past it in this pass.
        if (cursor < r.id) return;
      }
    }
  }

  // ---- the link ------------------------------------------------------------------------------

  const onConnect = (connack: IConnackPacket) => {
    const c = client;
    if (c === undefined || stopping) return;
    connectCancel?.();
    connectCancel = undefined;
    online = true;
    attempt = 0;
    if (everOnline) reconnects++;
    everOnline = true;
    lastReported = "";
    // Leave one of the remote's Receive Maximum slots for our status message.
    const receiveMax = connack.properties?.receiveMaximum ?? 65_535;
    window = Math.max(1, Math.min(cfg.max_inflight, receiveMax - 1));
    if (queue !== undefined) lane.open(queue, window);
    log.info("uplink online", { url: server.url, session_present: connack.sessionPresent, queued: queue?.depth() ?? 0 });
    void publishLocal(`${base}/status`, "online", 1);
    if (remoteStatus !== undefined) {
      c.publish(remoteStatus, "online", { qos: 1, retain: true }, (err) => {
        if (err && isRefusal(err)) log.warn("the remote refused our status message", { topic: remoteStatus, reason: err.message });
      });
    }
    if (!connack.sessionPresent && held !== undefined && held.size() > 0) {
      // The remote lost our session, so it will never send the PUBRELs these wait for; it already
      // counts them as delivered (PUBREC went back). Publish them locally rather than drop them.
      const orphans = held.orphans();
      log.warn("the remote lost our session; publishing the QoS 2 messages it had already handed over", { count: orphans.length });
      for (const p of orphans) down.onRemote(p, () => held?.del(p, () => {}));
    }
    if (!connack.sessionPresent || !subscribedRemote) {
      subscribedRemote = true;
      down.subscribe(c);
    }
    scheduleDrain();
  };

  const onClose = () => {
    connectCancel?.();
    connectCancel = undefined;
    const was = online;
    online = false;
    if (cfg.clean_start && client !== undefined) {
      // The remote forgets our session: MQTT.js's in-flight packets are dropped and we resend every
      // queued message from the head of the queue on the next connection.
      for (const k of Object.keys(client.outgoing)) delete client.outgoing[Number(k)];
      inflight.clear();
      liveIds.clear();
      lane.close();
      cursor = 0;
    }
    if (stopping) return;
    const why = lastError === undefined ? "connection closed" : explain(lastError);
    if (was) {
      log.warn("uplink lost; queueing until it is back", { url: server.url, reason: why, queued: queue?.depth() ?? 0 });
      void publishLocal(`${base}/status`, "offline", 1);
    } else if (why !== lastReported) {
      log.warn("cannot connect upstream", { url: server.url, reason: why });
    } else {
      log.debug("cannot connect upstream", { url: server.url, reason: why, attempt });
    }
    lastReported = why;
    const delay = backoffDelay(attempt++, cfg.reconnect_min, cfg.reconnect_max, random);
    retryCancel = clock.after(delay, connectNext);
  };

  function connectNext() {
    retryCancel = undefined;
    const c = client;
    if (c === undefined || stopping) return;
    lastError = undefined;
    connectCancel = clock.after(cfg.connect_timeout, () => {
      connectCancel = undefined;
      if (online) return;
      lastError = new Error(`no answer within connect_timeout (${cfg.connect_timeout} ms)`);
      c.stream?.destroy();
    });
    if (opened === 0) c.connect();
    // Keeping the stores keeps the in-flight packets (and their ids) of the session we resume.
    else c.reconnect(cfg.clean_start ? undefined : { incomingStore: c.incomingStore, outgoingStore: c.outgoingStore });
    log.debug("connecting", { url: server.url });
  }

  // ---- counters ------------------------------------------------------------------------------

  const stats = (): BridgeStats => bridgeStats(queue, clock.now(), { online, sent, received: down.received(), reconnects });

  const publishCounters = () => {
    queue?.expire();
    const freed = queue?.shrink() ?? 0;
    if (freed > 0) log.debug("queue file shrunk", { pages: freed });
    publishChanged(stats(), queue);
  };

  return {
    name: `bridge/${cfg.name}`,
    stats,
    queue: () => queue,
    async start() {
      stopping = false;
      opened = 0;
      attempt = 0;
      subscribedRemote = false;
      lastReported = "";
      if (cfg.tls?.insecure) {
        log.warn("TLS certificate verification is OFF for this bridge (tls.insecure: true): anyone on the path can impersonate the broker");
      }
      if (cfg.tls !== undefined && addresses.some((a) => !a.tls)) log.warn("tls options are ignored for mqtt:// addresses (use mqtts://)");
      if (!v5 && rules.some((r) => r.direction === "both")) {
        log.info("MQTT 3.1.1 has no No Local: messages sent up on 'both' topics come back once and are not sent up again");
      }
      material = readTlsMaterial(cfg);
      const q = openQueue(
        join(deps.stateDir, `bridge-${cfg.name}.db`),
        {
          maxMessages: cfg.queue.max_messages,
          maxBytes: cfg.queue.max_bytes,
          maxAgeMs: cfg.queue.max_age,
          policy: cfg.queue.policy,
          synchronous: cfg.queue.synchronous,
        },
        { clock, log, protect: (id) => inflight.has(id), onAppend: scheduleDrain },
      );
      queue = q;
      const s = openSessionStore(q, { v5, log, keep: !cfg.clean_start });
      session = cfg.clean_start ? undefined : s;
      // QoS 2 messages the remote may already have: resumed under their packet ids, never resent as new.
      for (const f of session?.restored ?? []) inflight.add(f.rowId);
      const inq = openIncomingStore(q, { log, keep: !cfg.clean_start });
      held = cfg.clean_start ? undefined : inq;
      if (inq.size() > 0) log.info("QoS 2 messages from upstream received before the restart wait for their PUBREL", { count: inq.size() });
      if (s.restored.length > 0 && session !== undefined) {
        log.info("resuming QoS 2 messages in flight before the restart", { publish: s.restored.filter((f) => f.cmd === "publish").length, pubrel: s.restored.filter((f) => f.cmd === "pubrel").length });
      }
      if (q.depth() > 0) log.info("messages queued before the restart will be sent", { count: q.depth() });
      await publishLocal(`${base}/status`, "offline", 1);
      for (const f of localFilters(rules)) localCancels.push(await bus.subscribe(f, onLocal(f), { qos: 2 }));
      const { MqttClient } = await import("mqtt");
      const options = clientOptions(cfg, clientId, remoteStatus, clock);
      if (session !== undefined) options.outgoingStore = session;
      if (held !== undefined) options.incomingStore = held;
      const c = new MqttClient(() => {
        server = addresses[opened++ % addresses.length]!;
        return openStream(server, cfg, material, (err) => {
          lastError = err;
        });
      }, options);
      for (const f of session?.restored ?? []) {
        // MQTT.js resends stored packets on connect and calls the callback it finds here when they
        // complete. A PUBCOMP with an error (v5 0x92: the remote no longer knows the id) still means
        // it has the message: PUBREC had come back before the restart.
        c.outgoing[f.messageId] = { volatile: false, cmd: f.cmd, cb: (err) => onSent(f.rowId, f.cmd === "pubrel" ? undefined : (err ?? undefined)) };
      }
      c.handleMessage = down.onRemote;
      c.on("connect", onConnect);
      c.on("close", onClose);
      c.on("error", (err) => {
        lastError = err;
      });
      client = c;
      log.info("bridge starting", { url: addresses.map((a) => a.url).join(","), client_id: clientId, queued: q.depth() });
      connectNext();
      statsCancel = clock.every(cfg.stats_interval, publishCounters);
      publishCounters();
    },
    async stop() {
      stopping = true;
      retryCancel?.();
      connectCancel?.();
      statsCancel?.();
      for (const c of localCancels.splice(0)) c();
      const c = client;
      client = undefined;
      online = false;
      // Closed without DISCONNECT on purpose: the remote then publishes our will ("offline").
      if (c !== undefined) await new Promise<void>((resolve) => c.end(true, {}, () => resolve()));
      await publishLocal(`${base}/status`, "offline", 1);
      publishCounters();
      queue?.close();
      queue = undefined;
      session = undefined;
      held = undefined;
      lane.close();
      liveIds.clear();
      inflight.clear();
      cursor = 0;
    },
    async reload() {
      // Certificates renewed on disk are used from the next connection on.
      material = readTlsMaterial(cfg);
    },
  };
}
