// The rules' expression and template language, parsed by hand: a tokenizer and a Pratt parser into a
// small tree that rules/evaluate.ts walks over plain values. User text is never given to eval or
// new Function, and the tree can only name the variables and functions the evaluator offers; every
// limit below is there so that a hostile or careless rule fails with a clear error instead of
// hanging or exhausting the hub (source length, nesting depth, tree size).
//
//   expression:  trigger.value * 1.8 + 32 > 90 and state('hub/porch/lux') < 10
//   template:    "{{ trigger.value }} °C at {{ time() }}"   (text with {{ expression }} parts)

/** A value expressions compute with: JSON data. */
export type Value = null | boolean | number | string | readonly Value[] | { readonly [k: string]: Value };

export const LIMITS = {
  /** Characters of one expression or template. */
  source: 4096,
  /** Nesting of parentheses, operators and calls. */
  depth: 40,
  /** Nodes in one parsed tree. */
  nodes: 1000,
} as const;

export class ExpressionError extends Error {
  /** 0-based index into the source where the problem is, when known. */
  readonly at: number | undefined;
  constructor(message: string, at?: number) {
    super(at === undefined ? message : `${message} at column ${at + 1}`);
    this.name = "ExpressionError";
    this.at = at;
  }
}

export type BinaryOp = "+" | "-" | "*" | "/" | "%" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "in";

export type Node =
  | { k: "lit"; v: Value }
  | { k: "name"; name: string; at: number }
  | { k: "list"; items: Node[] }
  | { k: "member"; obj: Node; key: Node; at: number }
  | { k: "call"; fn: string; args: Node[]; at: number }
  | { k: "unary"; op: "-" | "+" | "not"; arg: Node; at: number }
  | { k: "binary"; op: BinaryOp; left: Node; right: Node; at: number }
  | { k: "logic"; op: "and" | "or"; left: Node; right: Node }
  | { k: "cond"; test: Node; then: Node; else: Node };

export interface Expression {
  readonly source: string;
  readonly root: Node;
}

/** Text with {{ expression }} parts. `single` is set when the whole template is one expression. */
export interface Template {
  readonly source: string;
  readonly parts: readonly (string | Node)[];
  readonly single: Node | undefined;
}

// ---- tokenizer ----------------------------------------------------------------------------------

type Tok = { t: "num"; v: number; at: number } | { t: "str"; v: string; at: number } | { t: "id" | "op" | "end"; v: string; at: number };

const OPS = ["}}", "==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "%", "<", ">", "!", "(", ")", "[", "]", ".", ",", "?", ":"];
const NUMBER = /\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
// Maps, not object literals: a name such as "constructor" must not find Object.prototype's.
const ESCAPES = new Map([
  ["\\", "\\"],
  ["'", "'"],
  ['"', '"'],
  ["n", "\n"],
  ["t", "\t"],
  ["r", "\r"],
]);

/**
 * Tokens from `start`. In a template (`inTemplate`) the text ends at `}}`, which is returned as an
 * `end` token; otherwise at the end of the source.
 */
function tokenize(src: string, start: number, inTemplate: boolean): Tok[] {
  const out: Tok[] = [];
  let i = start;
  while (i < src.length) {
    const c = src[i]!;
    if (c === " " || c === "\t" || c === "\n" || c === "\r") {
      i++;
      continue;
    }
    if (c >= "0" && c <= "9") {
      NUMBER.lastIndex = i;
      const m = NUMBER.exec(src)!;
      const v = Number(m[0]);
      if (!Number.isFinite(v)) throw new ExpressionError("number too large", i);
      out.push({ t: "num", v, at: i });
      i += m[0].length;
      continue;
    }
    if ((c >= "a" && c <= "z") || (c >= "A" && c <= "Z") || c === "_") {
      IDENT.lastIndex = i;
      const m = IDENT.exec(src)!;
      out.push({ t: "id", v: m[0], at: i });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      const at = i;
      let s = "";
      i++;
      for (;;) {
        if (i >= src.length) throw new ExpressionError("unterminated string", at);
        const d = src[i]!;
        if (d === c) break;
        if (d === "\\") {
          const e = ESCAPES.get(src[i + 1] ?? "");
          if (e === undefined) throw new ExpressionError("unknown escape (use \\\\ \\' \\\" \\n \\t \\r)", i);
          s += e;
          i += 2;
        } else {
          s += d;
          i++;
        }
      }
      i++;
      out.push({ t: "str", v: s, at });
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (op === undefined) throw new ExpressionError(`unexpected character ${JSON.stringify(c)}`, i);
    if (op === "}}") {
      if (!inTemplate) throw new ExpressionError("unexpected }}", i);
      out.push({ t: "end", v: "}}", at: i });
      return out;
    }
    out.push({ t: "op", v: op, at: i });
    i += op.length;
  }
  if (inTemplate) throw new ExpressionError("{{ without a closing }}", start - 2);
  out.push({ t: "end", v: "", at: i });
  return out;
}

// ---- Pratt parser -------------------------------------------------------------------------------

const KEYWORD_OPS = new Set(["and", "or", "not", "in"]);
const INFIX = new Map([
  ["?", 2],
  ["or", 4],
  ["||", 4],
  ["and", 6],
  ["&&", 6],
  ["==", 10],
  ["!=", 10],
  ["<", 10],
  ["<=", 10],
  [">", 10],
  [">=", 10],
  ["in", 10],
  ["+", 12],
  ["-", 12],
  ["*", 14],
  ["/", 14],
  ["%", 14],
  [".", 18],
  ["[", 18],
  ["(", 18],
]);
/** `not x == y` is `not (x == y)`, as in Python; `!`, `-` and `+` bind tighter. */
const NOT_BP = 8;
const UNARY_BP = 16;
const COMPARISON_BP = 10;

function parser(toks: Tok[]) {
  let pos = 0;
  let depth = 0;
  let nodes = 0;
  const node = <N extends Node>(n: N): N => {
    if (++nodes > LIMITS.nodes) throw new ExpressionError(`expression too large (more than ${LIMITS.nodes} parts)`);
    return n;
  };
  const peek = () => toks[pos]!;
  const opOf = (tk: Tok): string | undefined => (tk.t === "op" ? tk.v : tk.t === "id" && KEYWORD_OPS.has(tk.v) ? tk.v : undefined);
  const expect = (v: string) => {
    const tk = toks[pos]!;
    if (tk.t !== "op" || tk.v !== v) throw new ExpressionError(`expected ${v} but found ${describe(tk)}`, tk.at);
    pos++;
  };

  const expr = (minBp: number): Node => {
    if (++depth > LIMITS.depth) throw new ExpressionError(`expression nested too deeply (more than ${LIMITS.depth} levels)`, peek().at);
    let left = prefix();
    for (;;) {
      const tk = peek();
      const op = opOf(tk);
      const bp = op === undefined ? undefined : INFIX.get(op);
      if (op === undefined || bp === undefined || bp <= minBp) break;
      pos++;
      left = infix(left, op, bp, tk.at);
    }
    depth--;
    return left;
  };

  const prefix = (): Node => {
    const tk = toks[pos++]!;
    if (tk.t === "num" || tk.t === "str") return node({ k: "lit", v: tk.v });
    if (tk.t === "id") {
      if (tk.v === "true" || tk.v === "false") return node({ k: "lit", v: tk.v === "true" });
      if (tk.v === "null") return node({ k: "lit", v: null });
      if (tk.v === "not") return node({ k: "unary", op: "not", arg: expr(NOT_BP), at: tk.at });
      if (KEYWORD_OPS.has(tk.v)) throw new ExpressionError(`unexpected ${tk.v}`, tk.at);
      return node({ k: "name", name: tk.v, at: tk.at });
    }
    if (tk.t === "op") {
      if (tk.v === "(") {
        const e = expr(0);
        expect(")");
        return e;
      }
      if (tk.v === "[") {
        const items: Node[] = [];
        if (!(peek().t === "op" && peek().v === "]")) {
          for (;;) {
            items.push(expr(0));
            if (peek().t === "op" && peek().v === ",") pos++;
            else break;
          }
        }
        expect("]");
        return node({ k: "list", items });
      }
      if (tk.v === "-" || tk.v === "+") return node({ k: "unary", op: tk.v, arg: expr(UNARY_BP), at: tk.at });
      if (tk.v === "!") return node({ k: "unary", op: "not", arg: expr(UNARY_BP), at: tk.at });
    }
    throw new ExpressionError(tk.t === "end" ? "expression ends too early" : `unexpected ${describe(tk)}`, tk.at);
  };

  const infix = (left: Node, op: string, bp: number, at: number): Node => {
    switch (op) {
      case ".": {
        const name = toks[pos++]!;
        if (name.t !== "id") throw new ExpressionError(`expected a field name after . but found ${describe(name)}`, name.at);
        return node({ k: "member", obj: left, key: { k: "lit", v: name.v }, at: name.at });
      }
      case "[": {
        const key = expr(0);
        expect("]");
        return node({ k: "member", obj: left, key, at });
      }
      case "(": {
        if (left.k !== "name") throw new ExpressionError("only functions such as state(...) can be called", at);
        const args: Node[] = [];
        if (!(peek().t === "op" && peek().v === ")")) {
          for (;;) {
            args.push(expr(0));
            if (peek().t === "op" && peek().v === ",") pos++;
            else break;
          }
        }
        expect(")");
        return node({ k: "call", fn: left.name, args, at: left.at });
      }
      case "?": {
        const then = expr(0);
        expect(":");
        return node({ k: "cond", test: left, then, else: expr(bp - 1) });
      }
      case "or":
      case "||":
        return node({ k: "logic", op: "or", left, right: expr(bp) });
      case "and":
      case "&&":
        return node({ k: "logic", op: "and", left, right: expr(bp) });
      default: {
        const right = expr(bp);
        const next = opOf(peek());
        if (bp === COMPARISON_BP && next !== undefined && INFIX.get(next) === COMPARISON_BP) {
          throw new ExpressionError("comparisons cannot be chained (write a < b and b < c)", peek().at);
        }
        return node({ k: "binary", op: op as BinaryOp, left, right, at });
      }
    }
  };

  return {
    parse(): Node {
      const root = expr(0);
      const tk = peek();
      if (tk.t !== "end") throw new ExpressionError(`unexpected ${describe(tk)}`, tk.at);
      return root;
    },
  };
}

function describe(tk: Tok): string {
  if (tk.t === "end") return tk.v === "}}" ? "}}" : "the end";
  if (tk.t === "str") return "a string";
  if (tk.t === "num") return String(tk.v);
  return JSON.stringify(tk.v);
}

/** Parses one expression; throws ExpressionError (with the column) if it is not valid. */
export function parseExpression(source: string): Expression {
  if (source.length > LIMITS.source) throw new ExpressionError(`expression too long (more than ${LIMITS.source} characters)`);
  return { source, root: parser(tokenize(source, 0, false)).parse() };
}

/** Parses text with {{ expression }} parts; text without `{{` is a template of one string part. */
export function parseTemplate(source: string): Template {
  if (source.length > LIMITS.source) throw new ExpressionError(`template too long (more than ${LIMITS.source} characters)`);
  const parts: (string | Node)[] = [];
  let i = 0;
  while (i < source.length) {
    const open = source.indexOf("{{", i);
    if (open < 0) {
      parts.push(source.slice(i));
      break;
    }
    if (open > i) parts.push(source.slice(i, open));
    const toks = tokenize(source, open + 2, true);
    const endTok = toks[toks.length - 1]!;
    parts.push(parser(toks).parse());
    i = endTok.at + 2;
  }
  const single = parts.length === 1 && typeof parts[0] !== "string" ? parts[0] : undefined;
  return { source, parts, single };
}

/** True when `s` holds at least one {{ }} part (so it needs rendering). */
export function isTemplate(s: string): boolean {
  return s.includes("{{");
}

/**
 * The topics an expression reads with state()/since(), for the engine's state cache. `dynamic` is set
 * when a topic is computed (not a string literal): the engine then has to cache every topic.
 */
export function stateTopics(roots: readonly Node[]): { topics: Set<string>; dynamic: boolean } {
  const topics = new Set<string>();
  let dynamic = false;
  const walk = (n: Node): void => {
    switch (n.k) {
      case "call":
        if (n.fn === "state" || n.fn === "since") {
          const a = n.args[0];
          if (a?.k === "lit" && typeof a.v === "string") topics.add(a.v);
          else dynamic = true;
        }
        for (const a of n.args) walk(a);
        return;
      case "list":
        for (const a of n.items) walk(a);
        return;
      case "member":
        walk(n.obj);
        walk(n.key);
        return;
      case "unary":
        walk(n.arg);
        return;
      case "binary":
      case "logic":
        walk(n.left);
        walk(n.right);
        return;
      case "cond":
        walk(n.test);
        walk(n.then);
        walk(n.else);
        return;
      default:
        return;
    }
  };
  for (const r of roots) walk(r);
  return { topics, dynamic };
}
