// The subscription tree: which sessions receive a PUBLISH. A trie with one node per filter level
// (`Map`s throughout, so `__proto__` is just a level, C7/E6), generic over the subscriber (a session
// object, compared by reference). Shared subscriptions (`$share/<group>/<filter>`, MQTT 5 §4.8.2)
// hang off the node of their inner filter, one round-robin group per group name.
//
// The tree trusts its caller for policy (ACL, per-client caps, which QoS to grant) but not for
// syntax: `add` throws on a filter that would corrupt the trie, so a missed check upstream becomes a
// loud error at SUBSCRIBE time rather than a crash at PUBLISH time (E4, NanoMQ CVE-2025-68699).

import type { QoS } from "../contracts.js";
import { PROTOCOL_LIMITS, parseShared, validTopicFilter } from "./topics.js";

export interface SubOptions {
  qos: QoS;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: 0 | 1 | 2;
  subscriptionId?: number;
}

/** One subscription. Options are updated in place when the same filter is subscribed again (E7). */
export interface Subscription<S> extends SubOptions {
  readonly subscriber: S;
  /** As given by the client, including any `$share/<group>/` prefix: the identity for UNSUBSCRIBE. */
  readonly filter: string;
  /** The filter that is matched against topics (without the `$share` prefix). */
  readonly topicFilter: string;
  /** Share group name for a shared subscription, otherwise undefined. */
  readonly group?: string;
}

export interface SubscriptionTree<S> {
  /** Subscribes; the same subscriber and filter replaces the options of the existing one (MQTT-3.8.4-3). */
  add(subscriber: S, filter: string, opts: SubOptions): { replaced: boolean };
  remove(subscriber: S, filter: string): boolean;
  /** Drops every subscription of `subscriber` (session end); returns how many. */
  removeAll(subscriber: S): number;
  /**
   * Calls `fn` for every matching non-shared subscription and, for each matching share group,
   * for exactly one member picked round-robin. `ctx` is passed through so hot callers need no closure.
   * `fn` may add or remove subscriptions; whether an entry added during the walk is visited is unspecified.
   */
  forEachMatch(topic: string, fn: (sub: Subscription<S>) => void): void;
  forEachMatch<C>(topic: string, fn: (sub: Subscription<S>, ctx: C) => void, ctx: C): void;
  get(subscriber: S, filter: string): Subscription<S> | undefined;
  readonly size: number;
  countFor(subscriber: S): number;
  subscriptionsOf(subscriber: S): Iterable<Subscription<S>>;
  /** Number of trie nodes (walks the tree): for leak tests and metrics, not the hot path. */
  nodeCount(): number;
}

interface Group<S> {
  members: Subscription<S>[];
  /** Index of the member that receives the next message. */
  next: number;
}

interface Node<S> {
  parent: Node<S> | undefined;
  /** The level under `parent.children`; unused for `plus`/`hash` children. */
  key: string;
  children: Map<string, Node<S>> | undefined;
  plus: Node<S> | undefined;
  hash: Node<S> | undefined;
  /**
   * Non-shared subscriptions whose filter ends at this node, one per subscriber: `one` while there is
   * a single one (most filters: a device's own topic), `subs` from the second on; never both. A Map
   * costs ~180 bytes even with one entry, which is most of an idle client's subscription (issue 3).
   */
  one: Subscription<S> | undefined;
  subs: Map<S, Subscription<S>> | undefined;
  groups: Map<string, Group<S>> | undefined;
}

const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

function newNode<S>(parent: Node<S> | undefined, key: string): Node<S> {
  return { parent, key, children: undefined, plus: undefined, hash: undefined, one: undefined, subs: undefined, groups: undefined };
}

function isEmpty<S>(n: Node<S>): boolean {
  return n.children === undefined && n.plus === undefined && n.hash === undefined && n.one === undefined && n.subs === undefined && n.groups === undefined;
}

/** Walks (and with `create`, builds) the path of a valid topic filter. */
function nodeFor<S>(root: Node<S>, topicFilter: string, create: boolean): Node<S> | undefined {
  let node = root;
  let start = 0;
  for (;;) {
    let end = topicFilter.indexOf("/", start);
    if (end < 0) end = topicFilter.length;
    let next: Node<S> | undefined;
    const c = topicFilter.charCodeAt(start);
    if (end - start === 1 && c === PLUS) {
      next = node.plus;
      if (next === undefined && create) next = node.plus = newNode(node, "+");
    } else if (end - start === 1 && c === HASH) {
      next = node.hash;
      if (next === undefined && create) next = node.hash = newNode(node, "#");
    } else {
      const level = topicFilter.slice(start, end);
      next = node.children?.get(level);
      if (next === undefined && create) {
        next = newNode(node, level);
        if (node.children === undefined) node.children = new Map();
        node.children.set(level, next);
      }
    }
    if (next === undefined) return undefined;
    node = next;
    if (end === topicFilter.length) return node;
    start = end + 1;
  }
}

/** Removes empty nodes from `node` up to (not including) the root, so churn leaves nothing behind. */
function prune<S>(node: Node<S>): void {
  let n: Node<S> = node;
  while (n.parent !== undefined && isEmpty(n)) {
    const p: Node<S> = n.parent;
    if (p.plus === n) p.plus = undefined;
    else if (p.hash === n) p.hash = undefined;
    else if (p.children !== undefined) {
      p.children.delete(n.key);
      if (p.children.size === 0) p.children = undefined;
    }
    n.parent = undefined;
    n = p;
  }
}

function emit<S, C>(node: Node<S>, fn: (sub: Subscription<S>, ctx: C) => void, ctx: C): void {
  const one = node.one;
  if (one !== undefined) fn(one, ctx);
  const subs = node.subs;
  if (subs !== undefined) for (const s of subs.values()) fn(s, ctx);
  const groups = node.groups;
  if (groups !== undefined) {
    for (const g of groups.values()) {
      const m = g.members;
      if (m.length === 0) continue;
      const i = g.next < m.length ? g.next : 0;
      g.next = i + 1 < m.length ? i + 1 : 0; // advance before fn: fn may re-enter and publish again
      fn(m[i]!, ctx);
    }
  }
}

/**
 * `ti` is the start of the topic level to match at `node`'s children, or -1 when every level of the
 * topic has been consumed (then `node` itself is a match). `dollar` is true only at the root for a
 * `$` topic: the root's `+` and `#` must not match it (MQTT-4.7.2-1). Recursion depth is bounded by
 * the depth of the trie, which is bounded by the longest filter added (the caller caps levels).
 */
function walk<S, C>(
  node: Node<S>,
  topic: string,
  ti: number,
  dollar: boolean,
  fn: (sub: Subscription<S>, ctx: C) => void,
  ctx: C,
): void {
  if (ti < 0) {
    emit(node, fn, ctx);
    if (node.hash !== undefined) emit(node.hash, fn, ctx); // `a/#` matches `a` (MQTT 5 §4.7.1.2)
    return;
  }
  if (node.hash !== undefined && !dollar) emit(node.hash, fn, ctx);
  let te = topic.indexOf("/", ti);
  if (te < 0) te = topic.length;
  const next = te === topic.length ? -1 : te + 1;
  if (node.plus !== undefined && !dollar) walk(node.plus, topic, next, false, fn, ctx);
  const child = node.children?.get(topic.slice(ti, te));
  if (child !== undefined) walk(child, topic, next, false, fn, ctx);
}

/**
 * A subscriber's subscriptions by filter: the subscription itself while it has one (most clients),
 * a Map from the second on (a Map with one entry costs ~180 bytes per client).
 */
type Mine<S> = Subscription<S> | Map<string, Subscription<S>>;

function lookup<S>(mine: Mine<S> | undefined, filter: string): Subscription<S> | undefined {
  if (mine === undefined) return undefined;
  if (mine instanceof Map) return mine.get(filter);
  return mine.filter === filter ? mine : undefined;
}

export function createSubscriptionTree<S>(): SubscriptionTree<S> {
  const root = newNode<S>(undefined, "");
  const bySubscriber = new Map<S, Mine<S>>();
  let size = 0;

  function detach(sub: Subscription<S>): void {
    const node = nodeFor(root, sub.topicFilter, false);
    if (node === undefined) return; // unreachable while the index and the trie agree
    if (sub.group !== undefined) {
      const g = node.groups?.get(sub.group);
      if (g !== undefined) {
        const i = g.members.indexOf(sub);
        if (i >= 0) {
          g.members.splice(i, 1);
          if (i < g.next) g.next--; // keep pointing at the same next member
          if (g.next >= g.members.length) g.next = 0;
        }
        if (g.members.length === 0) {
          node.groups!.delete(sub.group);
          if (node.groups!.size === 0) node.groups = undefined;
        }
      }
    } else if (node.one === sub) {
      node.one = undefined;
    } else if (node.subs !== undefined) {
      node.subs.delete(sub.subscriber);
      if (node.subs.size === 0) node.subs = undefined;
    }
    prune(node);
  }

  function add(subscriber: S, filter: string, opts: SubOptions): { replaced: boolean } {
    const shared = parseShared(filter);
    if (shared === "invalid") throw new RangeError(`invalid shared subscription filter: ${JSON.stringify(filter)}`);
    if (shared === null && !validTopicFilter(filter, PROTOCOL_LIMITS)) {
      throw new RangeError(`invalid topic filter: ${JSON.stringify(filter)}`);
    }
    // No Local on a shared subscription is a protocol error (MQTT-3.8.3-4): the caller rejects it.
    if (shared !== null && opts.noLocal) throw new RangeError("No Local set on a shared subscription");

    const mine = bySubscriber.get(subscriber);
    const existing = lookup(mine, filter);
    if (existing !== undefined) {
      // Same subscriber and filter: replace the options in place (MQTT-3.8.4-3), keeping the
      // member's place in its share group.
      existing.qos = opts.qos;
      existing.noLocal = opts.noLocal;
      existing.retainAsPublished = opts.retainAsPublished;
      existing.retainHandling = opts.retainHandling;
      existing.subscriptionId = opts.subscriptionId;
      return { replaced: true };
    }
    const topicFilter = shared === null ? filter : shared.filter;
    const sub: Subscription<S> = {
      subscriber,
      filter,
      topicFilter,
      group: shared === null ? undefined : shared.group,
      qos: opts.qos,
      noLocal: opts.noLocal,
      retainAsPublished: opts.retainAsPublished,
      retainHandling: opts.retainHandling,
      subscriptionId: opts.subscriptionId,
    };
    const node = nodeFor(root, topicFilter, true)!;
    if (shared === null) {
      // One per subscriber at a node: `existing` above catches the same subscriber and filter.
      if (node.subs !== undefined) node.subs.set(subscriber, sub);
      else if (node.one === undefined) node.one = sub;
      else {
        node.subs = new Map([[node.one.subscriber, node.one], [subscriber, sub]]);
        node.one = undefined;
      }
    } else {
      if (node.groups === undefined) node.groups = new Map();
      let g = node.groups.get(shared.group);
      if (g === undefined) {
        g = { members: [], next: 0 };
        node.groups.set(shared.group, g);
      }
      g.members.push(sub);
    }
    if (mine === undefined) bySubscriber.set(subscriber, sub);
    else if (mine instanceof Map) mine.set(filter, sub);
    else bySubscriber.set(subscriber, new Map([[mine.filter, mine], [filter, sub]]));
    size++;
    return { replaced: false };
  }

  function remove(subscriber: S, filter: string): boolean {
    const mine = bySubscriber.get(subscriber);
    const sub = lookup(mine, filter);
    if (mine === undefined || sub === undefined) return false;
    if (mine instanceof Map) {
      mine.delete(filter);
      if (mine.size === 0) bySubscriber.delete(subscriber);
    } else bySubscriber.delete(subscriber);
    detach(sub);
    size--;
    return true;
  }

  function removeAll(subscriber: S): number {
    const mine = bySubscriber.get(subscriber);
    if (mine === undefined) return 0;
    bySubscriber.delete(subscriber);
    if (!(mine instanceof Map)) {
      detach(mine);
      size--;
      return 1;
    }
    for (const sub of mine.values()) detach(sub);
    size -= mine.size;
    return mine.size;
  }

  function forEachMatch<C>(topic: string, fn: (sub: Subscription<S>, ctx: C) => void, ctx?: C): void {
    walk(root, topic, 0, topic.charCodeAt(0) === DOLLAR, fn, ctx as C);
  }

  function nodeCount(): number {
    let n = 0;
    const stack: Node<S>[] = [root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      n++;
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.hash !== undefined) stack.push(node.hash);
      if (node.children !== undefined) for (const c of node.children.values()) stack.push(c);
    }
    return n;
  }

  return {
    add,
    remove,
    removeAll,
    forEachMatch,
    get: (subscriber, filter) => lookup(bySubscriber.get(subscriber), filter),
    get size() {
      return size;
    },
    countFor: (subscriber) => {
      const mine = bySubscriber.get(subscriber);
      return mine === undefined ? 0 : mine instanceof Map ? mine.size : 1;
    },
    subscriptionsOf: (subscriber) => {
      const mine = bySubscriber.get(subscriber);
      return mine === undefined ? [] : mine instanceof Map ? mine.values() : [mine];
    },
    nodeCount,
  };
}

/** What one subscriber gets for one PUBLISH, as computed by `collectPerSubscriber`. */
export interface Delivery<S> {
  /** At least one non-shared subscription matched (after No Local): send one copy with the fields below. */
  direct: boolean;
  /** Highest granted QoS of the matching non-shared subscriptions; send min(publish QoS, this) (MQTT-3.8.4-8). */
  qos: QoS;
  /** Every Subscription Identifier of the matching non-shared subscriptions (MQTT-3.3.4-3/4). */
  subscriptionIds: number[];
  /** Retain As Published set on any matching non-shared subscription. */
  retainAsPublished: boolean;
  /** Some matching subscription was skipped because of No Local (MQTT-3.8.3-3). */
  noLocalSkipped: boolean;
  /** Share-group picks for this subscriber: each is a separate copy with that subscription's own options. */
  shared: Subscription<S>[] | undefined;
}

interface CollectCtx<S> {
  out: Map<S, Delivery<S>>;
  publisher: S | undefined;
  skipped: boolean;
}

function newDelivery<S>(): Delivery<S> {
  return { direct: false, qos: 0, subscriptionIds: [], retainAsPublished: false, noLocalSkipped: false, shared: undefined };
}

function collectOne<S>(sub: Subscription<S>, ctx: CollectCtx<S>): void {
  let d = ctx.out.get(sub.subscriber);
  if (d === undefined) {
    d = newDelivery();
    ctx.out.set(sub.subscriber, d);
  }
  if (sub.group !== undefined) {
    if (d.shared === undefined) d.shared = [];
    d.shared.push(sub);
    return;
  }
  if (sub.noLocal && ctx.publisher !== undefined && sub.subscriber === ctx.publisher) {
    d.noLocalSkipped = true;
    ctx.skipped = true;
    return;
  }
  d.direct = true;
  if (sub.qos > d.qos) d.qos = sub.qos;
  if (sub.subscriptionId !== undefined) d.subscriptionIds.push(sub.subscriptionId);
  if (sub.retainAsPublished) d.retainAsPublished = true;
}

/**
 * Groups the matches for `topic` per subscriber. Overlapping non-shared subscriptions of one
 * subscriber collapse into one copy at the highest granted QoS carrying every matching Subscription
 * Identifier (MQTT 5 §3.3.4, MQTT-3.3.4-2/4). Subscriptions with No Local are skipped when the
 * subscriber is the `publisher` (MQTT-3.8.3-3).
 *
 * Choice: a share-group pick is NOT merged into the direct copy; it is listed in `shared` and sent
 * as its own copy, because the shared subscription is a separate subscription with its own QoS and
 * identifier and the spec lets a client receive both (MQTT 5 §4.8.2). A subscriber with nothing to
 * send (only No Local matches) has no entry.
 */
export function collectPerSubscriber<S>(tree: SubscriptionTree<S>, topic: string, publisher?: S): Map<S, Delivery<S>> {
  const ctx: CollectCtx<S> = { out: new Map(), publisher, skipped: false };
  tree.forEachMatch(topic, collectOne<S>, ctx);
  if (ctx.skipped && publisher !== undefined) {
    // Only the publisher can have had matches skipped; drop its entry if nothing is left to send.
    const d = ctx.out.get(publisher);
    if (d !== undefined && !d.direct && d.shared === undefined) ctx.out.delete(publisher);
  }
  return ctx.out;
}
