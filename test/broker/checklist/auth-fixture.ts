// Users and ACLs for checklist rows that need them (G, C9, C10, C14, E8): a password file built from
// `users` (fast $7$ hashes: 1,000 iterations), an ACL from acl_file text, both installed on the
// row's broker before any client connects, and a way to change the ACL mid-row the way SIGHUP does.
// The ACL always lets anonymous clients use health/# and marker/# (the bystander, the watchers'
// markers and the health check live there); a row's own anonymous rules follow these lines.
import { type Authenticator, createAuthenticator, type Policy } from "../../../hub/broker/auth/authenticate.js";
import { createAcl, parseAclFile } from "../../../hub/broker/auth/acl.js";
import { hashPassword, parsePasswordFile } from "../../../hub/broker/auth/passwd.js";
import { recheckAllSessions } from "../../../hub/broker/auth/recheck.js";
import type { BrokerCore } from "../../../hub/broker/core.js";
import type { Clock } from "../../../hub/contracts.js";
import { memoryLogger } from "../../../hub/log.js";

export interface AuthRow {
  /** user → password. */
  users?: Record<string, string>;
  /** acl_file text; absent: no ACL (everything allowed). */
  acl?: string;
  /** Failed-login limiting; default 5 failures in 60 s ban for 300 s. */
  rateLimit?: { maxFailures: number; windowMs: number; banMs: number };
}

const HARNESS_RULES = "topic readwrite health/#\ntopic readwrite marker/#\n";

function aclOf(text: string) {
  const r = parseAclFile(HARNESS_RULES + text);
  if (!r.ok) throw new Error(`bad test ACL: ${JSON.stringify(r.problems)}`);
  return createAcl(r.rules);
}

export interface AuthFixture {
  auth: Authenticator;
  /** Replaces the ACL (same users) and re-checks every session, as a SIGHUP reload does. */
  setAcl(text: string): void;
  /** Log lines of the authenticator (ban messages). */
  lines: string[];
}

export async function installAuth(core: BrokerCore, clock: Clock, row: AuthRow): Promise<AuthFixture> {
  let passwords: Policy["passwords"];
  if (row.users) {
    const lines: string[] = [];
    for (const [u, p] of Object.entries(row.users)) lines.push(`${u}:${await hashPassword(p, 1000)}`);
    const r = parsePasswordFile(`${lines.join("\n")}\n`);
    if (!r.ok) throw new Error("bad test users");
    passwords = r.users;
  }
  const log = memoryLogger("debug");
  const auth = createAuthenticator(
    { passwords, acl: row.acl === undefined ? undefined : aclOf(row.acl) },
    { clock, log, rateLimit: row.rateLimit ?? { maxFailures: 5, windowMs: 60_000, banMs: 300_000 } },
  );
  core.auth = auth;
  return {
    auth,
    lines: log.lines,
    setAcl(text) {
      auth.setPolicy({ passwords, acl: aclOf(text) });
      recheckAllSessions(core);
    },
  };
}
