// A client's session (MQTT-4.1): its subscriptions live in the broker's tree; here is the rest —
// outbound messages in flight and queued, inbound QoS 2 ids awaiting PUBREL, the will, expiry.
// A session outlives its network connection when the client asked for that (clean=0 / Session
// Expiry > 0). Delivery order per session is the order of routing (MQTT-4.6.0-6).
import type { Cancel, QoS } from "../contracts.js";
import type { RoutedMessage } from "./publish-encode.js";

export interface Delivery {
  msg: RoutedMessage;
  qos: QoS;
  retain: boolean;
  subscriptionIds?: number[];
  /** Key of this delivery's row in the durable store (store/journal.ts); set once it is journaled. */
  seq?: number;
}

export interface InflightEntry extends Delivery {
  id: number;
  /** "publish": waiting for PUBACK/PUBREC; "pubrel": PUBREL sent, waiting for PUBCOMP. */
  state: "publish" | "pubrel";
  /** True while a QoS 2 PUBLISH waits for its packet id to be committed (holdUntilCommitted). */
  held?: boolean;
}

/** What a session needs from its live connection. */
export interface Link {
  readonly receiveMaximum: number;
  /** True while the socket's write buffer is over its high-water mark. */
  blocked(): boolean;
  /** Sends a PUBLISH; false when it was dropped because it exceeds the client's Maximum Packet Size (MQTT-3.1.2-25). */
  sendPublish(d: Delivery, id: number, dup: boolean): boolean;
  sendPubrel(id: number): void;
  /** Moves the session's queue on (pump) once a held send has gone. */
  pump(): void;
  /** Ends the connection with a reason (v5 DISCONNECT first). */
  fail(reason: number, message: string): void;
}

export interface Will {
  msg: RoutedMessage;
  delayMs: number;
  /** v5 Message Expiry of the will, counted from when it is published. */
  expirySeconds?: number;
}

/**
 * The write-behind log of a persistent session's outbound state (store/journal.ts implements it).
 * Called after each in-memory change; only for QoS 1/2 deliveries.
 */
export interface SessionJournal {
  /** A delivery entered the queue (no packet id yet). */
  queued(s: Session, d: Delivery): void;
  /** A delivery was sent with a packet id (state "publish"), from the queue or directly. */
  sent(s: Session, e: InflightEntry): void;
  /** PUBREC received: from now on PUBREL is resent, never the PUBLISH. */
  released(s: Session, e: InflightEntry): void;
  /** The delivery is gone: acknowledged, expired, refused or too large. */
  removed(s: Session, d: Delivery): void;
  /** Every queued and in-flight delivery is about to be dropped (session end). */
  cleared(s: Session): void;
  /** Runs `run` once what was recorded so far is committed (or `fail` if the commit failed). */
  afterCommit(run: () => void, fail?: () => void): void;
}

export interface Session {
  readonly kind: "client";
  readonly clientId: string;
  /** The authenticated user that owns this session (auth/): undefined for anonymous clients. */
  username: string | undefined;
  link: Link | undefined;
  /** Session Expiry Interval in ms; 0 = ends with the connection; Infinity = never. */
  expiryMs: number;
  expiryTimer: Cancel | undefined;
  /** Made on first use (ClientSession): reading it on an idle session allocates. */
  readonly inflight: Map<number, InflightEntry>;
  queue: Delivery[];
  queueHead: number;
  queuedBytes: number;
  queuedQos0: number;
  /** Made on first use, like `inflight`. */
  readonly inboundQos2: Set<number>;
  nextId: number;
  will: Will | undefined;
  willTimer: Cancel | undefined;
  dropped: number;
  /** Monotonic ms since the queue of this online session went over its high-water mark; -1 if not. */
  congestedSince: number;
  /** Set while the session is written to the durable store (Session Expiry > 0 and storage on). */
  journal: SessionJournal | undefined;
  /** Next store key for a delivery of this session. */
  nextSeq: number;
  /** QoS 2 PUBLISHes waiting for their commit; while > 0 everything after them waits in the queue. */
  held: number;
  /** Wall-clock ms when the session went offline (expiry and Will Delay count from it); -1 while connected. */
  offlineAt: number;
  /** Scratch space for routing (see broker.ts): avoids a Map per routed message. */
  routeMark: number;
  routeQos: QoS;
  routeRetain: boolean;
  routeSubIds: number[] | undefined;
}

export interface QueueLimits {
  maxMessages: number;
  maxBytes: number;
}

/**
 * A session whose packet-id tables are made on first use. Most sessions of a home broker are idle
 * QoS 0 subscribers that never need them, and an empty Map or Set costs ~150-180 bytes of heap:
 * about a sixth of an idle connection's share (issue 3, "≤ 5 KB per idle connection").
 */
class ClientSession implements Session {
  readonly kind = "client";
  username: string | undefined = undefined;
  link: Link | undefined = undefined;
  expiryMs = 0;
  expiryTimer: Cancel | undefined = undefined;
  queue: Delivery[] = [];
  queueHead = 0;
  queuedBytes = 0;
  queuedQos0 = 0;
  nextId = 1;
  will: Will | undefined = undefined;
  willTimer: Cancel | undefined = undefined;
  dropped = 0;
  congestedSince = -1;
  journal: SessionJournal | undefined = undefined;
  nextSeq = 1;
  held = 0;
  offlineAt = -1;
  routeMark = 0;
  routeQos: QoS = 0;
  routeRetain = false;
  routeSubIds: number[] | undefined = undefined;
  private inflightMap: Map<number, InflightEntry> | undefined = undefined;
  private inboundSet: Set<number> | undefined = undefined;

  constructor(readonly clientId: string) {}

  get inflight(): Map<number, InflightEntry> {
    if (this.inflightMap === undefined) this.inflightMap = new Map();
    return this.inflightMap;
  }

  get inboundQos2(): Set<number> {
    if (this.inboundSet === undefined) this.inboundSet = new Set();
    return this.inboundSet;
  }

  /** Drops both tables (they are made again if used). */
  clearTables(): void {
    this.inflightMap = undefined;
    this.inboundSet = undefined;
  }
}

export function createSession(clientId: string): Session {
  return new ClientSession(clientId);
}

function sizeOf(d: Delivery): number {
  return d.msg.payload.length + d.msg.topic.length + 32;
}

export function queueLength(s: Session): number {
  return s.queue.length - s.queueHead;
}

function shift(s: Session): Delivery | undefined {
  if (s.queueHead >= s.queue.length) return undefined;
  const d = s.queue[s.queueHead]!;
  s.queue[s.queueHead++] = undefined as unknown as Delivery;
  if (s.queueHead > 1024 && s.queueHead * 2 > s.queue.length) {
    s.queue = s.queue.slice(s.queueHead);
    s.queueHead = 0;
  }
  s.queuedBytes -= sizeOf(d);
  if (d.qos === 0) s.queuedQos0--;
  return d;
}

/**
 * Appends to the outbound queue within its caps. When full, the oldest QoS 0 messages make room
 * (they are the ones the client can lose by definition); when that cannot make enough room, the new
 * message is dropped instead. Every drop is counted in `s.dropped`. Returns whether it was queued.
 */
export function enqueue(s: Session, d: Delivery, limits: QueueLimits): boolean {
  compactPayload(d.msg);
  const size = sizeOf(d);
  const full = () => queueLength(s) >= limits.maxMessages || s.queuedBytes + size > limits.maxBytes;
  if (full()) {
    // Evict only when dropping every queued QoS 0 message would make room; else drop the new one.
    let qos0Bytes = 0;
    for (let i = s.queueHead; i < s.queue.length; i++) if (s.queue[i]!.qos === 0) qos0Bytes += sizeOf(s.queue[i]!);
    const fits = queueLength(s) - s.queuedQos0 < limits.maxMessages && s.queuedBytes - qos0Bytes + size <= limits.maxBytes;
    if (!fits) {
      s.dropped++;
      return false;
    }
    while (full()) dropOldestQos0(s);
  }
  s.queue.push(d);
  s.queuedBytes += size;
  if (d.qos === 0) s.queuedQos0++;
  else s.journal?.queued(s, d);
  return true;
}

/**
 * A payload parsed from a socket read is a slice of that whole read (up to 64 KiB). A message that
 * waits in a queue must not keep the whole read alive: copy it once (the message is shared by all
 * its subscribers, so the copy is too).
 */
function compactPayload(m: Delivery["msg"]): void {
  const p = m.payload;
  if (p.buffer.byteLength > p.length * 2 + 256) m.payload = Buffer.from(p);
}

function dropOldestQos0(s: Session): boolean {
  for (let i = s.queueHead; i < s.queue.length; i++) {
    const d = s.queue[i]!;
    if (d.qos !== 0) continue;
    s.queue.splice(i, 1);
    s.queuedBytes -= sizeOf(d);
    s.queuedQos0--;
    s.dropped++;
    return true;
  }
  return false;
}

function allocateId(s: Session): number {
  for (;;) {
    const id = s.nextId;
    s.nextId = id === 65535 ? 1 : id + 1;
    if (!s.inflight.has(id)) return id;
  }
}

function expired(d: Delivery, now: number): boolean {
  return d.msg.expiresAt !== undefined && d.msg.expiresAt <= now;
}

/** Sends one delivery now, if the link has room; false means "queue it". */
function trySend(s: Session, link: Link, d: Delivery): boolean {
  if (link.blocked() || s.held > 0) return false;
  if (d.qos === 0) {
    link.sendPublish(d, 0, false);
    return true;
  }
  if (s.inflight.size >= link.receiveMaximum) return false; // MQTT-3.3.4-9
  const id = allocateId(s);
  // Explicit fields, not a spread: this runs once per QoS > 0 delivery.
  const entry: InflightEntry = { msg: d.msg, qos: d.qos, retain: d.retain, subscriptionIds: d.subscriptionIds, seq: d.seq, id, state: "publish" };
  s.inflight.set(id, entry);
  if (d.qos === 2 && s.journal) {
    holdUntilCommitted(s, s.journal, entry);
    return true;
  }
  // Too large for the client: discarded as if sent (MQTT-3.1.2-25), so the flow goes on.
  if (link.sendPublish(d, id, false)) s.journal?.sent(s, entry);
  else {
    s.inflight.delete(id);
    s.journal?.removed(s, entry);
  }
  return true;
}

/**
 * A QoS 2 PUBLISH to a persistent session leaves only once its packet id is committed. Sent before,
 * a crash ahead of the commit would bring the message back from the queue under a new packet id, and
 * the client, which recognises a resent PUBLISH by its id (MQTT-4.3.3-9), would deliver it twice:
 * exactly what QoS 2 promises never to do. Everything after it in this session waits in the queue
 * (s.held), so delivery order stays routing order (MQTT-4.6.0-6). The cost is one group commit
 * (storage.commit_interval, 5 ms) of latency for QoS 2 to persistent sessions, none for the rest.
 * If the commit fails (disk full) it goes anyway: the store is then reported as not durable.
 */
function holdUntilCommitted(s: Session, journal: SessionJournal, e: InflightEntry): void {
  s.held++;
  e.held = true;
  journal.sent(s, e);
  let inside = true; // released at once (store not durable): the caller's pump loop goes on by itself
  const release = (): void => {
    s.held--;
    e.held = false;
    const link = s.link;
    // Offline now: it stays in flight and is resent (DUP) when the session resumes.
    if (!link) return;
    // Still ours to send (not acknowledged, expired, or cleared in the meantime)?
    if (s.inflight.get(e.id) === e && e.state === "publish" && !link.sendPublish(e, e.id, false)) {
      s.inflight.delete(e.id);
      journal.removed(s, e);
    }
    if (s.held === 0 && !inside) link.pump();
  };
  journal.afterCommit(release); // no `fail`: it runs after a failed commit too
  inside = false;
}

/** Delivers to the session: straight to the socket when possible, else to the queue. */
export function deliver(s: Session, d: Delivery, limits: QueueLimits, now: number): boolean {
  const link = s.link;
  if (!link) {
    // Offline: QoS 0 is not kept for disconnected sessions (MQTT-3.1.2-5 allows either; we save memory).
    if (d.qos === 0) return true;
    return enqueue(s, d, limits);
  }
  if (expired(d, now)) return true;
  if (queueLength(s) === 0 && trySend(s, link, d)) return true;
  return enqueue(s, d, limits);
}

/** Moves queued messages to the link while it has room (after an ack, a drain or a resume). */
export function pump(s: Session, now: number): void {
  const link = s.link;
  if (!link) return;
  while (s.queueHead < s.queue.length) {
    const d = s.queue[s.queueHead]!;
    if (expired(d, now)) {
      shift(s);
      if (d.qos > 0) s.journal?.removed(s, d);
      continue;
    }
    if (!trySend(s, link, d)) return;
    shift(s);
  }
}

/** On session resume: resend unacknowledged PUBLISH (DUP=1) and PUBREL, in order (MQTT-4.4.0-1). */
export function resend(s: Session): void {
  const link = s.link;
  if (!link) return;
  for (const e of s.inflight.values()) {
    if (e.held) continue; // goes when its commit is done (holdUntilCommitted)
    if (e.state === "pubrel") link.sendPubrel(e.id);
    else if (!link.sendPublish(e, e.id, true)) {
      s.inflight.delete(e.id);
      s.journal?.removed(s, e);
    }
  }
}

/** PUBACK (QoS 1) or PUBCOMP (QoS 2): the flow for that id is complete. */
export function complete(s: Session, id: number, expect: "puback" | "pubcomp"): boolean {
  const e = s.inflight.get(id);
  if (!e) return false;
  if (expect === "puback" ? e.qos !== 1 : e.state !== "pubrel") return false;
  s.inflight.delete(id);
  s.journal?.removed(s, e);
  return true;
}

/** PUBREC: the client has the message; from now on we resend PUBREL, never the PUBLISH. */
export function received(s: Session, id: number, failed: boolean): "pubrel" | "done" | "unknown" {
  const e = s.inflight.get(id);
  if (!e || e.qos !== 2) return "unknown";
  if (failed) {
    // v5 PUBREC with a reason code >= 0x80 ends the flow (MQTT-4.3.3-4 note, §3.5.2.1).
    s.inflight.delete(id);
    s.journal?.removed(s, e);
    return "done";
  }
  e.state = "pubrel";
  s.journal?.released(s, e);
  return "pubrel";
}

/**
 * Removes the queued (not yet sent) deliveries `keep` rejects, and their store rows; returns how many.
 * In-flight ones stay: they were sent already and are resent as they are (MQTT-4.4.0-1).
 */
export function dropQueued(s: Session, keep: (d: Delivery) => boolean): number {
  let n = 0;
  const kept: Delivery[] = [];
  for (let i = s.queueHead; i < s.queue.length; i++) {
    const d = s.queue[i]!;
    if (keep(d)) {
      kept.push(d);
      continue;
    }
    n++;
    s.queuedBytes -= sizeOf(d);
    if (d.qos === 0) s.queuedQos0--;
    else s.journal?.removed(s, d);
  }
  if (n > 0) {
    s.queue = kept;
    s.queueHead = 0;
  }
  return n;
}

/** Drops all queued and in-flight state (clean start or session end). */
export function clearSession(s: Session): void {
  s.journal?.cleared(s);
  if (s instanceof ClientSession) s.clearTables();
  else {
    s.inflight.clear();
    s.inboundQos2.clear();
  }
  s.queue = [];
  s.queueHead = 0;
  s.queuedBytes = 0;
  s.queuedQos0 = 0;
}
