// What the broker core calls on the durable store (implemented by store/journal.ts). A separate file
// so core.ts depends on this small interface, not on SQLite.
import type { RetainedMessage } from "../retained.js";
import type { Session, SessionJournal } from "../session.js";
import type { SubOptions } from "../subscriptions.js";

export interface CoreJournal extends SessionJournal {
  /**
   * True after a commit failed (disk full, I/O error) until a retry succeeds: QoS 1/2 PUBLISHes are
   * then refused (v5 0x97, v3 connection closed without an ack) while QoS 0 keeps flowing.
   */
  readonly failing: boolean;
  /** The session's row changed (connected, disconnected, will, expiry); writes it when expiry > 0. */
  sessionSaved(s: Session): void;
  /** The session ended: every row of it is deleted. */
  sessionEnded(s: Session): void;
  subscribed(s: Session, filter: string, opts: SubOptions): void;
  unsubscribed(s: Session, filter: string): void;
  inboundQos2(s: Session, id: number, present: boolean): void;
  /** A retained message was stored (`m`) or deleted (undefined). */
  retained(topic: string, m: RetainedMessage | undefined): void;
  /**
   * Runs `run` once everything journaled so far is committed (at once when nothing is pending), in
   * call order; `fail` instead (or `run` when absent) when that commit failed. Acks go through here.
   */
  afterCommit(run: () => void, fail?: () => void): void;
}
