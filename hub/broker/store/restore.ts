// Start-up: reads every row of broker.db (load, which throws on anything that does not decode, so
// the caller can treat the file as corrupt) and rebuilds the broker's memory from it (apply), before
// any listener accepts. Caps are enforced again here (the config may have been lowered): retained
// messages over max_retained_*, queued messages over max_queued_* are dropped, counted and deleted.
// Expiry continues across restarts: sessions and wills carry the wall-clock time they went offline.
import type { Clock, QoS } from "../../contracts.js";
import type { BrokerCore } from "../core.js";
import type { Identity } from "../auth/types.js";
import type { RoutedMessage } from "../publish-encode.js";
import type { RetainedMessage } from "../retained.js";
import { createSession, type Delivery, enqueue, type InflightEntry, type Session } from "../session.js";
import { decodeProps, decodePublisher, decodeWill, monoExpiry, qosOf } from "./codec.js";
import type { Db } from "./db.js";

interface MsgRow {
  id: number;
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  props: string | null;
  expires_at: number | null;
}
interface RetainedRow {
  topic: string;
  payload: Buffer;
  qos: number;
  props: string | null;
  expires_at: number | null;
  publisher: string | null;
}
interface SessionRow {
  client_id: string;
  expiry_ms: number | null;
  offline_at: number | null;
  will: string | null;
  username: string | null;
}
interface SubRow {
  client_id: string;
  filter: string;
  qos: number;
  nl: number;
  rap: number;
  rh: number;
  sub_id: number | null;
}
interface OutRow {
  client_id: string;
  seq: number;
  msg_id: number;
  qos: number;
  retain: number;
  sub_ids: string | null;
  packet_id: number | null;
  state: number;
}
interface Inq2Row {
  client_id: string;
  packet_id: number;
}

export interface LoadedState {
  msgs: MsgRow[];
  retained: RetainedRow[];
  sessions: SessionRow[];
  subs: SubRow[];
  outq: OutRow[];
  inq2: Inq2Row[];
}

export const EMPTY_STATE = (): LoadedState => ({ msgs: [], retained: [], sessions: [], subs: [], outq: [], inq2: [] });

export function loadState(db: Db): LoadedState {
  return {
    msgs: db.prepare<[], MsgRow>("SELECT id, topic, payload, qos, retain, props, expires_at FROM msgs").all(),
    retained: db.prepare<[], RetainedRow>("SELECT topic, payload, qos, props, expires_at, publisher FROM retained").all(),
    sessions: db.prepare<[], SessionRow>("SELECT client_id, expiry_ms, offline_at, will, username FROM sessions").all(),
    subs: db.prepare<[], SubRow>("SELECT client_id, filter, qos, nl, rap, rh, sub_id FROM subs").all(),
    outq: db.prepare<[], OutRow>("SELECT client_id, seq, msg_id, qos, retain, sub_ids, packet_id, state FROM outq ORDER BY client_id, seq").all(),
    inq2: db.prepare<[], Inq2Row>("SELECT client_id, packet_id FROM inq2").all(),
  };
}

/** What apply needs from the store: row deletions for what is not restored, and message ids. */
export interface RestoreHooks {
  dropRetained(topic: string): void;
  dropOut(clientId: string, seq: number): void;
  dropMsg(id: number): void;
  /** The restored message `msg` is row `id`; called once per delivery that references it. */
  adopt(msg: RoutedMessage, id: number): void;
  /** Attaches the journal to a restored session (its rows exist already). */
  attach(s: Session): void;
}

export interface RestoreSummary {
  sessions: number;
  subscriptions: number;
  queued: number;
  inflight: number;
  retained: number;
  /** Over the caps (retained or per-session queue) or referring to a missing message. */
  dropped: number;
  /** Message Expiry passed while the hub was down. */
  expired: number;
}

function validSession(r: SessionRow): boolean {
  return (
    typeof r.client_id === "string" &&
    (r.expiry_ms === null || (Number.isInteger(r.expiry_ms) && r.expiry_ms > 0)) &&
    (r.username === null || typeof r.username === "string")
  );
}

/** Rebuilds memory from `st`; throws (caller: corrupt) on rows that make no sense. */
export function applyState(core: BrokerCore, st: LoadedState, clock: Clock, hooks: RestoreHooks): RestoreSummary {
  const sum: RestoreSummary = { sessions: 0, subscriptions: 0, queued: 0, inflight: 0, retained: 0, dropped: 0, expired: 0 };
  const mono = clock.monotonic();
  const expiredAt = (e: number | undefined) => e !== undefined && e <= mono;

  const publishers = new Map<string, Identity | undefined>();
  for (const r of st.retained) {
    const expiresAt = monoExpiry(r.expires_at, clock);
    if (expiredAt(expiresAt)) {
      hooks.dropRetained(r.topic);
      sum.expired++;
      continue;
    }
    const m: RetainedMessage = { topic: r.topic, payload: r.payload, qos: qosOf(r.qos), properties: decodeProps(r.props), storedAt: mono, expiresAt };
    // One identity object per publisher, as core.ts keeps them (the ACL caches its answers per object).
    if (r.publisher !== null) {
      let p = publishers.get(r.publisher);
      if (p === undefined) {
        p = decodePublisher(r.publisher);
        publishers.set(r.publisher, p);
      }
      m.publisher = p;
    }
    const res = core.retained.set(m);
    if (res === "stored") sum.retained++;
    else {
      hooks.dropRetained(r.topic);
      sum.dropped++;
    }
  }

  const msgs = new Map<number, RoutedMessage>();
  for (const r of st.msgs) {
    const m: RoutedMessage = { topic: r.topic, payload: r.payload, qos: qosOf(r.qos), retain: r.retain === 1 };
    const props = decodeProps(r.props);
    if (props) m.properties = props;
    const e = monoExpiry(r.expires_at, clock);
    if (e !== undefined) m.expiresAt = e;
    msgs.set(r.id, m);
  }
  const used = new Set<number>();

  const sessions = new Map<string, Session>();
  for (const r of st.sessions) {
    if (!validSession(r)) throw new Error(`bad session row for ${String(r.client_id)}`);
    const s = createSession(r.client_id);
    s.expiryMs = r.expiry_ms ?? Number.POSITIVE_INFINITY;
    s.will = decodeWill(r.will);
    // The owner: nobody else takes over this client id after a restart (C10), and the will is
    // re-authorized as this user when published (G7).
    s.username = r.username ?? undefined;
    s.offlineAt = r.offline_at ?? -1;
    sessions.set(r.client_id, s);
    core.sessions.set(r.client_id, s);
    sum.sessions++;
  }
  for (const r of st.subs) {
    const s = sessions.get(r.client_id);
    if (!s) continue; // rows of a session whose row is gone: deleted with the next session end
    core.tree.add(s, r.filter, {
      qos: qosOf(r.qos),
      noLocal: r.nl === 1,
      retainAsPublished: r.rap === 1,
      retainHandling: (r.rh === 1 || r.rh === 2 ? r.rh : 0) as 0 | 1 | 2,
      subscriptionId: r.sub_id ?? undefined,
    });
    sum.subscriptions++;
  }
  for (const r of st.outq) {
    const s = sessions.get(r.client_id);
    const msg = msgs.get(r.msg_id);
    if (!s || !msg) {
      hooks.dropOut(r.client_id, r.seq);
      sum.dropped++;
      continue;
    }
    if (r.seq >= s.nextSeq) s.nextSeq = r.seq + 1;
    const d: Delivery = { msg, qos: qosOf(r.qos) as QoS, retain: r.retain === 1, seq: r.seq };
    if (r.sub_ids !== null) d.subscriptionIds = JSON.parse(r.sub_ids) as number[];
    if (r.packet_id !== null) {
      // In flight when the hub stopped: resent with DUP (or PUBREL) on resume, same packet id.
      const e: InflightEntry = { ...d, id: r.packet_id, state: r.state === 2 ? "pubrel" : "publish" };
      s.inflight.set(r.packet_id, e);
      if (r.packet_id >= s.nextId) s.nextId = r.packet_id === 65535 ? 1 : r.packet_id + 1;
      hooks.adopt(msg, r.msg_id);
      used.add(r.msg_id);
      sum.inflight++;
      continue;
    }
    if (expiredAt(msg.expiresAt)) {
      hooks.dropOut(r.client_id, r.seq);
      sum.expired++;
      continue;
    }
    // The queue caps count restored messages like live ones (s.journal is not attached yet).
    if (!enqueue(s, d, core.queueLimits)) {
      hooks.dropOut(r.client_id, r.seq);
      core.stats.publishDropped++;
      sum.dropped++;
      continue;
    }
    hooks.adopt(msg, r.msg_id);
    used.add(r.msg_id);
    sum.queued++;
  }
  for (const [id] of msgs) if (!used.has(id)) hooks.dropMsg(id);
  for (const r of st.inq2) sessions.get(r.client_id)?.inboundQos2.add(r.packet_id);

  // Offline timers, counted from when each session went offline. A session that was connected when
  // the hub stopped went offline now: its will follows its Will Delay, as on any abnormal close.
  const now = clock.now();
  for (const s of sessions.values()) {
    hooks.attach(s);
    const wasOnline = s.offlineAt < 0;
    if (wasOnline) s.offlineAt = now;
    if (wasOnline) core.store?.sessionSaved(s);
    const willIn = s.will ? s.offlineAt + s.will.delayMs - now : 0;
    const expiryIn = Number.isFinite(s.expiryMs) ? s.offlineAt + s.expiryMs - now : Number.POSITIVE_INFINITY;
    if (expiryIn <= 0) sum.sessions--;
    core.scheduleOffline(s, willIn, expiryIn);
  }
  return sum;
}
