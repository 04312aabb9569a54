// A Bus that records publishes and dispatches to subscribers synchronously, for unit tests of parts.
import type { Bus, Message } from "../../hub/contracts.js";
import { matches } from "../../hub/broker/topics.js";

export function memoryBus(): Bus & { published: Message[]; last(topic: string): string | undefined } {
  const published: Message[] = [];
  const subs = new Set<{ filter: string; fn: (m: Message) => void }>();
  return {
    published,
    last(topic) {
      for (let i = published.length - 1; i >= 0; i--) if (published[i]!.topic === topic) return published[i]!.payload.toString();
      return undefined;
    },
    async publish(m) {
      published.push(m);
      for (const s of subs) if (matches(s.filter, m.topic)) s.fn(m);
    },
    async subscribe(filter, fn) {
      const s = { filter, fn };
      subs.add(s);
      return () => subs.delete(s);
    },
  };
}
