// Access control lists in mosquitto's `acl_file` syntax (and the same rules from YAML):
//   # comment
//   topic read public/#          rules before the first `user` line: clients without a user name
//   user alice
//   topic readwrite home/#       alice's rules
//   topic deny home/secret/#     deny wins over any grant
//   pattern readwrite clients/%c/#   every client; %c = client id, %u = user name
// Access is read | write | readwrite (the default) | deny. Decisions: deny rules first; then a grant
// of the needed access; otherwise denied. An ACL with no rules denies everything (checklist G1,
// CVE-2018-12550): it is never "no ACL".
// %u and %c count only when they fill a whole topic level, and a value containing + # / (or an
// empty one) never fills it: the rule simply does not apply (G9, CVE-2017-7650).
// The hub's own parts (identity.internal) are governed only by a `user hub:<part>` section written
// for them; without one they may do everything.
import { matches, validTopicFilter, PROTOCOL_LIMITS } from "../topics.js";
import type { Identity } from "./types.js";

export type Access = "read" | "write" | "readwrite" | "deny";

/** One rule as written (file or YAML). `user` undefined: anonymous clients (or, with `pattern`, everyone). */
export interface AclRule {
  user?: string | undefined;
  pattern: boolean;
  access: Access;
  filter: string;
}

export interface Acl {
  readonly rules: readonly AclRule[];
  canPublish(id: Identity, topic: string): boolean;
  /** A filter (not shared; strip `$share/<group>/` first) is allowed when a read grant covers every topic it can match. */
  canSubscribe(id: Identity, filter: string): boolean;
  canReceive(id: Identity, topic: string): boolean;
}

export interface AclLineProblem {
  line: number;
  /** 1-based column of the word or filter that is wrong. */
  col: number;
  /** "expected ..., found ..." */
  message: string;
}

const ACCESS = new Set<string>(["read", "write", "readwrite", "deny"]);

/**
 * What a rule's filter should have been, or undefined when it is fine. Phrased as the expectation:
 * the config loader shows "expected <this>, found <value>", and so does the acl_file parser.
 */
export function checkRuleFilter(filter: string, pattern: boolean): string | undefined {
  if (!validTopicFilter(filter, PROTOCOL_LIMITS)) {
    const comment = /\s#/.test(filter) ? "; a # comment must be on a line of its own" : "";
    return `a topic filter (levels separated by /, + and # only as whole levels, # only last${comment})`;
  }
  for (const level of filter.split("/")) {
    if (!level.includes("%")) continue;
    if (!pattern) continue; // topic rules take % literally, as mosquitto does
    if ((level.includes("%u") || level.includes("%c")) && level !== "%u" && level !== "%c") {
      return `%u and %c filling a whole topic level (e.g. clients/%c/#), not ${JSON.stringify(level)}`;
    }
  }
  return undefined;
}

/** Parses an acl_file. Every problem is reported with its line; any problem means no ACL. */
export function parseAclFile(text: string): { ok: true; rules: AclRule[] } | { ok: false; problems: AclLineProblem[] } {
  const rules: AclRule[] = [];
  const problems: AclLineProblem[] = [];
  let user: string | undefined;
  text.split("\n").forEach((raw, i) => {
    const at = i + 1;
    const line = raw.replace(/\r$/, "").trim();
    if (line === "" || line.startsWith("#")) return;
    const start = raw.length - raw.trimStart().length + 1; // column of the first word
    const m = /^(\S+)(?:\s+(.*))?$/.exec(line)!;
    const word = m[1]!;
    const rest = m[2] ?? "";
    // The filter is the end of the trimmed line: its column in the raw line.
    const colOf = (part: string) => raw.indexOf(part, start - 1 + word.length) + 1 || start;
    if (word === "user") {
      if (rest === "") problems.push({ line: at, col: start, message: "expected a user name after user, found nothing" });
      else user = rest;
      return;
    }
    if (word !== "topic" && word !== "pattern") {
      problems.push({ line: at, col: start, message: `expected topic, pattern or user, found ${JSON.stringify(word)}` });
      return;
    }
    // `topic [access] filter`: the filter is the rest of the line and may contain spaces.
    const am = /^(\S+)\s+(.+)$/.exec(rest);
    let access: Access = "readwrite";
    let filter = rest;
    if (am && ACCESS.has(am[1]!)) {
      access = am[1] as Access;
      filter = am[2]!;
    } else if (ACCESS.has(rest)) {
      problems.push({ line: at, col: start, message: `expected a topic filter after ${word} ${rest}, found nothing` });
      return;
    }
    if (filter === "") {
      problems.push({ line: at, col: start, message: `expected [read|write|readwrite|deny] and a topic filter after ${word}, found nothing` });
      return;
    }
    const bad = checkRuleFilter(filter, word === "pattern");
    if (bad) {
      problems.push({ line: at, col: colOf(filter), message: `expected ${bad}, found ${JSON.stringify(filter)}` });
      return;
    }
    // mosquitto: patterns apply to every client wherever they appear in the file.
    rules.push(word === "pattern" ? { pattern: true, access, filter } : { user, pattern: false, access, filter });
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, rules };
}

const PLUS = "+";
const HASH = "#";

/**
 * Does `rule` match every topic that `sub` matches? Both are valid non-shared filters. Level by
 * level: `#` in the rule covers the rest (including nothing, as `a/#` matches `a`); `+` in the rule
 * covers one level of anything but `#`; a literal covers only itself. A rule starting with a
 * wildcard does not cover a filter starting with a literal `$` level (MQTT-4.7.2-1).
 */
export function covers(rule: string, sub: string): boolean {
  const r = rule.split("/");
  const s = sub.split("/");
  if ((r[0] === PLUS || r[0] === HASH) && s[0]!.startsWith("$")) return false;
  for (let i = 0; ; i++) {
    const rl = r[i];
    const sl = s[i];
    if (rl === HASH) return true;
    if (sl === undefined) return rl === undefined;
    if (rl === undefined) return false;
    if (sl === HASH) return false; // only a rule '#' covers a '#' (handled above)
    if (rl === PLUS) continue;
    if (sl === PLUS || rl !== sl) return false;
  }
}

interface Compiled {
  /** The identity it was compiled for (a Session's user name can only be set once, but be safe). */
  username: string | undefined;
  clientId: string;
  allowAll: boolean;
  deny: string[];
  read: string[];
  write: string[];
}

/** A %u/%c value that can fill one level without widening it (G9). */
function safeLevel(v: string | undefined): v is string {
  return v !== undefined && v !== "" && !/[+#/]/.test(v);
}

function substitute(filter: string, id: Identity): string | undefined {
  if (!filter.includes("%")) return filter;
  const levels = filter.split("/");
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l === "%u") {
      if (!safeLevel(id.username)) return undefined;
      levels[i] = id.username;
    } else if (l === "%c") {
      if (!safeLevel(id.clientId)) return undefined;
      levels[i] = id.clientId;
    }
  }
  return levels.join("/");
}

export function createAcl(rules: readonly AclRule[]): Acl {
  const byUser = new Map<string, AclRule[]>();
  const anonymous: AclRule[] = [];
  const patterns: AclRule[] = [];
  for (const r of rules) {
    if (r.pattern) patterns.push(r);
    else if (r.user === undefined) anonymous.push(r);
    else {
      const list = byUser.get(r.user);
      if (list) list.push(r);
      else byUser.set(r.user, [r]);
    }
  }
  // Per identity object (a Session, a part's identity): the concrete filters, built on first use.
  const cache = new WeakMap<Identity, Compiled>();

  const compile = (id: Identity): Compiled => {
    const c: Compiled = { username: id.username, clientId: id.clientId, allowAll: false, deny: [], read: [], write: [] };
    let own: AclRule[];
    let pats: AclRule[] = patterns;
    if (id.internal) {
      const mine = id.username === undefined ? undefined : byUser.get(id.username);
      if (mine === undefined) {
        c.allowAll = true; // the hub's own parts: unrestricted unless a `user hub:<part>` section says otherwise
        return c;
      }
      own = mine;
      pats = [];
    } else own = id.username === undefined ? anonymous : (byUser.get(id.username) ?? []);
    for (const r of [...own, ...pats]) {
      const f = r.pattern ? substitute(r.filter, id) : r.filter;
      if (f === undefined) continue;
      if (r.access === "deny") c.deny.push(f);
      if (r.access === "read" || r.access === "readwrite") c.read.push(f);
      if (r.access === "write" || r.access === "readwrite") c.write.push(f);
    }
    return c;
  };
  const rulesOf = (id: Identity): Compiled => {
    let c = cache.get(id);
    if (c === undefined || c.username !== id.username || c.clientId !== id.clientId) {
      c = compile(id);
      cache.set(id, c);
    }
    return c;
  };
  const anyMatch = (filters: string[], topic: string): boolean => {
    for (let i = 0; i < filters.length; i++) if (matches(filters[i]!, topic)) return true;
    return false;
  };
  const topicCheck = (id: Identity, topic: string, grant: "read" | "write"): boolean => {
    const c = rulesOf(id);
    if (c.allowAll) return true;
    if (anyMatch(c.deny, topic)) return false;
    return anyMatch(grant === "read" ? c.read : c.write, topic);
  };
  return {
    rules,
    canPublish: (id, topic) => topicCheck(id, topic, "write"),
    canReceive: (id, topic) => topicCheck(id, topic, "read"),
    canSubscribe(id, filter) {
      const c = rulesOf(id);
      if (c.allowAll) return true;
      // A deny that covers the whole filter refuses the SUBSCRIBE; one that covers part of it is
      // enforced per message by canReceive.
      for (const d of c.deny) if (covers(d, filter)) return false;
      for (const r of c.read) if (covers(r, filter)) return true;
      return false;
    },
  };
}
