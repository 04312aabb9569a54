// Reads the YAML config into a typed Config, or into EVERY problem found at once, each with
// file:line:col. Steps: parse (YAML 1.2 core schema, so `on`/`no` stay strings), walk the node tree
// (duplicate keys, ${ENV} substitution, `password_file` secrets), validate with the one zod schema,
// cross-check, and map each problem's key path back to its YAML node. Filesystem and environment are
// injected so tests need no real files.
import { dirname, isAbsolute, join } from "node:path";
import { isMap, isScalar, isSeq, LineCounter, type Pair, parseDocument, Scalar, type YAMLMap } from "yaml";
import type { z } from "zod";
import { errnoOf } from "../broker/auth/file-check.js";
import { checkConfig } from "./check.js";
import { type Config, configSchema, SECRET_FIELDS } from "./schema.js";

export interface ConfigProblem {
  file: string;
  /** 1-based, of the offending node; for a missing key, of the mapping that lacks it; for an unknown key, of the key. */
  line: number;
  col: number;
  /** Key path such as `broker.listeners[0].port`; "" for the whole file. */
  path: string;
  expected: string;
  found: string;
  /** The sentence after the path, e.g. `expected an integer 0..65535, found "abc"`. */
  message: string;
}

export interface LoadDeps {
  /** Reads a whole UTF-8 file; throws a NodeJS.ErrnoException on failure. */
  readFile(path: string): string;
  env: Record<string, string | undefined>;
}

export type LoadResult = { ok: true; config: Config } | { ok: false; problems: ConfigProblem[] };

type Path = (string | number)[];

interface Ctx {
  file: string;
  deps: LoadDeps;
  doc: ReturnType<typeof parseDocument>;
  lines: LineCounter;
  problems: ConfigProblem[];
  /** Paths of scalars whose ${ENV} failed: the schema's complaint about the leftover text would be noise. */
  envFailed: Set<string>;
}

export function loadConfigFile(path: string, deps: LoadDeps): LoadResult {
  let text: string;
  try {
    text = deps.readFile(path);
  } catch (err) {
    const found = `${JSON.stringify(path)}: ${errnoOf(err)}`;
    const expected = "a readable config file";
    return { ok: false, problems: [{ file: path, line: 1, col: 1, path: "", expected, found, message: `expected ${expected}, found ${found}` }] };
  }
  return loadConfigText(text, path, deps);
}

export function loadConfigText(text: string, file: string, deps: LoadDeps): LoadResult {
  const lines = new LineCounter();
  // Duplicate keys are found by prepare(), which can name the key and its first occurrence.
  const doc = parseDocument(text, { schema: "core", lineCounter: lines, prettyErrors: false, uniqueKeys: false });
  const ctx: Ctx = { file, deps, doc, lines, problems: [], envFailed: new Set() };
  // After one syntax error the parser often reports every following token on that line; keep the first.
  let lastLine = 0;
  for (const e of [...doc.errors, ...doc.warnings]) {
    const line = lines.linePos(e.pos[0]).line;
    // Some messages end with the offending token's text, which may be a secret: position suffices.
    if (line !== lastLine) add(ctx, e.pos[0], [], "valid YAML", e.code, e.message.replace(/: ".*"$/s, ""));
    lastLine = line;
  }

  prepare(doc.contents, [], configSchema, ctx);
  // An empty file means "all defaults". Validation runs even after YAML errors: the parser recovers
  // well enough that the remaining problems are real ones, and all are reported at once.
  let raw: unknown = {};
  try {
    if (doc.contents !== null) raw = doc.toJS();
  } catch (err) {
    // yaml refuses alias bombs ("billion laughs") and alias cycles here.
    add(ctx, 0, [], "valid YAML", "an alias problem", err instanceof Error ? err.message : String(err));
    return { ok: false, problems: ctx.problems.sort(byPosition) };
  }
  const parsed = configSchema.safeParse(raw, { error: expectedText });
  if (!parsed.success) {
    for (const iss of parsed.error.issues) issueProblems(iss, raw, ctx);
  } else {
    // With the loader's readFile, so `hub check` also finds unreadable or empty TLS files.
    for (const p of checkConfig(parsed.data, { readFile: ctx.deps.readFile })) add(ctx, valueOffset(ctx, p.path), p.path, p.expected, p.found);
  }
  if (ctx.problems.length > 0 || !parsed.success) {
    return { ok: false, problems: ctx.problems.sort(byPosition) };
  }
  return { ok: true, config: parsed.data };
}

function byPosition(a: ConfigProblem, b: ConfigProblem): number {
  return a.line - b.line || a.col - b.col;
}

/** One line per problem, `file:line:col: path: expected ..., found ...`, joined by "\n" (no trailing newline). */
export function formatProblems(problems: ConfigProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.path === "" ? "" : `${p.path}: `}${p.message}`).join("\n");
}

function add(ctx: Ctx, offset: number, path: Path, expected: string, found: string, message?: string): void {
  const { line, col } = ctx.lines.linePos(offset);
  ctx.problems.push({ file: ctx.file, line, col, path: pathText(path), expected, found, message: message ?? `expected ${expected}, found ${found}` });
}

export function pathText(path: Path): string {
  let s = "";
  for (const k of path) {
    if (typeof k === "number") s += `[${k}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(k)) s += s === "" ? k : `.${k}`;
    else s += `[${JSON.stringify(k)}]`;
  }
  return s;
}

// ---- the node walk: duplicate keys, ${ENV}, secrets --------------------------------------------

function keyOf(pair: Pair): string | undefined {
  return isScalar(pair.key) && pair.key.value !== null ? String(pair.key.value) : undefined;
}

function startOf(node: unknown): number {
  return (node as { range?: [number, number, number] } | null)?.range?.[0] ?? 0;
}

function prepare(node: unknown, path: Path, schema: z.ZodType | undefined, ctx: Ctx): void {
  if (isScalar(node)) substituteEnv(node, path, schema, ctx);
  else if (isSeq(node)) {
    for (let i = 0; i < node.items.length; i++) prepare(node.items[i], [...path, i], schema && childSchema(schema, i, node), ctx);
  } else if (isMap(node)) {
    const seen = new Map<string, Pair>();
    for (const pair of node.items) {
      const key = keyOf(pair);
      if (key !== undefined) {
        const first = seen.get(key);
        if (first === undefined) seen.set(key, pair);
        else {
          const line = ctx.lines.linePos(startOf(first.key)).line;
          add(ctx, startOf(pair.key), [...path, key], "each key once", `${JSON.stringify(key)} again (first on line ${line})`);
        }
      }
      prepare(pair.value, [...path, key ?? "?"], schema && key !== undefined ? childSchema(schema, key, node) : undefined, ctx);
    }
    const shape = schema && objectAt(schema, node);
    if (shape) resolveSecrets(node, path, shape, ctx);
  }
}

const ENV_REF = /\$\$\{|\$\{([^}]*)\}|\$\{/g;
const ENV_NAME = /^([A-Za-z_][A-Za-z0-9_]*)(?::-([\s\S]*))?$/;

/** `${NAME}`, `${NAME:-default}` (default when unset or empty, as in sh); `$${` is a literal `${`. */
function substituteEnv(node: Scalar, path: Path, schema: z.ZodType | undefined, ctx: Ctx): void {
  const src = node.value;
  if (typeof src !== "string" || !src.includes("${")) return;
  const at = startOf(node);
  const before = ctx.problems.length;
  const out = src.replace(ENV_REF, (m: string, inner: string | undefined) => {
    if (m === "$${") return "${";
    const ref = inner === undefined ? null : ENV_NAME.exec(inner);
    if (ref === null) {
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the ${ENV} syntax, shown to the user
      add(ctx, at, path, "${NAME} or ${NAME:-default} (write $${ for a literal ${)", JSON.stringify(inner === undefined ? "${" : m));
      return m;
    }
    const value = ctx.deps.env[ref[1]!];
    const fallback = ref[2];
    if (value !== undefined && (value !== "" || fallback === undefined)) return value;
    if (fallback !== undefined) return fallback;
    add(ctx, at, path, `environment variable ${ref[1]} to be set (or a default: \${${ref[1]}:-value})`, "it unset");
    return m;
  });
  if (ctx.problems.length > before) ctx.envFailed.add(pathText(path));
  // The environment only holds strings: where the schema wants a number or boolean, the result is
  // read as YAML would read it unquoted (`port: ${PORT}` gives 1883). Elsewhere it stays a string, so
  // `password: ${PW}` with PW=123456 is still the string "123456".
  const want = schema === undefined ? undefined : defOf(unwrap(schema)).type;
  node.value = node.tag === undefined && (want === "number" || want === "boolean") ? resolvePlain(out, ctx) : out;
}

function resolvePlain(s: string, ctx: Ctx): unknown {
  for (const tag of ctx.doc.schema.tags) {
    if (tag.collection === undefined && tag.default === true && tag.test?.test(s)) {
      const v = tag.resolve(s, () => {}, ctx.doc.options);
      return isScalar(v) ? v.value : v; // null and bool resolve to Scalar nodes
    }
  }
  return s;
}

/** `password_file: path` becomes `password: <contents>`, keeping the node positions for later problems. */
function resolveSecrets(map: YAMLMap, path: Path, shape: Record<string, unknown>, ctx: Ctx): void {
  for (const field of SECRET_FIELDS) {
    const fileKey = `${field}_file`;
    if (!Object.hasOwn(shape, fileKey)) continue;
    const pair = map.items.find((p) => keyOf(p) === fileKey);
    if (pair === undefined) continue;
    const at = [...path, fileKey];
    if (map.items.some((p) => keyOf(p) === field)) {
      add(ctx, startOf(pair.key), at, `either ${field} or ${fileKey}, not both`, "both");
      continue;
    }
    const v = pair.value;
    if (!isScalar(v) || typeof v.value !== "string" || v.value === "") continue; // the schema reports it
    const file = isAbsolute(v.value) ? v.value : join(dirname(ctx.file), v.value);
    let secret: string;
    try {
      secret = ctx.deps.readFile(file).replace(/\r?\n$/, "");
    } catch (err) {
      // The path and errno only: never the contents.
      add(ctx, startOf(v), at, `a readable file holding the ${field}`, `${JSON.stringify(file)}: ${errnoOf(err)}`);
      continue;
    }
    pair.key = withRange(new Scalar(field), pair.key);
    pair.value = withRange(new Scalar(secret), v);
  }
}

function withRange(node: Scalar, like: unknown): Scalar {
  node.range = (like as Scalar).range;
  return node;
}

// ---- following the zod schema alongside the YAML tree ------------------------------------------
// Needed to know where `password_file` is meant (not in a record whose user-chosen key happens to be
// "password_file") and which keys an object knows (for "did you mean"). Uses zod's `_zod.def`.

interface Def {
  type: string;
  innerType?: z.ZodType;
  in?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  element?: z.ZodType;
  valueType?: z.ZodType;
  options?: z.ZodType[];
  discriminator?: string;
  values?: unknown[];
}
const defOf = (s: z.ZodType): Def => s._zod.def as unknown as Def;

function unwrap(s: z.ZodType): z.ZodType {
  for (;;) {
    const d = defOf(s);
    if (d.innerType !== undefined) s = d.innerType; // optional, default, prefault, nullable, readonly, catch
    else if (d.type === "pipe" && d.in !== undefined) s = d.in; // .transform(): the input side is what YAML holds
    else return s;
  }
}

/** The object shape for `node` (a discriminated union picks its member by the node's discriminator). */
function objectAt(schema: z.ZodType, node: unknown): Record<string, z.ZodType> | undefined {
  const d = defOf(unwrap(schema));
  if (d.type === "object") return d.shape;
  if (d.type === "union" && d.discriminator !== undefined && isMap(node)) {
    const want = node.get(d.discriminator);
    for (const o of d.options ?? []) {
      const shape = objectAt(o, node);
      const lit = shape?.[d.discriminator];
      if (lit !== undefined && defOf(unwrap(lit)).values?.includes(want)) return shape;
    }
  }
  return undefined;
}

function childSchema(schema: z.ZodType, key: string | number, node: unknown): z.ZodType | undefined {
  const d = defOf(unwrap(schema));
  if (d.type === "array") return d.element;
  if (d.type === "record") return d.valueType;
  const shape = objectAt(schema, node);
  return shape !== undefined && typeof key === "string" && Object.hasOwn(shape, key) ? shape[key] : undefined;
}

// ---- zod issues -> problems ---------------------------------------------------------------------

function nodeAt(ctx: Ctx, path: Path): unknown {
  return path.length === 0 ? ctx.doc.contents : ctx.doc.getIn(path, true);
}

/** Start of the node at `path`, or of the nearest ancestor that exists (a missing key: its mapping). */
function valueOffset(ctx: Ctx, path: Path): number {
  for (let n = path.length; n >= 0; n--) {
    const node = nodeAt(ctx, path.slice(0, n));
    if (node !== undefined && node !== null) return startOf(node);
  }
  return 0;
}

function keyOffset(ctx: Ctx, path: Path): number {
  const map = nodeAt(ctx, path.slice(0, -1));
  const pair = isMap(map) ? map.items.find((p) => keyOf(p) === String(path.at(-1))) : undefined;
  return pair === undefined ? valueOffset(ctx, path) : startOf(pair.key);
}

function issueProblems(iss: z.core.$ZodIssue, raw: unknown, ctx: Ctx): void {
  const path: Path = iss.path.map((k) => (typeof k === "number" ? k : String(k)));
  if (ctx.envFailed.has(pathText(path))) return;
  if (iss.code === "unrecognized_keys") {
    for (const key of iss.keys) add(ctx, keyOffset(ctx, [...path, key]), [...path, key], knownKeys(ctx, path, key), `unknown key ${JSON.stringify(key)}`);
  } else if (iss.code === "invalid_key") {
    add(ctx, keyOffset(ctx, path), path, iss.issues[0]?.message ?? iss.message, `key ${JSON.stringify(path.at(-1))}`);
  } else {
    add(ctx, valueOffset(ctx, path), path, iss.message, foundText(valueAt(raw, path), path));
  }
}

function knownKeys(ctx: Ctx, path: Path, key: string): string {
  let schema: z.ZodType | undefined = configSchema;
  for (let i = 0; i < path.length && schema !== undefined; i++) schema = childSchema(schema, path[i]!, nodeAt(ctx, path.slice(0, i)));
  const keys = schema === undefined ? [] : Object.keys(objectAt(schema, nodeAt(ctx, path)) ?? {});
  const near = keys.find((k) => editDistance(k, key) <= 2);
  if (near !== undefined) return `a known key (did you mean ${JSON.stringify(near)}?)`;
  return keys.length > 0 ? `one of ${keys.join(", ")}` : "a known key";
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function valueAt(raw: unknown, path: Path): unknown {
  let v = raw;
  for (const k of path) {
    if (typeof v !== "object" || v === null || !Object.hasOwn(v, k)) return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

function foundText(v: unknown, path: Path): string {
  if (v === undefined) return "nothing (the key is missing)";
  if (SECRET_FIELDS.includes(String(path.at(-1)))) return "a secret (not shown)";
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v !== "string") return String(v);
  // Never echo credentials written into a URL (mqtt://user:pass@host).
  const s = v.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, "$1***@");
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 57)}...` : s);
}

/** Zod's per-parse error map: phrases the "expected" half of a problem for checks without their own text. */
function expectedText(iss: z.core.$ZodRawIssue): string {
  switch (iss.code) {
    case "invalid_type":
      return TYPE_NAMES[iss.expected] ?? iss.expected;
    case "invalid_value":
      return iss.values.length === 1 ? String(iss.values[0]) : `one of ${iss.values.join(", ")}`;
    case "too_small":
      return bound(iss.origin, iss.inclusive === false ? "more than" : "at least", iss.minimum);
    case "too_big":
      return bound(iss.origin, iss.inclusive === false ? "less than" : "at most", iss.maximum);
    case "invalid_format":
      return iss.pattern === undefined ? `a valid ${iss.format}` : `a string matching ${iss.pattern}`;
    case "not_multiple_of":
      return `a multiple of ${iss.divisor}`;
    case "invalid_union":
      return Array.isArray(iss.options) ? `one of ${iss.options.join(", ")}` : "one of the allowed forms";
    default:
      return "a valid value";
  }
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  object: "a mapping",
  record: "a mapping",
  array: "a list",
};

function bound(origin: string, rel: string, n: number | bigint): string {
  if (origin === "string") return `a string of ${rel} ${n} characters`;
  if (origin === "array" || origin === "set") return `a list of ${rel} ${n} items`;
  return `a number ${rel} ${n}`;
}
