// Live traffic beside a backlog: after a long outage the queue can hold 100,000 readings, and
// draining them strictly first would hold a reading taken now for minutes on a slow uplink. So at
// each reconnect with a backlog, the messages queued from then on whose topic has NOTHING in the
// backlog form a "live lane" with a quarter of the in-flight window reserved for it (the backlog
// drains through the other three quarters; windows under 4 get no lane). Order per topic is kept — a topic's live messages never pass its
// backlogged ones, which matters for retained state upstream — while messages on different topics
// may arrive out of their queue order. When the backlog cursor reaches the lane's start the lane
// ends and everything is one FIFO again (rows already sent are in flight or gone from the queue).
import type { Queue, QueuedMessage } from "./queue.js";

export interface LiveLane {
  /** At (re)connect: opens a lane if more than `window` messages are waiting (and window >= 4). */
  open(queue: Queue, window: number): void;
  /** Rows for the live lane to send now, at most `room`; empty once the backlog cursor passed its start. */
  take(queue: Queue, backlogCursor: number, room: number): QueuedMessage[];
  /** In-flight slots reserved for the lane; 0 when there is no lane. */
  share(): number;
  close(): void;
}

export function liveLane(): LiveLane {
  let from: number | undefined;
  let topics = new Set<string>();
  let cursor = 0;
  let share = 0;
  const lane: LiveLane = {
    open(queue, window) {
      lane.close();
      if (window < 4 || queue.depth() <= window) return;
      from = queue.lastId();
      cursor = from;
      topics = queue.topicsUpTo(from);
      share = Math.floor(window / 4);
    },
    take(queue, backlogCursor, room) {
      if (from === undefined) return [];
      if (backlogCursor >= from) {
        lane.close();
        return [];
      }
      const out: QueuedMessage[] = [];
      while (out.length < room) {
        const rows = queue.peek(cursor, 256);
        if (rows.length === 0) break;
        for (const r of rows) {
          if (out.length >= room) break;
          cursor = r.id; // a backlogged topic's row is left to the backlog cursor, in its order
          if (!topics.has(r.topic)) out.push(r);
        }
      }
      return out;
    },
    share: () => (from === undefined ? 0 : share),
    close() {
      from = undefined;
      topics = new Set();
      cursor = 0;
      share = 0;
    },
  };
  return lane;
}
