// The broker store's pending batch: every change recorded since the last commit, kept as the final
// state of each row, keyed (store/journal.ts), so a row changed many times in one batch is written
// once, and a delivery created and acknowledged within one batch is never written at all.
// Messages are stored once (msgs) and referenced by every session holding them (outq); `refs`
// counts the references so a message row is deleted (or never written) when the last one goes.
import type { Clock } from "../../contracts.js";
import type { RoutedMessage } from "../publish-encode.js";
import type { RetainedMessage } from "../retained.js";
import type { Delivery, Session } from "../session.js";
import { encodeProps, wallExpiry } from "./codec.js";

export interface Entry<R> {
  row: R | null;
  /** The row was created in this batch (not in the file): deleting it needs no SQL. */
  fresh: boolean;
}
export interface MsgRow {
  topic: string;
  payload: Buffer;
  qos: number;
  retain: number;
  props: string | null;
  expiresAt: number | null;
}
export interface OutRow {
  msgId: number;
  qos: number;
  retain: number;
  subIds: string | null;
  packetId: number | null;
  state: number;
}
export interface SessionRow {
  expiryMs: number | null;
  offlineAt: number | null;
  will: string | null;
  /** The owner (C10); null: anonymous. */
  username: string | null;
}
export interface SubRow {
  qos: number;
  nl: number;
  rap: number;
  rh: number;
  subId: number | null;
}
export interface ClientOps {
  /** Delete every row of the client first (session ended); later entries are applied after. */
  clear: boolean;
  session: SessionRow | null | undefined;
  subs: Map<string, SubRow | null> | undefined;
  out: Map<number, Entry<OutRow>> | undefined;
  inq2: Map<number, boolean> | undefined;
}
export interface MsgRef {
  id: number;
  refs: number;
}

export const STATE = { queued: 0, publish: 1, pubrel: 2 } as const;

export interface Batch {
  msgs: Map<number, Entry<MsgRow>>;
  // The message itself, encoded at commit: its publisher may be filled in after it was stored (a
  // retained will, core.ts publishWill), and a topic replaced many times in a batch is encoded once.
  retained: Map<string, RetainedMessage | null>;
  clients: Map<string, ClientOps>;
  /** Changes recorded since the last commit. */
  ops: number;
  readonly refs: Map<RoutedMessage, MsgRef>;
  nextMsgId: number;
  /** Counts one change and lets the store schedule its commit. */
  noted(): void;
  client(id: string): ClientOps;
  ref(m: RoutedMessage): number;
  unref(m: RoutedMessage): void;
  putOut(s: Session, d: Delivery, packetId: number | null, state: number, isNew: boolean): void;
  dropOut(clientId: string, seq: number): void;
  clearClient(s: Session, ended: boolean): void;
  /** After a commit: the file holds everything recorded; message ids and references carry on. */
  reset(): void;
}

/** `schedule` is called after every change (the store's group-commit timer). */
export function createBatch(clock: Clock, schedule: () => void): Batch {
  const noted = () => {
    b.ops++;
    schedule();
  };
  const client = (id: string): ClientOps => {
    let c = b.clients.get(id);
    if (!c) {
      c = { clear: false, session: undefined, subs: undefined, out: undefined, inq2: undefined };
      b.clients.set(id, c);
    }
    return c;
  };

  const ref = (m: RoutedMessage): number => {
    let r = b.refs.get(m);
    if (!r) {
      r = { id: b.nextMsgId++, refs: 0 };
      b.refs.set(m, r);
      const row: MsgRow = {
        topic: m.topic,
        payload: m.payload,
        qos: m.qos,
        retain: m.retain ? 1 : 0,
        props: encodeProps(m.properties),
        expiresAt: wallExpiry(m.expiresAt, clock),
      };
      b.msgs.set(r.id, { row, fresh: true });
    }
    r.refs++;
    return r.id;
  };
  const unref = (m: RoutedMessage) => {
    const r = b.refs.get(m);
    if (!r || --r.refs > 0) return;
    b.refs.delete(m);
    const e = b.msgs.get(r.id);
    if (e?.fresh) b.msgs.delete(r.id);
    else b.msgs.set(r.id, { row: null, fresh: false });
  };

  const putOut = (s: Session, d: Delivery, packetId: number | null, state: number, isNew: boolean) => {
    const c = client(s.clientId);
    c.out ??= new Map();
    const seq = d.seq!;
    const prev = c.out.get(seq);
    const row: OutRow = {
      msgId: b.refs.get(d.msg)!.id,
      qos: d.qos,
      retain: d.retain ? 1 : 0,
      subIds: d.subscriptionIds ? JSON.stringify(d.subscriptionIds) : null,
      packetId,
      state,
    };
    c.out.set(seq, { row, fresh: isNew || (prev?.fresh ?? false) });
    noted();
  };
  const dropOut = (clientId: string, seq: number) => {
    const c = client(clientId);
    c.out ??= new Map();
    if (c.out.get(seq)?.fresh) c.out.delete(seq);
    else c.out.set(seq, { row: null, fresh: false });
    noted();
  };
  const clearClient = (s: Session, ended: boolean) => {
    const c = client(s.clientId);
    c.clear = true;
    c.subs = c.out = c.inq2 = undefined;
    c.session = ended ? null : c.session;
    noted();
  };

  const b: Batch = {
    msgs: new Map(),
    retained: new Map(),
    clients: new Map(),
    ops: 0,
    refs: new Map(),
    nextMsgId: 1,
    noted,
    client,
    ref,
    unref,
    putOut,
    dropOut,
    clearClient,
    reset() {
      b.msgs = new Map();
      b.retained = new Map();
      b.clients = new Map();
      b.ops = 0;
    },
  };
  return b;
}
