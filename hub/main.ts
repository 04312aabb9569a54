#!/usr/bin/env -S node --max-semi-space-size=1
// The only file that touches `process`: arguments, environment, signals, exit codes.
// Runs with --max-semi-space-size=1 (shebang, npm start): V8's young generation otherwise grows to
// 16 MB semi-spaces under load, which on a hub costs ~10 KB of RSS per idle connection and ~2 KB per
// retained message for little throughput (measured with npm run bench).
// Exit codes: 0 ok, 1 runtime failure, 64 usage error, 70 internal error, 78 bad config (EX_CONFIG,
// which the systemd unit does not restart on).
// Only small modules are imported statically; each command imports its own parts (`await import`),
// so `hub check` never loads the broker and `hub run` never the JSON Schema code, and the compile
// cache (Node >= 22) is on before the big ones (config: zod + yaml) are compiled.
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { systemClock } from "./clock.js";
import { enableCompileCache } from "./compile-cache.js";
import type { Config } from "./config/schema.js";
import type { Logger } from "./contracts.js";
import { createLogger, logFormatFor } from "./log.js";

enableCompileCache(process.env);

const EX_USAGE = 64;
const EX_SOFTWARE = 70;
const EX_CONFIG = 78;
const STOP_DEADLINE_MS = 5_000;

const HELP = `hub — home-automation hub: MQTT broker, devices, rules, cloud bridge

Usage:
  hub run --config FILE [--simulate]   run the hub (--simulate: simulated hardware, any machine)
  hub check --config FILE              validate a config file; exit 0 if valid, 78 if not
  hub status --config FILE             ask the running hub how it is; exit 0 if it answered, 69 if not
  hub rules check FILE...              validate rules files; exit 0, or 78 with file:line:col
  hub rules test FILE... --events EVENTS.yaml
                                       replay a scenario against rules and explain what fired and why
  hub i2c scan [--bus N] [--simulate] [--config FILE]
                                       list the addresses answering on I2C bus N (default 1)
                                       and the chips likely there; exit 1 if the bus is missing
  hub passwd FILE USER [--stdin] [--iterations N]
                                       add a broker user or change its password (mosquitto
                                       password file; prompts twice, or reads one line with --stdin)
  hub passwd -D FILE USER              delete a broker user
  hub schema                           print the JSON Schema of the config file
  hub --version                        print the version
  hub --help                           this help

Signals (when running): SIGTERM/SIGINT stop cleanly within 5 s (a second one exits at once);
SIGHUP reloads what can be reloaded.
`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string };
  return pkg.version;
}

async function loadOrExit(file: string): Promise<Config> {
  const { formatProblems, loadConfigFile } = await import("./config/load.js");
  const r = loadConfigFile(file, { readFile: (p) => readFileSync(p, "utf8"), env: process.env });
  if (!r.ok) {
    process.stderr.write(`${formatProblems(r.problems)}\n`);
    process.stderr.write(`${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in ${file}\n`);
    process.exit(EX_CONFIG);
  }
  return r.config;
}

/** The password and ACL files of broker.auth are part of the config: a bad one is a config error. */
async function authFilesOrExit(config: Config): Promise<void> {
  const auth = config.broker.auth;
  if (auth === undefined || config.broker.external !== undefined) return;
  const { loadPolicy } = await import("./broker/auth/load.js");
  const r = loadPolicy(auth, (p) => readFileSync(p, "utf8"));
  if (r.ok) return;
  process.stderr.write(`${r.problems.join("\n")}\n${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in broker.auth files\n`);
  process.exit(EX_CONFIG);
}

async function run(file: string, simulate: boolean): Promise<void> {
  // Config and rules files are validated in a child process (this program's `__load`), so zod, the
  // YAML parser and the schemas never load into the long-running process (hub/config/isolated.ts).
  const { isolatedLoader } = await import("./config/isolated.js");
  const script = fileURLToPath(import.meta.url);
  // One loader for the whole run: it keeps the rules files it read with the config for the engine's
  // first call. Its fallback warnings go to stderr until the config's log exists, then to the log.
  let configLog: Logger = createLogger({ level: "warn", format: "text", write: (line) => process.stderr.write(`${line}\n`) });
  const loader = isolatedLoader({ execPath: process.execPath, script, log: () => configLog });
  const first = await loader.config(file);
  if (!first.ok) {
    process.stderr.write(`${first.problems}\n`);
    process.stderr.write(`${first.count} problem${first.count === 1 ? "" : "s"} in ${file}\n`);
    process.exit(EX_CONFIG);
  }
  const config = first.config;
  await authFilesOrExit(config);
  if (simulate) config.hardware = "simulate";
  const log = createLogger({
    level: config.log.level,
    format: logFormatFor(config.log.format, process.env),
    write: (line, level) => (level === "error" || level === "warn" ? process.stderr : process.stdout).write(`${line}\n`),
  });
  const clock = systemClock();
  const v = version();
  process.on("uncaughtException", (err) => {
    log.error("internal error; exiting", { error: err.stack ?? String(err) });
    process.exit(EX_SOFTWARE);
  });
  process.on("unhandledRejection", (err) => {
    log.error("internal error (unhandled rejection); exiting", { error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
    process.exit(EX_SOFTWARE);
  });

  log.info("starting", { version: v, config: file, hardware: config.hardware, node: process.version });
  configLog = log.child("config");
  // SIGHUP: the rules part re-reads this file for its `rules:` (a bad file keeps the old rules).
  const rereadConfig = () => loader.config(file);
  const [{ buildApp }, { createHealthProbe }, { createNotifier }] = await Promise.all([import("./app.js"), import("./health.js"), import("./notify.js")]);
  const app = await buildApp({ config, clock, log, version: v, rereadConfig, readRulesDir: loader.rules });
  let stopping = false;
  let running = false;
  // The watchdog is fed while messages still go round the embedded broker (hub/health.ts).
  const probe = app.broker
    ? createHealthProbe({ bus: app.broker.bus("health"), clock, log: log.child("health"), intervalMs: 5_000, staleAfterMs: 15_000 })
    : undefined;
  // Type=notify under systemd (no-op elsewhere): READY once listening, watchdog fed while healthy.
  const notifier = createNotifier({
    env: process.env,
    clock,
    log: log.child("systemd"),
    pid: process.pid,
    healthy: () => running && !stopping && (probe?.healthy() ?? true),
  });
  const stop = async (signal: string) => {
    if (stopping) {
      log.warn("second signal; exiting now", { signal });
      process.exit(130);
    }
    stopping = true;
    notifier.stopping();
    probe?.stop();
    log.info("stopping", { signal });
    const { clean } = await app.lifecycle.stop(STOP_DEADLINE_MS);
    log.info(clean ? "stopped" : "stopped with errors");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGHUP", () => {
    log.info("reloading (SIGHUP)");
    void app.lifecycle.reload();
  });
  try {
    await app.lifecycle.start();
  } catch (err) {
    log.error("could not start", { error: err instanceof Error ? err.message : String(err) });
    await app.lifecycle.stop(STOP_DEADLINE_MS);
    process.exit(1);
  }
  await probe?.start();
  running = true;
  notifier.ready();
  const where = app.broker?.addresses().map((a) => (a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`));
  notifier.status(where ? `broker listening on ${where.join(", ")}` : "using an external broker");
  log.info("hub running; press Ctrl-C to stop");
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: "string", short: "c" },
        simulate: { type: "boolean" },
        help: { type: "boolean", short: "h" },
        version: { type: "boolean", short: "v" },
        events: { type: "string" },
        stdin: { type: "boolean" },
        delete: { type: "boolean", short: "D" },
        iterations: { type: "string" },
        bus: { type: "string" },
      },
    });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${HELP}`);
    process.exit(EX_USAGE);
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.version) {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (values.help || command === undefined || command === "help") {
    process.stdout.write(HELP);
    return;
  }
  const needConfig = (): string => {
    if (typeof values.config === "string") return values.config;
    process.stderr.write(`hub ${command}: --config FILE is required\n`);
    process.exit(EX_USAGE);
  };
  switch (command) {
    case "run":
      await run(needConfig(), values.simulate === true);
      return;
    case "__load": {
      // Internal (not in --help): `hub run` validates config and rules files here, in a child.
      const { serveLoad } = await import("./config/isolated.js");
      await serveLoad(process.stdin, process.stdout);
      return;
    }
    case "check": {
      const file = needConfig();
      const config = await loadOrExit(file);
      await authFilesOrExit(config);
      if (config.rules_dir !== undefined) {
        // The rules directory is part of what `run` would load: check it the same way.
        const { formatRuleProblems, loadRulesDir } = await import("../rules/load.js");
        const fs = { readdir: (d: string) => readdirSync(d), readFile: (f: string) => readFileSync(f, "utf8") };
        const r = loadRulesDir(config.rules_dir, fs, config.rules, { hasLocation: config.location !== undefined });
        if (!r.ok) {
          process.stderr.write(`${formatRuleProblems(r.problems)}\n${r.problems.length} problem${r.problems.length === 1 ? "" : "s"} in ${config.rules_dir}\n`);
          process.exit(EX_CONFIG);
        }
      }
      process.stdout.write(`${file}: ok\n`);
      return;
    }
    case "status": {
      const config = await loadOrExit(needConfig());
      const write = (stream: NodeJS.WriteStream) => (s: string) => void stream.write(s);
      const { statusCommand } = await import("./status.js");
      process.exitCode = await statusCommand(config, { clock: systemClock(), cliVersion: version(), stdout: write(process.stdout), stderr: write(process.stderr) });
      return;
    }
    case "schema": {
      const { configJsonSchema } = await import("./config/json-schema.js");
      process.stdout.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
      return;
    }
    case "rules": {
      const [, sub, ...files] = positionals;
      const readFile = (p: string) => readFileSync(p, "utf8");
      if ((sub !== "check" && sub !== "test") || files.length === 0 || (sub === "test" && typeof values.events !== "string")) {
        process.stderr.write("usage: hub rules check FILE... | hub rules test FILE... --events EVENTS.yaml\n");
        process.exit(EX_USAGE);
      }
      const { rulesCheck, rulesTest } = await import("../rules/cli.js");
      const r = sub === "check" ? rulesCheck(files, readFile) : await rulesTest(files, values.events as string, readFile);
      (r.code === 0 ? process.stdout : process.stderr).write(`${r.output}\n`);
      process.exitCode = r.code;
      return;
    }
    case "i2c": {
      const busText = typeof values.bus === "string" ? values.bus : "1";
      const bus = /^\d{1,3}$/.test(busText) ? Number(busText) : Number.NaN;
      if (positionals[1] !== "scan" || positionals.length > 2 || !(bus <= 255)) {
        process.stderr.write("usage: hub i2c scan [--bus N] [--simulate] [--config FILE]   (N: 0..255)\n");
        process.exit(EX_USAGE);
      }
      const config = typeof values.config === "string" ? await loadOrExit(values.config) : undefined;
      const { i2cScanCommand } = await import("./i2c-cli.js");
      const write = (stream: NodeJS.WriteStream) => (s: string) => void stream.write(s);
      process.exitCode = await i2cScanCommand(
        { bus, simulate: values.simulate === true || config?.hardware === "simulate", config },
        { clock: systemClock(), stdout: write(process.stdout), stderr: write(process.stderr) },
      );
      return;
    }
    case "passwd": {
      const [, file, user, ...extra] = positionals;
      if (file === undefined || user === undefined || extra.length > 0) {
        process.stderr.write("usage: hub passwd FILE USER [--stdin] [--iterations N] | hub passwd -D FILE USER\n");
        process.exit(EX_USAGE);
      }
      const { passwdCommand, promptHidden } = await import("./broker/auth/passwd-cli.js");
      process.exitCode = await passwdCommand(
        { file, user, del: values.delete === true, stdin: values.stdin === true, iterations: values.iterations as string | undefined },
        {
          isTTY: process.stdin.isTTY === true,
          readStdin: async () => {
            const chunks: Buffer[] = [];
            for await (const c of process.stdin) chunks.push(c as Buffer);
            return Buffer.concat(chunks).toString("utf8");
          },
          promptHidden: (prompt) => promptHidden(process.stdin, process.stderr, prompt),
          out: (s) => void process.stdout.write(s),
          err: (s) => void process.stderr.write(s),
          pid: process.pid,
        },
      );
      return;
    }
    default:
      process.stderr.write(`unknown command: ${command}\n\n${HELP}`);
      process.exit(EX_USAGE);
  }
}

await main(process.argv.slice(2));
