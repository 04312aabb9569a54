// What the engine derives from rules without running them: the topics their conditions and
// expressions read (for the state cache), a stable text of a rule (to tell an unchanged rule on
// reload), and the short descriptions of a trigger used in traces and status topics.
import { type Node, parseExpression, parseTemplate, stateTopics } from "./expressions.js";
import type { Rule } from "./schema.js";
import type { TriggerVars } from "./triggers.js";

/** The topics a rule's conditions, expressions and templates read with state()/since(). */
export function readTopics(rules: readonly Rule[]): { topics: Set<string>; dynamic: boolean } {
  const topics = new Set<string>();
  const roots: Node[] = [];
  const walk = (x: unknown, key?: string): void => {
    if (typeof x === "string") {
      try {
        if (key === "expression") roots.push(parseExpression(x).root);
        else if (x.includes("{{")) for (const p of parseTemplate(x).parts) if (typeof p !== "string") roots.push(p);
      } catch {
        // Not an expression after all (e.g. a payload to match that contains "{{"): it reads no topic.
      }
      return;
    }
    if (Array.isArray(x)) for (const v of x) walk(v, key);
    else if (typeof x === "object" && x !== null) {
      const o = x as Record<string, unknown>;
      if ((o.condition === "state" || o.condition === "numeric") && typeof o.topic === "string") topics.add(o.topic);
      for (const [k, v] of Object.entries(o)) walk(v, k);
    }
  };
  for (const r of rules) if (r.enabled) walk([r.conditions, r.actions]);
  const found = stateTopics(roots);
  for (const t of found.topics) topics.add(t);
  return { topics, dynamic: found.dynamic };
}

/** A trigger variable for the status topic: without the payload, long values cut. */
export function summary(tv: TriggerVars): TriggerVars {
  const out: TriggerVars = {};
  for (const [k, v] of Object.entries(tv)) {
    if (k === "payload" || k === "raw") continue;
    const s = JSON.stringify(v);
    out[k] = s.length > 200 ? `${s.slice(0, 197)}...` : v;
  }
  return out;
}

/** The first line of a trace: which trigger, on what, with which value. */
export function describeTrigger(tv: TriggerVars): string {
  const parts = [`trigger ${tv.id} (${tv.kind})`];
  if (typeof tv.topic === "string") parts.push(tv.topic);
  if (tv.kind === "state") parts.push(`${JSON.stringify(tv.from)} -> ${JSON.stringify(tv.to)}`);
  else if (tv.value !== undefined) parts.push(`value ${JSON.stringify(tv.value)}`.slice(0, 120));
  if (typeof tv.scheduled === "string") parts.push(`at ${tv.scheduled}`);
  return parts.join(" ");
}

/** JSON with sorted keys: two rules are the same when their texts are. */
export function stableText(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableText).join(",")}]`;
  if (typeof v === "object" && v !== null) {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableText(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/**
 * Where `sun` triggers are, as key paths from the rules list (`[0, "triggers", 1]`, and inside
 * actions for `wait`): they need a location, so `hub check` and the rules loader report each one
 * at its file:line:col when the config has none, instead of the rule failing when it starts.
 */
export function sunTriggerPaths(rules: readonly unknown[]): (string | number)[][] {
  return sunPaths(rules, "trigger");
}

/** Where `sun` conditions are (in conditions, and inside actions: if, choose, repeat), as sunTriggerPaths. */
export function sunConditionPaths(rules: readonly unknown[]): (string | number)[][] {
  return sunPaths(rules, "condition");
}

function sunPaths(rules: readonly unknown[], key: "trigger" | "condition"): (string | number)[][] {
  const out: (string | number)[][] = [];
  const walk = (x: unknown, path: (string | number)[]): void => {
    if (Array.isArray(x)) {
      for (const [i, v] of x.entries()) walk(v, [...path, i]);
    } else if (typeof x === "object" && x !== null) {
      const o = x as Record<string, unknown>;
      if (o[key] === "sun") out.push(path);
      for (const [k, v] of Object.entries(o)) walk(v, [...path, k]);
    }
  };
  walk(rules, []);
  return out;
}
