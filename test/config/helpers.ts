// Test support for the config loader: an in-memory filesystem and environment.
import type { LoadDeps } from "../../hub/config/load.js";

export function fakeDeps(files: Record<string, string> = {}, env: Record<string, string> = {}): LoadDeps & { reads: string[] } {
  const reads: string[] = [];
  return {
    reads,
    env,
    readFile(path: string): string {
      reads.push(path);
      const text = files[path];
      if (text !== undefined) return text;
      const err: NodeJS.ErrnoException = new Error(`ENOENT: no such file or directory, open '${path}'`);
      err.code = "ENOENT";
      throw err;
    },
  };
}

/** A config of the given lines, joined with "\n", so tests can count lines and columns. */
export function yaml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}
