// Rules files: each *.yaml / *.yml file of a directory (on the Pi /etc/hub/rules.d/) holds a list of
// rules, checked by the rule schema. Every problem of every file is reported at once as
// file:line:col, like the config's. The filesystem is injected (rules/ does no I/O of its own).
// Rules in files take no ${ENV} substitution and no *_file secrets: those are the config's.
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { sunConditionPaths, sunTriggerPaths } from "./describe.js";
import type { RuleProblem, RulesLoad } from "./problems.js";
import { type Rule, rulesSchema } from "./schema.js";

// The zod-free parts live in their own files, so the running hub can use them without loading the
// schema (config and rules are validated in a short-lived child process: hub/config/isolated.ts).
export { formatRuleProblems, type RuleProblem, type RulesLoad } from "./problems.js";
export { type WatchFn, watchRulesDir } from "./watch.js";

export interface RulesFs {
  /** File names in a directory; throws a NodeJS.ErrnoException on failure. */
  readdir(dir: string): string[];
  readFile(path: string): string;
}

type Path = (string | number)[];

function pathText(path: Path): string {
  let s = "";
  for (const k of path) s += typeof k === "number" ? `[${k}]` : /^[A-Za-z0-9_-]+$/.test(k) ? (s === "" ? k : `.${k}`) : `[${JSON.stringify(k)}]`;
  return s;
}

const TYPE_NAMES = new Map([
  ["string", "a string"],
  ["number", "a number"],
  ["int", "an integer"],
  ["boolean", "true or false"],
  ["object", "a mapping"],
  ["array", "a list"],
]);

/** Words for zod's own checks; the rule schema words most of its checks itself. */
function expectedText(iss: z.core.$ZodRawIssue): string {
  if (iss.code === "invalid_type") return TYPE_NAMES.get(iss.expected) ?? iss.expected;
  if (iss.code === "invalid_value") return iss.values.length === 1 ? String(iss.values[0]) : `one of ${iss.values.join(", ")}`;
  if (iss.code === "invalid_union") {
    // A discriminated union names its kinds (trigger:, condition:, action:).
    const options = (iss as { options?: unknown }).options;
    return Array.isArray(options) ? `one of ${options.join(", ")}` : "one of the allowed forms";
  }
  if (iss.code === "too_small") return `at least ${iss.minimum}`;
  if (iss.code === "too_big") return `at most ${iss.maximum}`;
  return "a valid value";
}

function found(v: unknown): string {
  if (v === undefined) return "nothing (the key is missing)";
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  const s = typeof v === "string" ? JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v) : String(v);
  return s;
}

/** Parses one file's text into rules, or every problem in it. */
export function parseRulesText(text: string, file: string): RulesLoad {
  const r = parseYamlWith(rulesSchema, text, file, []);
  return r.ok ? { ok: true, rules: r.value } : r;
}

/** YAML text checked by a zod schema, or every problem with its file:line:col. `empty`: an empty file's value. */
export function parseYamlWith<T>(schema: z.ZodType<T>, text: string, file: string, empty: unknown): { ok: true; value: T } | { ok: false; problems: RuleProblem[] } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: "core", lineCounter: lines, prettyErrors: false });
  const problems: RuleProblem[] = [];
  const add = (offset: number, path: Path, message: string) => {
    const { line, col } = lines.linePos(offset);
    problems.push({ file, line, col, path: pathText(path), message });
  };
  const startOf = (n: unknown) => (n as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
  /** The node at `path`, or its nearest existing ancestor (a missing key: its mapping). */
  const offsetOf = (path: Path, key?: string) => {
    for (let n = path.length; n >= 0; n--) {
      const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
      if (node === undefined || node === null) continue;
      if (key !== undefined && n === path.length && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && p.key.value === key);
        if (pair) return startOf(pair.key);
      }
      return startOf(node);
    }
    return 0;
  };
  // After one syntax error the parser often reports every following token on that line: keep the first.
  let lastLine = 0;
  for (const e of doc.errors) {
    const line = lines.linePos(e.pos[0]).line;
    if (line !== lastLine) add(e.pos[0], [], e.message.replace(/: ".*"$/s, ""));
    lastLine = line;
  }
  if (problems.length > 0) return { ok: false, problems };
  let raw: unknown;
  try {
    raw = doc.contents === null ? empty : doc.toJS();
  } catch (err) {
    add(0, [], err instanceof Error ? err.message : String(err));
    return { ok: false, problems };
  }
  const parsed = schema.safeParse(raw, { error: expectedText });
  if (parsed.success) return { ok: true, value: parsed.data };
  for (const iss of parsed.error.issues) {
    const path: Path = iss.path.map((k) => (typeof k === "number" ? k : String(k)));
    if (iss.code === "unrecognized_keys") {
      for (const k of iss.keys) add(offsetOf(path, k), [...path, k], `unknown key ${JSON.stringify(k)}`);
      continue;
    }
    let v: unknown = raw;
    for (const k of path) v = typeof v === "object" && v !== null && Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
    add(offsetOf(path), path, `expected ${iss.message}, found ${found(v)}`);
  }
  problems.sort((a, b) => a.line - b.line || a.col - b.col);
  return { ok: false, problems };
}

/**
 * Every rules file of `dir` (sorted by name), checked together: ids must be unique across the files
 * and with `others` (the config's own rules).
 */
export function loadRulesDir(dir: string, fs: RulesFs, others: readonly Rule[] = [], opts: { hasLocation?: boolean } = {}): RulesLoad {
  let names: string[];
  try {
    names = fs.readdir(dir).filter((n) => /\.ya?ml$/.test(n) && !n.startsWith(".")).sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code ?? String(err);
    return { ok: false, problems: [{ file: dir, line: 1, col: 1, path: "", message: `expected a readable directory of rules files, found ${code}` }] };
  }
  const problems: RuleProblem[] = [];
  const rules: Rule[] = [];
  const ids = new Map<string, string>(others.map((r) => [r.id, "the config"]));
  for (const name of names) {
    const file = `${dir.replace(/\/$/, "")}/${name}`;
    let text: string;
    try {
      text = fs.readFile(file);
    } catch (err) {
      problems.push({ file, line: 1, col: 1, path: "", message: `expected a readable file, found ${(err as NodeJS.ErrnoException)?.code ?? err}` });
      continue;
    }
    const r = parseRulesText(text, file);
    if (!r.ok) {
      problems.push(...r.problems);
      continue;
    }
    if (opts.hasLocation === false) {
      const sun = [...sunTriggerPaths(r.rules).map((at) => [...at, "trigger"]), ...sunConditionPaths(r.rules).map((at) => [...at, "condition"])];
      const found = sun.map((at): RuleProblem => {
        const { line, col } = positionOf(text, at);
        const message = at.at(-1) === "trigger" ? SUN_NEEDS_LOCATION : SUN_CONDITION_NEEDS_LOCATION;
        return { file, line, col, path: pathText(at), message };
      });
      problems.push(...found.sort((a, b) => a.line - b.line || a.col - b.col));
    }
    r.rules.forEach((rule, i) => {
      const first = ids.get(rule.id);
      if (first !== undefined) {
        const { line, col } = positionOf(text, [i, "id"]);
        problems.push({ file, line, col, path: `[${i}].id`, message: `expected an id not used by another rule (also in ${first}), found ${JSON.stringify(rule.id)}` });
      } else ids.set(rule.id, file);
      rules.push(rule);
    });
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, rules };
}

/** Said of a sun trigger when the config has no location (here and by `hub check`). */
export const SUN_NEEDS_LOCATION = "expected location: { latitude, longitude } in the config for a sun trigger, found no location";
export const SUN_CONDITION_NEEDS_LOCATION = "expected location: { latitude, longitude } in the config for a sun condition, found no location";

function positionOf(text: string, path: Path): { line: number; col: number } {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines });
  const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
  return lines.linePos(node?.range?.[0] ?? 0);
}
