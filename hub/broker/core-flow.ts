// Flow control between publishers and congested consumers: an online session's queue over its
// high-water mark pauses the publishers feeding it until it drains below the low-water mark, and a
// consumer that stays congested past the drain timeout is disconnected (instead of dropping messages
// that were acknowledged to their publishers). core.ts marks and relieves sessions on its hot path.
import type { Logger } from "../contracts.js";
import type { BrokerLimits, PausedPublisher } from "./core-types.js";
import { RC } from "./reason-codes.js";
import { type Session, queueLength } from "./session.js";

export interface FlowControl {
  /** A session's queue at or above these is congested (route() marks it). */
  readonly highCount: number;
  readonly highBytes: number;
  /** A congested session's queue at or below both of these is relieved. */
  readonly lowCount: number;
  readonly lowBytes: number;
  /** Online sessions congested now (congestedSince >= 0). */
  readonly congested: Set<Session>;
  /** Ends the congestion of `s` (if any) and resumes the paused publishers. */
  relieve(s: Session): void;
  /** Connections paused by flow control; resumed when a congested queue drains. */
  pausePublisher(p: PausedPublisher): void;
  /** Disconnects consumers that stayed congested longer than the drain timeout. */
  sweepCongestion(now: number): void;
}

export function createFlowControl(limits: BrokerLimits, log: Logger): FlowControl {
  // Flow control marks: congested above half the queue caps, relieved below a quarter.
  const highCount = Math.max(1, Math.floor(limits.maxQueuedMessages / 2));
  const highBytes = Math.floor(limits.maxQueuedBytes / 2);
  const lowCount = Math.floor(limits.maxQueuedMessages / 4);
  const lowBytes = Math.floor(limits.maxQueuedBytes / 4);
  const congested = new Set<Session>();
  const paused = new Set<PausedPublisher>();
  const resumeAll = () => {
    if (paused.size === 0) return;
    const list = [...paused];
    paused.clear();
    for (const p of list) p.resumeReading();
  };
  const relieve = (s: Session) => {
    if (s.congestedSince < 0) return;
    s.congestedSince = -1;
    congested.delete(s);
    resumeAll();
  };

  return {
    highCount,
    highBytes,
    lowCount,
    lowBytes,
    congested,
    relieve,
    pausePublisher(p) {
      paused.add(p);
      // Nothing congested any more (e.g. the consumer left meanwhile): do not stay paused.
      if (congested.size === 0) resumeAll();
    },
    sweepCongestion(now) {
      for (const s of congested) {
        if (now - s.congestedSince <= limits.drainTimeoutMs) continue;
        log.warn("client does not keep up with its messages; disconnecting slow consumer", {
          client: s.clientId,
          queued: queueLength(s),
        });
        s.link?.fail(RC.QUOTA_EXCEEDED, "slow consumer: message queue full");
        relieve(s);
      }
    },
  };
}
