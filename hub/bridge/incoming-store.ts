// The bridge's inbound QoS 2 state, on disk: an MQTT.js incoming Store (IStore) whose entries live in
// a table of the bridge's queue file.
// Why: MQTT.js answers a QoS 2 PUBLISH from the remote with PUBREC once the packet is in its incoming
// store, and hands the message to us only when PUBREL arrives (MQTT-4.3.3, "Method A": store, then
// deliver on PUBREL). Its default store is memory: if the hub dies between PUBREC and PUBREL, the
// remote (which now owns nothing but the PUBREL) resends only the PUBREL, MQTT.js finds nothing,
// answers PUBCOMP, and the command is lost. So:
// - put(PUBLISH): committed before MQTT.js sends PUBREC (it calls back only then).
// - get() on PUBREL: from memory, or from the table after a restart.
// - del() after the message was published locally: forgotten; then PUBCOMP goes out.
// A crash between the local publish and del() makes the resent PUBREL deliver it locally once more:
// never lost, at worst repeated in that window of a few milliseconds.
// If the remote no longer has our session (CONNACK session present = 0), it will never send those
// PUBRELs: `orphans()` returns the messages so the bridge delivers them rather than dropping them.
import { Readable } from "node:stream";
import type { IPublishPacket, IStore, Packet } from "mqtt";
import type { Logger } from "../contracts.js";
import { decodeProps, encodeProps, type Queue } from "./queue.js";
import { sessionWriter } from "./session-store.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS qos2_in (
  message_id INTEGER PRIMARY KEY,
  topic TEXT NOT NULL,
  payload BLOB NOT NULL,
  retain INTEGER NOT NULL,
  props TEXT
);
`;

export interface IncomingStore extends IStore {
  /** Messages stored (PUBREC sent) and not yet released, oldest first; forgotten by the caller with del(). */
  orphans(): IPublishPacket[];
  /** How many are held, for logs and tests. */
  size(): number;
}

type Row = { message_id: number; topic: string; payload: Buffer; retain: number; props: string | null };

/** `keep: false` (clean_start: the remote forgets our session) empties the table instead of restoring it. */
export function openIncomingStore(queue: Queue, opts: { log: Logger; keep: boolean }): IncomingStore {
  const { db } = queue;
  db.exec(SCHEMA);
  if (!opts.keep) db.exec("DELETE FROM qos2_in");
  const insert = db.prepare("INSERT OR REPLACE INTO qos2_in (message_id, topic, payload, retain, props) VALUES (?, ?, ?, ?, ?)");
  const forget = db.prepare("DELETE FROM qos2_in WHERE message_id = ?");
  const all = db.prepare<[], Row>("SELECT message_id, topic, payload, retain, props FROM qos2_in ORDER BY rowid");

  const packets = new Map<number, IPublishPacket>();
  for (const r of all.all()) {
    const p: IPublishPacket = { cmd: "publish", topic: r.topic, payload: r.payload, qos: 2, retain: r.retain === 1, dup: false, messageId: r.message_id };
    if (r.props !== null) p.properties = decodeProps(r.props) as IPublishPacket["properties"];
    packets.set(r.message_id, p);
  }
  const write = sessionWriter(queue, opts.log, "the bridge's inbound session", "QoS 2 from upstream");

  const store: IncomingStore = {
    orphans: () => [...packets.values()],
    size: () => packets.size,
    put(packet, cb) {
      const p = packet as IPublishPacket;
      if (p.cmd === "publish" && p.messageId !== undefined) {
        packets.set(p.messageId, p);
        const payload = typeof p.payload === "string" ? Buffer.from(p.payload) : p.payload;
        write("pubrec", () => insert.run(p.messageId, p.topic, payload, p.retain ? 1 : 0, encodeProps(p.properties as Parameters<typeof encodeProps>[0])));
      }
      cb?.();
      return store;
    },
    get(packet, cb) {
      const p = packets.get((packet as { messageId: number }).messageId);
      if (p === undefined) cb(new Error("missing packet"));
      else cb(undefined, p);
      return store;
    },
    del(packet, cb) {
      const id = (packet as { messageId: number }).messageId;
      const p = packets.get(id);
      if (p !== undefined) {
        packets.delete(id);
        write("pubcomp", () => forget.run(id));
      }
      if (p === undefined) cb?.(new Error("missing packet"));
      else cb?.(undefined, p as Packet);
      return store;
    },
    createStream() {
      // MQTT.js never streams its incoming store (it only resends outgoing packets).
      return Readable.from([], { objectMode: true }) as unknown as ReturnType<IStore["createStream"]>;
    },
    close(cb) {
      // The file belongs to the queue (closed by the bridge); the session lives on across reconnects.
      cb?.();
    },
  };
  return store;
}
