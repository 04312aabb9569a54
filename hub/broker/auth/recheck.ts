// Subscriptions are authorized when made; the ACL can change afterwards (SIGHUP reload) and a
// durable session can outlive a restart. These re-check what a session holds against the current
// ACL (checklist G4, CVE-2021-34434). The receive-side check in routing already keeps forbidden
// messages out; dropping the subscriptions also stops retained replays and frees the tree.
// Messages queued for a session before the change were checked when routed, under the old rules:
// those it may no longer read are dropped too (and deleted from the store, so no restart revives them).
import type { BrokerCore } from "../core.js";
import { parseShared } from "../topics.js";
import { dropQueued, type Session } from "../session.js";

/** Removes the session's subscriptions the ACL no longer allows; returns how many. */
export function dropForbiddenSubscriptions(core: BrokerCore, s: Session): number {
  const acl = core.auth?.acl;
  if (acl === undefined) return 0;
  const gone: string[] = [];
  for (const sub of core.tree.subscriptionsOf(s)) {
    const shared = parseShared(sub.filter);
    const filter = shared !== null && shared !== "invalid" ? shared.filter : sub.filter;
    if (!acl.canSubscribe(s, filter)) gone.push(sub.filter);
  }
  for (const f of gone) core.tree.remove(s, f);
  if (gone.length > 0) core.log.info("subscriptions dropped: no longer allowed by the ACL", { client: s.clientId, count: gone.length });
  return gone.length;
}

/**
 * Removes the session's queued, not yet sent messages it may no longer read; returns how many.
 * Messages in flight were sent before the change and may be resent (the client has seen them).
 */
export function dropForbiddenQueued(core: BrokerCore, s: Session): number {
  const acl = core.auth?.acl;
  if (acl === undefined || s.queue.length === s.queueHead) return 0;
  const n = dropQueued(s, (d) => acl.canReceive(s, d.msg.topic));
  if (n > 0) core.log.info("queued messages dropped: no longer allowed by the ACL", { client: s.clientId, count: n });
  return n;
}

/** Both checks, as when a stored session resumes or the policy changes under it. */
export function recheckSession(core: BrokerCore, s: Session): number {
  const n = dropForbiddenSubscriptions(core, s);
  dropForbiddenQueued(core, s);
  return n;
}

/** After a policy change: every session, connected or not. Returns the subscriptions dropped. */
export function recheckAllSessions(core: BrokerCore): number {
  let n = 0;
  for (const s of core.sessions.values()) n += recheckSession(core, s);
  return n;
}
