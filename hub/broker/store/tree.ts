// The subscription tree as the broker core uses it when storage is on: add/remove of a persistent
// session's subscriptions are journaled (whoever calls them: SUBSCRIBE, UNSUBSCRIBE, ACL checks).
// Matching is the tree's own function, so routing pays nothing extra.
import type { Subscriber } from "../core.js";
import type { SubscriptionTree } from "../subscriptions.js";
import type { CoreJournal } from "./types.js";

export function journaledTree(tree: SubscriptionTree<Subscriber>, journal: CoreJournal): SubscriptionTree<Subscriber> {
  return {
    add(s, filter, opts) {
      const r = tree.add(s, filter, opts);
      if (s.kind === "client" && s.journal) journal.subscribed(s, filter, opts);
      return r;
    },
    remove(s, filter) {
      const removed = tree.remove(s, filter);
      if (removed && s.kind === "client" && s.journal) journal.unsubscribed(s, filter);
      return removed;
    },
    // Only at session end, which deletes every row of the session anyway.
    removeAll: tree.removeAll,
    forEachMatch: tree.forEachMatch,
    get: tree.get,
    get size() {
      return tree.size;
    },
    countFor: tree.countFor,
    subscriptionsOf: tree.subscriptionsOf,
    nodeCount: tree.nodeCount,
  };
}
