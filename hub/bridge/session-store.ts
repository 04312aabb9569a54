// The bridge's outgoing MQTT session that must outlive a hub crash: an MQTT.js outgoing Store
// (IStore) whose QoS 2 entries are written to a table in the bridge's queue file.
// Why: MQTT.js keeps in-flight packets in memory. If the hub dies after the remote has a QoS 2
// message (PUBREC, or PUBREL already sent) but before PUBCOMP, the restarted hub would send the
// queued row again under a NEW packet id, and the remote would deliver it twice. MQTT-4.3.3 only
// deduplicates by packet id, so exactly-once across a crash needs the id, and whether PUBREC came
// back, on disk before the bytes are on the wire:
// - put(PUBLISH QoS 2): row (packet id → queue row) committed before MQTT.js writes the packet.
// - put(PUBREL) (PUBREC received): marked in the same transaction that removes the queue row — from
//   then on the remote owns the message and only the PUBREL must be resent.
// - del() (PUBCOMP): forgotten.
// On restart the entries are loaded (PUBLISH rebuilt from its queue row with DUP set, or a bare
// PUBREL) and MQTT.js resends them with their old ids when the session resumes (client._onConnect).
// QoS 1 entries stay in memory only: a repeat is allowed at QoS 1 and the queue row is resent anyway.
import { Readable } from "node:stream";
import type { IPublishPacket, IStore, Packet } from "mqtt";
import type { Logger } from "../contracts.js";
import type { Queue } from "./queue.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS qos2_out (
  message_id INTEGER PRIMARY KEY,
  row_id INTEGER NOT NULL,
  pubrec INTEGER NOT NULL DEFAULT 0,
  seq INTEGER NOT NULL
);
`;

export interface RestoredFlight {
  messageId: number;
  /** The queue row the message came from (already removed when `cmd` is pubrel). */
  rowId: number;
  cmd: "publish" | "pubrel";
}

export interface SessionStore extends IStore {
  /** The queue row the next put() of a QoS 2 PUBLISH belongs to; set just around client.publish(). */
  sending(rowId: number | undefined): void;
  /** QoS 2 messages that were in flight when the hub last stopped, oldest first. */
  readonly restored: readonly RestoredFlight[];
}

type Stored = Packet & { messageId?: number };

/**
 * Runs writes to a session table in the queue's file. A failure (disk full or similar) is logged
 * once until a write works again, and not thrown: the session stays exactly-once in memory, only
 * not across a crash. Writes after the file was closed are skipped.
 */
export function sessionWriter(queue: Queue, log: Logger, table: string, risk: string): (what: string, fn: () => void) => void {
  let failing = false;
  return (what, fn) => {
    if (!queue.db.open) return;
    try {
      fn();
      failing = false;
    } catch (err) {
      if (!failing) log.error(`cannot write ${table} (${what}); ${risk} is not crash-safe until it can`, { file: queue.path, error: err });
      failing = true;
    }
  };
}

/**
 * Opens the store on the queue's file. `keep: false` (clean_start: the remote forgets our session)
 * empties the table instead of restoring it: resending under old ids would mean nothing there.
 */
export function openSessionStore(queue: Queue, opts: { v5: boolean; log: Logger; keep: boolean }): SessionStore {
  const { db } = queue;
  db.exec(SCHEMA);
  if (!opts.keep) db.exec("DELETE FROM qos2_out");
  const insert = db.prepare("INSERT OR REPLACE INTO qos2_out (message_id, row_id, pubrec, seq) VALUES (?, ?, 0, ?)");
  const markPubrec = db.prepare("UPDATE qos2_out SET pubrec = 1 WHERE message_id = ?");
  const forget = db.prepare("DELETE FROM qos2_out WHERE message_id = ?");
  const all = db.prepare<[], { message_id: number; row_id: number; pubrec: number; seq: number }>("SELECT message_id, row_id, pubrec, seq FROM qos2_out ORDER BY seq");
  const pubrecTx = db.transaction((messageId: number, rowId: number) => {
    markPubrec.run(messageId);
    queue.removeNow(rowId);
  });

  // Insertion order is resend order (like MQTT.js's own Store): Map keeps it, and set() on an
  // existing id (PUBLISH → PUBREL) keeps the entry's place.
  const packets = new Map<number, Stored>();
  const rowOf = new Map<number, number>();
  const restored: RestoredFlight[] = [];
  let seq = 0;
  let pendingRow: number | undefined;
  const write = sessionWriter(queue, opts.log, "the bridge session", "QoS 2 in flight");

  for (const r of all.all()) {
    seq = Math.max(seq, r.seq);
    if (r.pubrec === 1) {
      // As MQTT.js builds it when PUBREC arrives (handlers/ack.js).
      packets.set(r.message_id, { cmd: "pubrel", qos: 2, messageId: r.message_id } as Stored);
      restored.push({ messageId: r.message_id, rowId: r.row_id, cmd: "pubrel" });
    } else {
      const m = queue.get(r.row_id);
      if (m === undefined) {
        forget.run(r.message_id); // nothing left to resend
        continue;
      }
      const p: IPublishPacket = { cmd: "publish", topic: m.topic, payload: m.payload, qos: 2, retain: m.retain, dup: true, messageId: r.message_id };
      if (opts.v5 && m.properties !== undefined) p.properties = m.properties as IPublishPacket["properties"];
      packets.set(r.message_id, p);
      restored.push({ messageId: r.message_id, rowId: r.row_id, cmd: "publish" });
    }
    rowOf.set(r.message_id, r.row_id);
  }

  const store: SessionStore = {
    restored,
    sending(rowId) {
      pendingRow = rowId;
    },
    put(packet, cb) {
      const p = packet as Stored;
      const id = p.messageId!;
      packets.set(id, p);
      if (p.cmd === "publish" && p.qos === 2 && pendingRow !== undefined) {
        const row = pendingRow;
        rowOf.set(id, row);
        write("publish", () => insert.run(id, row, ++seq));
      } else if (p.cmd === "pubrel") {
        const row = rowOf.get(id);
        if (row !== undefined) write("pubrec", () => pubrecTx(id, row));
      }
      cb?.();
      return store;
    },
    get(packet, cb) {
      const p = packets.get(packet.messageId!);
      if (p === undefined) cb(new Error("missing packet"));
      else cb(undefined, p);
      return store;
    },
    del(packet, cb) {
      const id = packet.messageId!;
      const p = packets.get(id);
      packets.delete(id);
      if (rowOf.delete(id)) write("pubcomp", () => forget.run(id));
      if (p === undefined) cb?.(new Error("missing packet"));
      else cb?.(undefined, p);
      return store;
    },
    createStream() {
      // A snapshot, as MQTT.js's Store; a resent PUBLISH carries DUP (MQTT-3.3.1-1).
      const list = [...packets.values()].map((p) => (p.cmd === "publish" ? { ...p, dup: true } : p));
      return Readable.from(list, { objectMode: true }) as unknown as ReturnType<IStore["createStream"]>;
    },
    close(cb) {
      // The file belongs to the queue (closed by the bridge); the session lives on across reconnects.
      cb?.();
    },
  };
  return store;
}
