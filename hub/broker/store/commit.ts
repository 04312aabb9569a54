// The broker store's commit: the prepared statements and the one SQLite transaction that writes a
// pending batch (store/batch.ts) to broker.db, row by row, in the tables' final state. The caller
// (store/journal.ts) decides when it runs and what a failure means.
import type { Clock } from "../../contracts.js";
import type { Batch } from "./batch.js";
import { encodeProps, encodePublisher, wallExpiry } from "./codec.js";
import type { Db } from "./db.js";

/** Prepares the statements once; the returned function commits `b` as it is when called (throws if the write fails). */
export function prepareCommit(d: Db, b: Batch, clock: Clock, stats: { rowOps: number }): () => void {
  const insMsg = d.prepare("INSERT OR REPLACE INTO msgs (id, topic, payload, qos, retain, props, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const delMsg = d.prepare("DELETE FROM msgs WHERE id = ?");
  const putRet = d.prepare("INSERT OR REPLACE INTO retained (topic, payload, qos, props, expires_at, publisher) VALUES (?, ?, ?, ?, ?, ?)");
  const delRet = d.prepare("DELETE FROM retained WHERE topic = ?");
  const putSess = d.prepare("INSERT OR REPLACE INTO sessions (client_id, expiry_ms, offline_at, will, username) VALUES (?, ?, ?, ?, ?)");
  const delSess = d.prepare("DELETE FROM sessions WHERE client_id = ?");
  const putSub = d.prepare("INSERT OR REPLACE INTO subs (client_id, filter, qos, nl, rap, rh, sub_id) VALUES (?, ?, ?, ?, ?, ?, ?)");
  const delSub = d.prepare("DELETE FROM subs WHERE client_id = ? AND filter = ?");
  const delSubs = d.prepare("DELETE FROM subs WHERE client_id = ?");
  const putOutS = d.prepare("INSERT OR REPLACE INTO outq (client_id, seq, msg_id, qos, retain, sub_ids, packet_id, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  const delOutS = d.prepare("DELETE FROM outq WHERE client_id = ? AND seq = ?");
  const delOuts = d.prepare("DELETE FROM outq WHERE client_id = ?");
  const putIn = d.prepare("INSERT OR IGNORE INTO inq2 (client_id, packet_id) VALUES (?, ?)");
  const delIn = d.prepare("DELETE FROM inq2 WHERE client_id = ? AND packet_id = ?");
  const delIns = d.prepare("DELETE FROM inq2 WHERE client_id = ?");
  return d.transaction(() => {
    let n = 0;
    for (const [id, e] of b.msgs) {
      const r = e.row;
      if (r) insMsg.run(id, r.topic, r.payload, r.qos, r.retain, r.props, r.expiresAt);
      else delMsg.run(id);
      n++;
    }
    for (const [topic, m] of b.retained) {
      if (m) putRet.run(topic, m.payload, m.qos, encodeProps(m.properties as never), wallExpiry(m.expiresAt, clock), encodePublisher(m.publisher));
      else delRet.run(topic);
      n++;
    }
    for (const [id, c] of b.clients) {
      if (c.clear) {
        delSess.run(id);
        delSubs.run(id);
        delOuts.run(id);
        delIns.run(id);
        n += 4;
      }
      if (c.session) putSess.run(id, c.session.expiryMs, c.session.offlineAt, c.session.will, c.session.username);
      else if (c.session === null && !c.clear) delSess.run(id);
      if (c.subs) {
        for (const [f, r] of c.subs) {
          if (r) putSub.run(id, f, r.qos, r.nl, r.rap, r.rh, r.subId);
          else delSub.run(id, f);
        }
        n += c.subs.size;
      }
      if (c.out) {
        for (const [seq, e] of c.out) {
          const r = e.row;
          if (r) putOutS.run(id, seq, r.msgId, r.qos, r.retain, r.subIds, r.packetId, r.state);
          else delOutS.run(id, seq);
        }
        n += c.out.size;
      }
      if (c.inq2) {
        for (const [pid, present] of c.inq2) {
          if (present) putIn.run(id, pid);
          else delIn.run(id, pid);
        }
        n += c.inq2.size;
      }
    }
    stats.rowOps += n;
  });
}
