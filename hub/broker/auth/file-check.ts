// For the config check (hub/config/check.ts, run at every start and by `hub check`): the files
// broker.auth names must be readable, reported at the config key (file:line:col of the config). What
// is inside them is load.ts's business, reported at the line of the file itself. A leaf module
// (types only): the config check must not load the password and ACL code at start.
import type { AuthConfig } from "./schema.js";

export interface AuthFileProblem {
  /** Below `broker.auth`. */
  path: string[];
  expected: string;
  found: string;
}

export function errnoOf(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e?.code ?? (e instanceof Error ? e.message : String(err));
}

export function authFileProblems(cfg: AuthConfig, readFile: (path: string) => unknown): AuthFileProblem[] {
  const out: AuthFileProblem[] = [];
  const files = [
    ["passwd_file", cfg.passwd_file, "a readable password file (user:hash lines from hub passwd or mosquitto_passwd)"],
    ["acl_file", cfg.acl_file, "a readable ACL file (mosquitto acl_file syntax)"],
  ] as const;
  for (const [key, file, expected] of files) {
    if (file === undefined) continue;
    try {
      readFile(file);
    } catch (err) {
      out.push({ path: [key], expected, found: `${JSON.stringify(file)}: cannot read it (${errnoOf(err)})` });
    }
  }
  return out;
}
