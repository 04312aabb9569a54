// The production entry: bundles tsc's output (dist/hub/main.js and everything it imports, lazily
// imported parts included) into dist/bundle/hub.mjs plus code-split chunks. `npm run build` runs it
// after tsc. Why: Node's ESM loader resolves every module file through getPathFromURLPosix,
// normalizeString and `get protocol`; loading the hub's ~100 files (and zod's ~95) makes them hot
// enough for TurboFan, which pages in ~4 MB of the node binary's compiler code plus compiler memory
// that an idle hub then keeps (issue: idle RSS within 10 MB of a bare `node`, 40.4 MB here).
// Measured idle VmRSS, `run --simulate`, Node 20, x86-64 (2026-11-27), with config validation in a
// child (hub/config/isolated.ts): broker only 55.1 MB from dist/hub/main.js, 50.2 MB from the
// bundle (3 functions optimized, 0); config.example.yaml 61.9 MB, 60.8 MB.
//
// The bundle directory is two levels below the project root, like dist/hub/, so that
// `new URL("../../package.json", import.meta.url)` (hub/main.ts) and createRequire(import.meta.url)
// (mqtt-packet, node-cron, firmata-io) resolve from the bundle exactly as from tsc's output.
import { builtinModules } from "node:module";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build, type Plugin } from "esbuild";

// Bundled: pure JavaScript, no files of their own read at run time, and many module files (zod ~95,
// yaml ~70). Both load only in the config-checking child and `hub check`, which start faster for
// it. Every other package stays in node_modules: the native ones (better-sqlite3, serialport,
// onoff, i2c-bus) must; mqtt-packet, node-cron and firmata-io are loaded with createRequire by
// package path; mqtt and ws are loaded only for a bridge or a WebSocket listener.
const BUNDLED = new Set(["zod", "yaml"]);

const packageOf = (spec: string): string => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/");
const BUILTINS = new Set(builtinModules);

const dependencies: Plugin = {
  name: "hub-dependencies",
  setup(b) {
    // A bare specifier (not ./, ../ or /): external unless its package is in BUNDLED.
    b.onResolve({ filter: /^[^./]/ }, (args) => {
      const name = args.path.replace(/^node:/, "");
      // yaml is CommonJS and requires `process` and `buffer`. esbuild turns require() of an
      // external module into a shim that throws "Dynamic require ... is not supported" in an ES
      // module; served as an ES module that re-exports the builtin, it becomes an import instead.
      if (args.kind === "require-call" && BUILTINS.has(name)) return { path: name, namespace: "builtin-as-esm" };
      if (BUILTINS.has(name) || !BUNDLED.has(packageOf(args.path))) return { path: args.path, external: true };
      return undefined;
    });
    b.onLoad({ filter: /.*/, namespace: "builtin-as-esm" }, (args) => ({
      contents: `export * from "node:${args.path}"; export { default } from "node:${args.path}";`,
      loader: "js",
    }));
  },
};

const root = fileURLToPath(new URL("../../", import.meta.url)); // this file runs as dist/scripts/bundle.js
const outdir = `${root}dist/bundle`;

// Stale chunks from an earlier build (their names carry content hashes) would otherwise pile up
// and be installed by systemd/install.sh.
rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });

const result = await build({
  absWorkingDir: root,
  entryPoints: { hub: "dist/hub/main.js" }, // its shebang is kept, and the file made executable
  outdir,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  // `await import("./x.js")` stays a separate chunk, loaded only when a command or the config needs
  // it (`hub check` never loads the broker; a hub without devices never loads the drivers).
  splitting: true,
  outExtension: { ".js": ".mjs" }, // ESM wherever the directory is copied, with or without package.json
  chunkNames: "[name]-[hash]",
  plugins: [dependencies],
  minify: true,
  // esbuild's default, stated because it matters: V8 keeps a source with any non-Latin-1
  // character as a two-byte string, doubling the memory the hub's code takes.
  charset: "ascii",
  // Readable stack traces on demand: `node --enable-source-maps dist/bundle/hub.mjs ...` maps
  // minified positions back to the .ts sources (through tsc's own maps); without the flag Node
  // does not read the maps.
  sourcemap: "linked",
  sourcesContent: false, // the maps point at hub/**/*.ts; an installed copy need not carry them
  logLevel: "warning",
  metafile: true,
});

if (result.errors.length > 0 || result.warnings.length > 0) process.exit(1);
// A package bundled by accident would be a second copy of what node_modules holds anyway.
const strays = Object.keys(result.metafile.inputs).filter((p) => {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(p);
  return m !== null && !BUNDLED.has(m[1]!);
});
if (strays.length > 0) {
  process.stderr.write(`bundle: packages outside BUNDLED were bundled:\n  ${strays.join("\n  ")}\n`);
  process.exit(1);
}
const chunks = readdirSync(outdir).filter((f) => f.endsWith(".mjs")).length - 1;
process.stdout.write(`bundle: dist/bundle/hub.mjs + ${chunks} chunks\n`);
