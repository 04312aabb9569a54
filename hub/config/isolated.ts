// Validates the config file and the rules files in a short-lived child process, so the running hub
// never loads the YAML parser, zod or the schemas. Why: importing them and building the schemas
// costs ~9 MB of RSS for the whole life of the process (zod's modules and ~1,600 schema objects with
// their closures), and V8 cannot unload a module. The child is this same program (`hub __load`,
// not in --help): it reads one request (v8-serialised) on stdin, answers on stdout and exits. The
// answer is plain data (Config and Rule are plain objects), so nothing is lost in the copy.
//
// The child is only an optimisation: when it cannot be started or dies (fork refused under memory
// pressure, a killed child), the hub says so and validates in its own process, so a reload is never
// lost because of it. Problems found by the validation are answers, not failures.
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { deserialize, serialize } from "node:v8";
import type { Logger } from "../contracts.js";
import type { RulesLoad } from "../../rules/problems.js";
import type { Rule } from "../../rules/schema.js";
import type { Config } from "./schema.js";

export type LoadRequest =
  | { kind: "config"; file: string }
  | { kind: "rules"; dir: string; others: readonly Rule[]; hasLocation: boolean };

/**
 * A config load with its problems already formatted (file:line:col per line), as main.ts prints them.
 * `rules`: the config's `rules_dir` read with it (one child instead of two; see isolatedLoader).
 */
export type ConfigLoad = { ok: true; config: Config; rules?: RulesLoad } | { ok: false; problems: string; count: number };

type Answer<R extends LoadRequest> = R extends { kind: "config" } ? ConfigLoad : RulesLoad;

export interface IsolatedLoader {
  config(file: string): Promise<ConfigLoad>;
  rules(dir: string, others: readonly Rule[], hasLocation: boolean): Promise<RulesLoad>;
}

export interface IsolatedDeps {
  /** The node binary and the script whose `__load` command answers (hub/main.ts's own file). */
  execPath: string;
  script: string;
  /** Where a fallback is reported; a function because hub run has no logger until the config is read. */
  log?: () => Logger | undefined;
  /** Injected for tests; default node:child_process spawn. */
  spawn?: typeof spawn;
  /**
   * A child that takes longer is killed and the work done in-process. Default 30 s: a Pi Zero 2 W
   * needs a second or two, and the fallback must still finish within hub.service's TimeoutStartSec=60s.
   */
  timeoutMs?: number;
}

/** The hidden command's name: `hub __load` (stdin: a LoadRequest, stdout: its answer). */
export const LOAD_COMMAND = "__load";

/** Runs a request in this process (the child's side, and the fallback). */
export async function answer<R extends LoadRequest>(req: R): Promise<Answer<R>> {
  if (req.kind === "config") {
    const { formatProblems, loadConfigFile } = await import("./load.js");
    const r = loadConfigFile(req.file, { readFile: (p) => readFileSync(p, "utf8"), env: process.env });
    if (!r.ok) return { ok: false, problems: formatProblems(r.problems), count: r.problems.length } as Answer<R>;
    const dir = r.config.rules_dir;
    const rules = dir === undefined ? undefined : await readRules(dir, r.config.rules, r.config.location !== undefined);
    return { ok: true, config: r.config, ...(rules && { rules }) } as Answer<R>;
  }
  return (await readRules(req.dir, req.others, req.hasLocation)) as Answer<R>;
}

async function readRules(dir: string, others: readonly Rule[], hasLocation: boolean): Promise<RulesLoad> {
  const { loadRulesDir } = await import("../../rules/load.js");
  const fs = { readdir: (d: string) => readdirSync(d), readFile: (f: string) => readFileSync(f, "utf8") };
  return loadRulesDir(dir, fs, others, { hasLocation });
}

/** `hub __load`: reads the request from stdin, writes the answer to stdout. */
export async function serveLoad(stdin: NodeJS.ReadableStream, stdout: NodeJS.WritableStream): Promise<void> {
  const chunks: Buffer[] = [];
  for await (const c of stdin) chunks.push(c as Buffer);
  const req = deserialize(Buffer.concat(chunks)) as LoadRequest;
  const out = serialize(await answer(req));
  await new Promise<void>((resolve, reject) => stdout.write(out, (err) => (err ? reject(err) : resolve())));
}

export function isolatedLoader(deps: IsolatedDeps): IsolatedLoader {
  const run = async <R extends LoadRequest>(req: R): Promise<Answer<R>> => {
    try {
      return await inChild(req, deps);
    } catch (err) {
      deps.log?.()?.warn("could not validate in a child process; validating in the hub's own process", {
        kind: req.kind,
        error: err instanceof Error ? err.message : String(err),
      });
      return answer(req);
    }
  };
  // The rules files read along with the config, for the rules() call that follows it: the engine
  // asks for them right after the config (at start, and on SIGHUP after re-reading it), with the very
  // `rules` array of that config. Used once; any other call (a rules file changed) reads afresh.
  let ahead: { dir: string; others: readonly Rule[]; hasLocation: boolean; rules: RulesLoad } | undefined;
  return {
    config: async (file) => {
      const r = await run({ kind: "config", file });
      ahead = undefined;
      if (!r.ok || r.rules === undefined) return r;
      const { rules, ...load } = r;
      const dir = load.config.rules_dir;
      if (dir !== undefined) ahead = { dir, others: load.config.rules, hasLocation: load.config.location !== undefined, rules };
      return load;
    },
    rules: (dir, others, hasLocation) => {
      const a = ahead;
      ahead = undefined;
      if (a !== undefined && a.dir === dir && a.others === others && a.hasLocation === hasLocation) return Promise.resolve(a.rules);
      return run({ kind: "rules", dir, others, hasLocation });
    },
  };
}

function inChild<R extends LoadRequest>(req: R, deps: IsolatedDeps): Promise<Answer<R>> {
  return new Promise((resolve, reject) => {
    // No inherited V8 flags (--inspect would clash on its port); the child's stderr is the hub's,
    // so an unexpected crash message reaches the journal.
    const child = (deps.spawn ?? spawn)(deps.execPath, [deps.script, LOAD_COMMAND], { stdio: ["pipe", "pipe", "inherit"] });
    const out: Buffer[] = [];
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      child.kill("SIGKILL");
      reject(new Error(why));
    };
    const limitMs = deps.timeoutMs ?? 30_000;
    const timer = setTimeout(() => fail(`no answer within ${limitMs} ms`), limitMs);
    child.on("error", (err) => fail(err.message));
    child.stdout?.on("data", (c: Buffer) => out.push(c));
    child.stdin?.on("error", () => {}); // a child that died early: reported by "close" below
    child.on("close", (code, signal) => {
      if (settled) return;
      if (code !== 0) return fail(signal !== null ? `the child was killed by ${signal}` : `the child exited with ${code}`);
      try {
        const value = deserialize(Buffer.concat(out)) as Answer<R>;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      } catch (err) {
        fail(`unreadable answer: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
    child.stdin?.end(serialize(req));
  });
}
