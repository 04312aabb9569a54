// Loading `broker.auth` into a policy (password file + ACL file + YAML rules), and the auth part of
// the hub: loaded at start (a bad file stops the hub: main.ts reports it as a config error, exit 78)
// and again on SIGHUP, where a bad or unreadable file keeps the previous policy and says why in the
// log; it never falls back to "allow all" (checklist G12, CVE-2017-7652).
import type { Clock, Logger, Service } from "../../contracts.js";
import type { BrokerCore } from "../core.js";
import { type AclRule, createAcl, parseAclFile } from "./acl.js";
import { createAuthenticator, type Authenticator, type Policy } from "./authenticate.js";
import { errnoOf } from "./file-check.js";
import { parsePasswordFile } from "./passwd.js";
import { recheckAllSessions } from "./recheck.js";
import type { AuthConfig } from "./schema.js";

export type PolicyLoad = { ok: true; policy: Policy; users: number; rules: number } | { ok: false; problems: string[] };


/** Reads and checks every file; problems are `file:line:col: expected ..., found ...` (or `file: cannot read ...`). */
export function loadPolicy(cfg: AuthConfig, readFile: (path: string) => string): PolicyLoad {
  const problems: string[] = [];
  let passwords: Policy["passwords"];
  if (cfg.passwd_file !== undefined) {
    const file = cfg.passwd_file;
    try {
      const r = parsePasswordFile(readFile(file));
      if (r.ok) passwords = r.users;
      else for (const p of r.problems) problems.push(`${file}:${p.line}:${p.col}: ${p.message}`);
    } catch (err) {
      problems.push(`${file}: cannot read the password file (${errnoOf(err)})`);
    }
  }
  let rules: AclRule[] | undefined;
  if (cfg.acl_file !== undefined) {
    const file = cfg.acl_file;
    try {
      const r = parseAclFile(readFile(file));
      if (r.ok) rules = r.rules;
      else for (const p of r.problems) problems.push(`${file}:${p.line}:${p.col}: ${p.message}`);
    } catch (err) {
      problems.push(`${file}: cannot read the ACL file (${errnoOf(err)})`);
    }
  }
  if (cfg.acl !== undefined) {
    rules ??= [];
    for (const r of cfg.acl) {
      rules.push(r.pattern !== undefined ? { pattern: true, access: r.access, filter: r.pattern } : { user: r.user, pattern: false, access: r.access, filter: r.topic! });
    }
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, policy: { passwords, acl: rules === undefined ? undefined : createAcl(rules) }, users: passwords?.size ?? 0, rules: rules?.length ?? 0 };
}

export interface AuthServiceDeps {
  core: BrokerCore;
  clock: Clock;
  log: Logger;
  readFile: (path: string) => string;
}

export interface AuthService extends Service {
  /** Set once started. */
  readonly authenticator: Authenticator | undefined;
}

export function createAuthService(cfg: AuthConfig, deps: AuthServiceDeps): AuthService {
  const { core, log } = deps;
  let authenticator: Authenticator | undefined;
  return {
    name: "auth",
    get authenticator() {
      return authenticator;
    },
    // Started before the broker listens, so no client ever connects without the policy.
    async start() {
      const r = loadPolicy(cfg, deps.readFile);
      if (!r.ok) throw new Error(`broker.auth: ${r.problems.join("; ")}`);
      const lf = cfg.login_failures;
      authenticator = createAuthenticator(r.policy, {
        clock: deps.clock,
        log,
        rateLimit: { maxFailures: lf.max, windowMs: lf.window, banMs: lf.ban },
      });
      core.auth = authenticator;
      log.info("users and access rules loaded", { users: r.users, rules: r.rules, acl: r.policy.acl !== undefined });
    },
    async stop() {},
    async reload() {
      if (authenticator === undefined) return;
      const r = loadPolicy(cfg, deps.readFile);
      if (!r.ok) {
        for (const p of r.problems) log.error(`${p}; keeping the previous users and access rules`);
        return;
      }
      authenticator.setPolicy(r.policy);
      const dropped = recheckAllSessions(core);
      log.info("users and access rules reloaded", { users: r.users, rules: r.rules, subscriptions_dropped: dropped });
    },
  };
}
