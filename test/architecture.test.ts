// Dependency direction (DESIGN.md §3): drivers/ and rules/ may import only *types* from
// hub/contracts.ts, and never each other. Scans every import/export-from in their .ts files.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import t from "tap";

const root = resolve(import.meta.dirname, "..");

function tsFiles(dir: string): string[] {
  let out: string[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const e of entries) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out = out.concat(tsFiles(p));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const IMPORT = /^\s*(import|export)\s+(type\s+)?[^'"]*?from\s+["']([^"']+)["']|^\s*import\s*\(\s*["']([^"']+)["']|import\s*\(\s*["']([^"']+)["']\s*\)/gm;

export function violations(file: string, src: string): string[] {
  const part = relative(root, file).split("/")[0]!;
  const bad: string[] = [];
  for (const m of src.matchAll(IMPORT)) {
    const spec = m[3] ?? m[4] ?? m[5]!;
    const typeOnly = m[2] !== undefined;
    if (!spec.startsWith(".")) continue; // packages and node: builtins
    const target = relative(root, resolve(dirname(file), spec));
    const top = target.split("/")[0];
    if (top === part) continue;
    if (top === "hub") {
      if (target.replace(/\.js$/, "") === "hub/contracts" && typeOnly) continue;
      bad.push(`${relative(root, file)} imports ${spec}: only \`import type\` from hub/contracts.ts is allowed`);
    } else {
      bad.push(`${relative(root, file)} imports ${spec}: ${part}/ must not import from ${top}/`);
    }
  }
  return bad;
}

t.test("drivers/ and rules/ respect the dependency direction", async (t) => {
  const files = [...tsFiles(join(root, "drivers")), ...tsFiles(join(root, "rules"))];
  t.ok(files.length > 0, "there are files to check");
  const bad = files.flatMap((f) => violations(f, readFileSync(f, "utf8")));
  t.same(bad, []);
});

t.test("the scanner catches what it must", async (t) => {
  const f = join(root, "drivers", "x.ts");
  t.same(violations(f, `import type { Clock } from "../hub/contracts.js";`), []);
  t.equal(violations(f, `import { Clock } from "../hub/contracts.js";`).length, 1, "value import of contracts");
  t.equal(violations(f, `import { createBroker } from "../hub/broker/broker.js";`).length, 1, "hub internals");
  t.equal(violations(f, `import type { Rule } from "../rules/schema.js";`).length, 1, "drivers -> rules");
  t.equal(violations(join(root, "rules", "y.ts"), `const m = await import("../drivers/gpio.js");`).length, 1, "dynamic import");
  t.same(violations(f, `import { z } from "zod";\nimport type { Reading } from "./types.js";`), []);
});
