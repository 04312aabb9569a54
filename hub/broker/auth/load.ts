// Loading `broker.auth` into a policy (password file + ACL file + YAML rules), and the auth part of
// the hub: loaded at start (a bad file stops the hub: main.ts reports it as a config error, exit 78)
// and again on SIGHUP, where a bad or unreadable file keeps the previous policy and says why in the
// log; it never falls back to "allow all" (checklist G12, CVE-2017-7652).
import type { Clock, Logger, Service } from "../../contracts.js";
import type { BrokerCore } from "../core.js";
import { createAcl, parseAclFile } from "./acl.js";
import { createAuthenticator, type Authenticator, type Policy } from "./authenticate.js";
import { errnoOf } from "./file-check.js";
import { parsePasswordFile } from "./passwd.js";
import { recheckAllSessions } from "./recheck.js";
import type { AuthConfig } from "./schema.js";

export type PolicyLoad = { ok: true; policy: Policy; users: number; rules: number } | { ok: false; problems: string[] };

type Parsed = { ok: true } | { ok: false; problems: ReadonlyArray<{ line: number; col: number; message: string }> };

/** Reads and parses one file; what is wrong goes to `problems` (file:line:col, or why it cannot be read). */
function parseFile<R extends Parsed>(file: string, what: string, readFile: (path: string) => string, parse: (text: string) => R, problems: string[]): Extract<R, { ok: true }> | undefined {
  try {
    const r = parse(readFile(file));
    if (r.ok) return r as Extract<R, { ok: true }>;
    for (const p of r.problems) problems.push(`${file}:${p.line}:${p.col}: ${p.message}`);
  } catch (err) {
    problems.push(`${file}: cannot read the ${what} (${errnoOf(err)})`);
  }
  return undefined;
}

/** Reads and checks every file; problems are `file:line:col: expected ..., found ...` (or `file: cannot read ...`). */
export function loadPolicy(cfg: AuthConfig, readFile: (path: string) => string): PolicyLoad {
  const problems: string[] = [];
  const passwords = cfg.passwd_file === undefined ? undefined : parseFile(cfg.passwd_file, "password file", readFile, parsePasswordFile, problems)?.users;
  let rules = cfg.acl_file === undefined ? undefined : parseFile(cfg.acl_file, "ACL file", readFile, parseAclFile, problems)?.rules;
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
