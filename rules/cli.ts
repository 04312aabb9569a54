// The `hub rules …` commands as plain functions (hub/main.ts only parses argv, prints and exits):
//   hub rules check FILE...                  validate rules files; exit 0, or 78 with file:line:col
//   hub rules test FILE --events EVENTS.yaml  replay a scenario and explain what fired and why
// Files are read through the injected function; exit codes follow main.ts (78 = bad config).
import { formatRuleProblems, parseRulesText, parseYamlWith, type RuleProblem } from "./load.js";
import { replay, scenarioSchema } from "./replay.js";
import type { Rule } from "./schema.js";

export interface CommandResult {
  /** Lines for stdout (success) or stderr (problems). */
  output: string;
  code: 0 | 78;
}

type ReadFile = (path: string) => string;

function read(path: string, readFile: ReadFile): { text: string } | { problem: RuleProblem } {
  try {
    return { text: readFile(path) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException)?.code ?? String(err);
    return { problem: { file: path, line: 1, col: 1, path: "", message: `expected a readable file, found ${code}` } };
  }
}

function loadAll(paths: readonly string[], readFile: ReadFile): { rules: Rule[]; problems: RuleProblem[] } {
  const rules: Rule[] = [];
  const problems: RuleProblem[] = [];
  const ids = new Map<string, string>();
  for (const p of paths) {
    const r = read(p, readFile);
    if ("problem" in r) {
      problems.push(r.problem);
      continue;
    }
    const parsed = parseRulesText(r.text, p);
    if (!parsed.ok) {
      problems.push(...parsed.problems);
      continue;
    }
    for (const rule of parsed.rules) {
      const first = ids.get(rule.id);
      if (first !== undefined) problems.push({ file: p, line: 1, col: 1, path: "", message: `expected rule ids used once, found ${JSON.stringify(rule.id)} again (also in ${first})` });
      ids.set(rule.id, p);
      rules.push(rule);
    }
  }
  return { rules, problems };
}

export function rulesCheck(paths: readonly string[], readFile: ReadFile): CommandResult {
  const { rules, problems } = loadAll(paths, readFile);
  if (problems.length > 0) return { output: formatRuleProblems(problems), code: 78 };
  return { output: `${paths.join(", ")}: ok (${rules.length} rule${rules.length === 1 ? "" : "s"})`, code: 0 };
}

export async function rulesTest(paths: readonly string[], eventsPath: string, readFile: ReadFile, topicsBase = "hub"): Promise<CommandResult> {
  const { rules, problems } = loadAll(paths, readFile);
  const ev = read(eventsPath, readFile);
  if ("problem" in ev) problems.push(ev.problem);
  const scenario = "text" in ev ? parseYamlWith(scenarioSchema, ev.text, eventsPath, {}) : undefined;
  if (scenario !== undefined && !scenario.ok) problems.push(...scenario.problems);
  if (problems.length > 0 || scenario === undefined || !scenario.ok) return { output: formatRuleProblems(problems), code: 78 };
  return { output: (await replay(rules, scenario.value, { topicsBase })).join("\n"), code: 0 };
}
