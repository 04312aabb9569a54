// Subscriptions are authorized when made; the ACL can change afterwards (SIGHUP reload) and a
// durable session can outlive a restart. These re-check what a session holds against the current
// ACL (checklist G4, CVE-2021-34434). The receive-side check in routing already keeps forbidden
// messages out; dropping the subscriptions also stops retained replays and frees the tree.
import type { BrokerCore } from "../core.js";
import { parseShared } from "../topics.js";
import type { Session } from "../session.js";

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

/** After a policy change: every session, connected or not. */
export function recheckAllSessions(core: BrokerCore): number {
  let n = 0;
  for (const s of core.sessions.values()) n += dropForbiddenSubscriptions(core, s);
  return n;
}
