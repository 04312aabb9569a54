// Watches a rules directory (on the Pi /etc/hub/rules.d/) and says when a rules file changed, so the
// engine reloads it like SIGHUP does. Apart from rules/load.ts so the running hub need not load the
// yaml parser and the schema just to watch (they run in a child process: hub/config/isolated.ts).
import type { Cancel, Logger } from "../hub/contracts.js";

/** A rules file name: what loadRulesDir reads (editors' hidden temp and swap files are not). */
const RULES_FILE = /^[^.].*\.ya?ml$/;

/** The part of node:fs's watch() used here (injected: rules/ does no I/O of its own). */
export type WatchFn = (
  dir: string,
  listener: (event: string, name: string | Buffer | null) => void,
) => { close(): void; on(event: "error", fn: (err: Error) => void): unknown };

/**
 * Calls `changed` when a rules file of `dir` is created, changed, renamed or removed. The watch is on
 * the directory, not the files, because editors save by writing a new file and renaming it over
 * the old one. A watch that fails later (the directory removed) is logged; SIGHUP still reloads.
 */
export function watchRulesDir(dir: string, changed: () => void, log: Logger, watch: WatchFn): Cancel {
  const w = watch(dir, (_event, name) => {
    const n = name === null ? null : String(name);
    if (n === null || RULES_FILE.test(n)) changed();
  });
  w.on("error", (err) => log.warn("stopped watching the rules directory; SIGHUP still reloads it", { dir, error: err.message }));
  return () => w.close();
}
