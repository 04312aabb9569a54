// The rules engine's topic index and state cache (issue "rules engine", item 9): one bus subscription
// per distinct filter, each with the set of trigger listeners on it, so the broker's subscription
// tree delivers a message only to the rules whose filters match it, not to every rule. Topics read by
// conditions and state() are "pinned": subscribed for the cache even while no trigger listens.
import type { Bus, Cancel, Clock, Logger, Message } from "../hub/contracts.js";
import type { Cached, Listener } from "./triggers.js";
import { payloadValue } from "./values.js";

export interface TopicIndex {
  /** Adds a listener on a filter (subscribing on first use); the Cancel removes it (and unsubscribes on last use). */
  listen(filter: string, fn: Listener): Cancel;
  /** The last message seen on a topic (retained ones included). */
  cached(topic: string): Cached | undefined;
  /** Keeps exactly `topics` subscribed for the cache; resolves once every subscription is in place. */
  pin(topics: ReadonlySet<string>): Promise<void>;
  /** Distinct filters subscribed. */
  size(): number;
  /** Drops every subscription. */
  close(): Promise<void>;
}

interface FilterEntry {
  listeners: Set<Listener>;
  /** Kept for the state cache even without listeners. */
  pinned: boolean;
  /** The subscription is in place; until then a retained message is a startup value. */
  ready: boolean;
  dead: boolean;
  unsubscribe?: Cancel;
}

export function createTopicIndex(deps: { bus: Bus; clock: Clock; log: Logger }): TopicIndex {
  const { bus, clock, log } = deps;
  const cache = new Map<string, Cached>();
  const index = new Map<string, FilterEntry>();
  const subscribing = new Set<Promise<void>>();

  const onMessage = (e: FilterEntry, m: Message): void => {
    const topic = m.topic;
    const text = m.payload.toString("utf8");
    const now = clock.now();
    let c = cache.get(topic);
    if (c === undefined || c.text !== text) {
      c = { text, value: payloadValue(text), at: now, changedAt: now };
      cache.set(topic, c);
    } else c.at = now;
    const initial = !e.ready && m.retain;
    for (const l of e.listeners) {
      try {
        l(topic, c, initial, m);
      } catch (err) {
        log.error("trigger failed", { topic, error: err });
      }
    }
  };

  const entryFor = (filter: string): FilterEntry => {
    const e = index.get(filter);
    if (e !== undefined) return e;
    const entry: FilterEntry = { listeners: new Set(), pinned: false, ready: false, dead: false };
    index.set(filter, entry);
    const p = bus
      .subscribe(filter, (m) => onMessage(entry, m), { qos: 1 })
      .then(
        (cancel) => {
          if (entry.dead) cancel();
          else {
            entry.unsubscribe = cancel;
            entry.ready = true;
          }
        },
        (err) => log.error("cannot subscribe", { filter, error: err }),
      )
      .finally(() => subscribing.delete(p));
    subscribing.add(p);
    return entry;
  };

  const drop = (filter: string, e: FilterEntry) => {
    e.dead = true;
    e.unsubscribe?.();
    if (index.get(filter) === e) index.delete(filter);
  };

  return {
    listen(filter, fn) {
      const e = entryFor(filter);
      e.listeners.add(fn);
      return () => {
        e.listeners.delete(fn);
        if (e.listeners.size === 0 && !e.pinned && !e.dead) drop(filter, e);
      };
    },
    cached: (topic) => cache.get(topic),
    async pin(want) {
      for (const [filter, e] of [...index]) {
        if (e.pinned && !want.has(filter)) {
          e.pinned = false;
          if (e.listeners.size === 0) drop(filter, e);
        }
      }
      for (const topic of want) entryFor(topic).pinned = true;
      while (subscribing.size > 0) await Promise.all([...subscribing]);
    },
    size: () => index.size,
    async close() {
      for (const [filter, e] of [...index]) drop(filter, e);
      await Promise.allSettled([...subscribing]);
    },
  };
}
