// What loading rules files returns, and how its problems are printed. Kept apart from rules/load.ts
// (yaml + the zod schema) so that the running hub and the engine can use them without loading the
// schema: the hub validates rules files in a short-lived child process (hub/config/isolated.ts).
import type { Rule } from "./schema.js";

export interface RuleProblem {
  file: string;
  line: number;
  col: number;
  /** Key path inside the file, e.g. `[0].triggers[1].topic`. */
  path: string;
  message: string;
}

export type RulesLoad = { ok: true; rules: Rule[] } | { ok: false; problems: RuleProblem[] };

/** One line per problem: `file:line:col: path: message`. */
export function formatRuleProblems(problems: readonly RuleProblem[]): string {
  return problems.map((p) => `${p.file}:${p.line}:${p.col}: ${p.path === "" ? "" : `${p.path}: `}${p.message}`).join("\n");
}
