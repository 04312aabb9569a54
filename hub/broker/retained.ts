// The retained-message store: the last retained PUBLISH per topic (MQTT 5 §3.3.1.3), replayed to new
// subscriptions. A level trie (`Map`s, so `__proto__` is a plain level) answers wildcard filters
// by visiting only matching branches; a flat topic index makes get/set O(1) for exact topics.
// Capped by message count and bytes (H4). In memory; the durable store (store/restore.ts) loads into it and
// writes through from the broker. Topics are validated by the caller (validTopicName) before `set`.

import type { QoS } from "../contracts.js";

export interface RetainedMessage {
  topic: string;
  payload: Buffer;
  qos: QoS;
  properties?: object;
  /** Monotonic ms when stored, so Message Expiry Interval can be decremented on replay. */
  storedAt: number;
  /** Monotonic ms after which the message is dropped (MQTT-3.3.2-5); absent: never expires. */
  expiresAt?: number;
  /**
   * Who published it, kept when access control is on: a retained message whose publisher has lost
   * write access is not replayed (mosquitto's check_retain_source; checklist G3).
   */
  publisher?: { clientId: string; username?: string | undefined; internal?: boolean };
}

export type RetainedSetResult = "stored" | "deleted" | "rejected-cap";

export interface RetainedStore {
  /**
   * Stores or replaces the message for `m.topic`. An empty payload deletes it and is not stored
   * (MQTT-3.3.1-10/11): "deleted" (also when nothing was stored). A new topic that would exceed
   * `maxMessages` or `maxBytes`, or a larger replacement that would exceed `maxBytes`, returns
   * "rejected-cap" and leaves the store unchanged; a same-size-or-smaller replacement always works.
   */
  set(m: RetainedMessage): RetainedSetResult;
  /** Exact lookup. With `now`, an expired message is deleted and not returned. */
  get(topic: string, now?: number): RetainedMessage | undefined;
  delete(topic: string): boolean;
  /**
   * Calls `fn` for every retained message whose topic matches the (non-shared, valid) `filter`, in
   * topic insertion order within each level. Expired messages (`expiresAt <= now`) are skipped and
   * deleted. Topics starting with `$` are not matched by a leading `+` or `#` (MQTT-4.7.2-1).
   * `fn` may set or delete messages; one added during the walk may or may not be visited.
   */
  forEachMatch(filter: string, fn: (m: RetainedMessage) => void, now: number): void;
  readonly count: number;
  /** Accounted bytes: topic (UTF-8) + payload + an estimate of the properties. */
  readonly bytes: number;
  /** Every stored message (expired ones included until something touches them). */
  entries(): Iterable<RetainedMessage>;
}

interface RNode {
  parent: RNode | undefined;
  key: string;
  children: Map<string, RNode> | undefined;
  msg: RetainedMessage | undefined;
  /** Accounted bytes of `msg`, kept so deletes need not recompute the estimate. */
  cost: number;
}

const SLASH_STR = "/";
const PLUS = 0x2b;
const HASH = 0x23;
const DOLLAR = 0x24;

/** Rough size of a properties object: strings in UTF-8 bytes, buffers by length, scalars 8 bytes. */
function approxSize(v: unknown, depth: number): number {
  if (typeof v === "string") return Buffer.byteLength(v, "utf8");
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return 8;
  if (v === null || typeof v !== "object" || depth > 3) return 0;
  if (v instanceof Uint8Array) return v.byteLength;
  let n = 0;
  if (Array.isArray(v)) {
    for (const x of v) n += approxSize(x, depth + 1);
    return n;
  }
  for (const k of Object.keys(v)) n += Buffer.byteLength(k, "utf8") + approxSize((v as Record<string, unknown>)[k], depth + 1);
  return n;
}

function costOf(m: RetainedMessage): number {
  const props = m.properties === undefined ? 0 : approxSize(m.properties, 0);
  return Buffer.byteLength(m.topic, "utf8") + m.payload.length + props;
}

function isExpired(m: RetainedMessage, now: number): boolean {
  return m.expiresAt !== undefined && m.expiresAt <= now;
}

interface WalkCtx {
  fn: (m: RetainedMessage) => void;
  now: number;
  expired: RNode[] | undefined;
}

function deliver(node: RNode, ctx: WalkCtx): void {
  const m = node.msg;
  if (m === undefined) return;
  if (isExpired(m, ctx.now)) {
    if (ctx.expired === undefined) ctx.expired = [];
    ctx.expired.push(node); // deleted after the walk, not while maps are being iterated
    return;
  }
  ctx.fn(m);
}

/**
 * `#`: the node itself (so `a/#` yields `a`) and everything below it, depth first in insertion
 * order. Iterative, because trie depth follows stored topics, not the filter.
 */
function visitSubtree(start: RNode, atRoot: boolean, ctx: WalkCtx): void {
  deliver(start, ctx);
  if (start.children === undefined) return;
  const stack: Iterator<[string, RNode]>[] = [start.children.entries()];
  while (stack.length > 0) {
    const r = stack[stack.length - 1]!.next();
    if (r.done) {
      stack.pop();
      continue;
    }
    const [key, node] = r.value;
    if (atRoot && stack.length === 1 && key.charCodeAt(0) === DOLLAR) continue; // MQTT-4.7.2-1
    deliver(node, ctx);
    if (node.children !== undefined) stack.push(node.children.entries());
  }
}

/** Matches filter levels from `fi` against the children of `node`. Depth bounded by filter levels. */
function walk(node: RNode, filter: string, fi: number, atRoot: boolean, ctx: WalkCtx): void {
  let fe = filter.indexOf(SLASH_STR, fi);
  if (fe < 0) fe = filter.length;
  const oneChar = fe - fi === 1;
  if (oneChar && filter.charCodeAt(fi) === HASH) {
    visitSubtree(node, atRoot, ctx);
    return;
  }
  const children = node.children;
  if (children === undefined) return;
  const last = fe === filter.length;
  if (oneChar && filter.charCodeAt(fi) === PLUS) {
    for (const [key, child] of children) {
      if (atRoot && key.charCodeAt(0) === DOLLAR) continue; // MQTT-4.7.2-1
      if (last) deliver(child, ctx);
      else walk(child, filter, fe + 1, false, ctx);
    }
    return;
  }
  const child = children.get(filter.slice(fi, fe));
  if (child === undefined) return;
  if (last) deliver(child, ctx);
  else walk(child, filter, fe + 1, false, ctx);
}

export function createRetainedStore(limits: { maxMessages: number; maxBytes: number }): RetainedStore {
  const root: RNode = { parent: undefined, key: "", children: undefined, msg: undefined, cost: 0 };
  const byTopic = new Map<string, RNode>();
  let bytes = 0;

  function nodeFor(topic: string): RNode {
    let node = root;
    let start = 0;
    for (;;) {
      let end = topic.indexOf(SLASH_STR, start);
      if (end < 0) end = topic.length;
      const level = topic.slice(start, end);
      if (node.children === undefined) node.children = new Map();
      let next = node.children.get(level);
      if (next === undefined) {
        next = { parent: node, key: level, children: undefined, msg: undefined, cost: 0 };
        node.children.set(level, next);
      }
      node = next;
      if (end === topic.length) return node;
      start = end + 1;
    }
  }

  function remove(node: RNode): void {
    byTopic.delete(node.msg!.topic);
    bytes -= node.cost;
    node.msg = undefined;
    node.cost = 0;
    // Prune now-empty nodes up to the root so deleted topics leave nothing behind.
    let n = node;
    while (n.parent !== undefined && n.msg === undefined && n.children === undefined) {
      const p: RNode = n.parent;
      p.children!.delete(n.key);
      if (p.children!.size === 0) p.children = undefined;
      n.parent = undefined;
      n = p;
    }
  }

  function set(m: RetainedMessage): RetainedSetResult {
    const existing = byTopic.get(m.topic);
    if (m.payload.length === 0) {
      if (existing !== undefined) remove(existing);
      return "deleted";
    }
    const cost = costOf(m);
    if (existing !== undefined) {
      if (cost > existing.cost && bytes - existing.cost + cost > limits.maxBytes) return "rejected-cap";
      bytes += cost - existing.cost;
      existing.msg = m;
      existing.cost = cost;
      return "stored";
    }
    if (byTopic.size + 1 > limits.maxMessages || bytes + cost > limits.maxBytes) return "rejected-cap";
    const node = nodeFor(m.topic);
    node.msg = m;
    node.cost = cost;
    byTopic.set(m.topic, node);
    bytes += cost;
    return "stored";
  }

  function get(topic: string, now?: number): RetainedMessage | undefined {
    const node = byTopic.get(topic);
    if (node === undefined) return undefined;
    if (now !== undefined && isExpired(node.msg!, now)) {
      remove(node);
      return undefined;
    }
    return node.msg;
  }

  function del(topic: string): boolean {
    const node = byTopic.get(topic);
    if (node === undefined) return false;
    remove(node);
    return true;
  }

  function forEachMatch(filter: string, fn: (m: RetainedMessage) => void, now: number): void {
    const ctx: WalkCtx = { fn, now, expired: undefined };
    walk(root, filter, 0, true, ctx);
    if (ctx.expired !== undefined) {
      for (const node of ctx.expired) {
        // fn may have replaced or deleted it meanwhile: only drop what is still expired.
        if (node.msg !== undefined && isExpired(node.msg, now)) remove(node);
      }
    }
  }

  function* entries(): Iterable<RetainedMessage> {
    for (const node of byTopic.values()) yield node.msg!;
  }

  return {
    set,
    get,
    delete: del,
    forEachMatch,
    get count() {
      return byTopic.size;
    },
    get bytes() {
      return bytes;
    },
    entries,
  };
}
