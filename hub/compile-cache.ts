// Node >= 22.1 can keep the code it compiles on disk (module.enableCompileCache): a restart then
// skips parsing most of the ~300 modules a start loads (zod, yaml, the broker), which is most of a
// start's CPU, ten times slower on a Pi Zero. Node 20 has no such API: this does nothing there.
// Only modules imported *after* the call are cached, so hub/main.ts calls it before its dynamic imports.
import module from "node:module";
import { join } from "node:path";

type EnableCompileCache = (dir?: string) => unknown;

/**
 * Where the cache lives: systemd's CacheDirectory= or StateDirectory= (the unit's PrivateTmp= would
 * make Node's default, <tmp>/node-compile-cache, last one run only); elsewhere Node's default.
 */
export function compileCacheDir(env: Record<string, string | undefined>): string | undefined {
  // systemd passes a colon-separated list when the unit names several directories.
  const first = (v: string | undefined) => v?.split(":")[0] || undefined;
  const cache = first(env.CACHE_DIRECTORY);
  if (cache !== undefined) return cache;
  const state = first(env.STATE_DIRECTORY);
  return state === undefined ? undefined : join(state, "compile-cache");
}

/** Turns the cache on for modules imported from now on, where Node has it; never throws. */
export function enableCompileCache(env: Record<string, string | undefined>): boolean {
  const enable = (module as unknown as { enableCompileCache?: EnableCompileCache }).enableCompileCache;
  if (typeof enable !== "function") return false;
  try {
    // A directory it cannot write only means no cache: Node reports that in the result, not by throwing.
    enable(compileCacheDir(env));
    return true;
  } catch {
    return false; // an optimisation is never a reason not to start
  }
}
