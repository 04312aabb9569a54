// `hub status`: asks the running hub how it is, as any MQTT client would. Connects to the config's
// first loopback listener, reads the retained `$SYS/broker/#` statistics and the
// `<base_topic>/+/availability` and `<base_topic>/status` topics, prints a short report. Exit 0 when
// the hub answered, 69 (EX_UNAVAILABLE) when it did not, with a message that says what to check.
// The query ends as soon as everything retained has arrived: a second SUBSCRIBE to a filter that
// matches nothing is acknowledged only after the broker has sent the first one's retained messages
// (packets on one connection are handled in order), so no fixed wait is needed.
import { isLoopback } from "./config/check.js";
import type { Config } from "./config/schema.js";
import type { Clock } from "./contracts.js";

export const EX_UNAVAILABLE = 69;

export interface StatusSnapshot {
  /** The address asked, host:port. */
  endpoint: string;
  /** Listeners in the config, host:port. */
  listeners: string[];
  /** `$SYS/broker/<key>` → value, e.g. "uptime" → "42 seconds". */
  sys: Map<string, string>;
  /** `<base_topic>/status`: online/offline, when retained. */
  hubStatus: string | undefined;
  /** Device name → `<base_topic>/<device>/availability` payload. */
  availability: Map<string, string>;
  /** Devices named in the config (shown as "unknown" until they publish availability). */
  configuredDevices: string[];
  /** Whether $SYS is published at all (broker.sys_interval > 0). */
  sysEnabled: boolean;
  /** Version of this CLI, to flag a hub still running the previous version after an upgrade. */
  cliVersion?: string;
  /** Bridge name → its retained `<base_topic>/bridge/<name>/<key>` topics (status, queue_depth, ...). */
  bridges?: Map<string, Map<string, string>>;
  /** Bridges named in the config. */
  configuredBridges?: string[];
  /** Rule id → the `result` of its retained `<base_topic>/rules/<id>/last_run` (ok, error, ...). */
  ruleResults?: Map<string, string>;
  /** Rules written in the config file itself (a rules_dir adds more, known only from their topics). */
  configuredRules?: string[];
}

export type StatusResult = { ok: true; snapshot: StatusSnapshot } | { ok: false; message: string };

function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

/** Where `hub status` connects: a loopback listener, else a wildcard one via loopback, else the first. */
export function statusEndpoint(config: Config): { host: string; port: number } | { error: string } {
  if (config.broker.external) {
    return { error: `this config uses an external broker (${config.broker.external.url}); hub status reads the embedded broker only` };
  }
  const ls = config.broker.listeners.filter((l) => l.port !== 0);
  if (ls.length === 0) return { error: "the config has no listener with a fixed port to connect to" };
  const loop = ls.find((l) => isLoopback(l.host));
  if (loop) return { host: loop.host, port: loop.port };
  // 0.0.0.0 and :: include the loopback addresses.
  const any = ls.find((l) => l.host === "0.0.0.0" || l.host === "::");
  if (any) return { host: any.host === "::" ? "::1" : "127.0.0.1", port: any.port };
  return { host: ls[0]!.host, port: ls[0]!.port };
}

/** "3725 seconds" → "1h 2m 5s". */
export function formatUptime(value: string | undefined): string | undefined {
  const m = value === undefined ? null : /^(\d+)/.exec(value);
  if (!m) return undefined;
  let s = Number(m[1]);
  const parts: string[] = [];
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3_600],
    ["m", 60],
  ] as const) {
    if (s >= size || parts.length > 0) parts.push(`${Math.floor(s / size)}${unit}`);
    s %= size;
  }
  parts.push(`${s}s`);
  return parts.join(" ");
}

/** The report `hub status` prints. Pure: everything it shows is in the snapshot. */
export function formatStatus(s: StatusSnapshot): string {
  const unknown = s.sysEnabled ? "unknown" : "unknown ($SYS is off: broker.sys_interval is 0s)";
  const rawVersion = s.sys.get("version");
  const version = rawVersion?.replace(/^hub /, "");
  const lines: string[] = [];
  const state = s.hubStatus === undefined || s.hubStatus === "online" ? "running" : `running (hub/status says ${s.hubStatus})`;
  lines.push(`hub ${version ?? ""}${version ? " " : ""}is ${state}, answering at ${s.endpoint}`);
  const row = (k: string, v: string) => lines.push(`  ${k.padEnd(10)} ${v}`);
  row("version", version ?? unknown);
  if (version && s.cliVersion && version !== s.cliVersion) {
    row("", `installed is ${s.cliVersion}: restart to run it (systemctl restart hub)`);
  }
  row("uptime", formatUptime(s.sys.get("uptime")) ?? unknown);
  row("listeners", s.listeners.join(", ") || "none");
  const clients = s.sys.get("clients/connected");
  row("clients", clients === undefined ? unknown : `${clients} connected`);

  const names = [...new Set([...s.configuredDevices, ...s.availability.keys()])].sort();
  const stateOf = (n: string) => s.availability.get(n) ?? "unknown";
  const online = names.filter((n) => stateOf(n) === "online").length;
  const offline = names.filter((n) => stateOf(n) === "offline").length;
  const other = names.length - online - offline;
  row("devices", names.length === 0 ? "none configured" : `${online} online, ${offline} offline${other ? `, ${other} unknown` : ""}`);
  const width = Math.max(0, ...names.map((n) => n.length));
  for (const n of names) row("", `${n.padEnd(width)}  ${stateOf(n)}`);
  formatRules(s, row);
  formatBridges(s, row);
  return `${lines.join("\n")}\n`;
}

/** How many rules are known and have run, and one line per rule whose last run failed. */
function formatRules(s: StatusSnapshot, row: (k: string, v: string) => void): void {
  const results = s.ruleResults ?? new Map<string, string>();
  const ids = new Set([...(s.configuredRules ?? []), ...results.keys()]);
  if (ids.size === 0) {
    row("rules", "none configured");
    return;
  }
  const failed = [...results].filter(([, r]) => r === "error").map(([id]) => id).sort();
  row("rules", `${ids.size} known, ${results.size} have run${failed.length ? `, ${failed.length} failed on their last run` : ""}`);
  for (const id of failed) row("", `${id}  last run failed (its rules/${id}/last_error topic says why)`);
}

/** One line per bridge from its retained topics: link state, backlog, and what was sent and dropped. */
function formatBridges(s: StatusSnapshot, row: (k: string, v: string) => void): void {
  const seen = s.bridges ?? new Map<string, Map<string, string>>();
  const names = [...new Set([...(s.configuredBridges ?? []), ...seen.keys()])].sort();
  if (names.length === 0) {
    row("bridges", "none configured");
    return;
  }
  const stateOf = (n: string) => seen.get(n)?.get("status") ?? "unknown";
  const online = names.filter((n) => stateOf(n) === "online").length;
  const offline = names.filter((n) => stateOf(n) === "offline").length;
  const other = names.length - online - offline;
  row("bridges", `${online} online, ${offline} offline${other ? `, ${other} unknown` : ""}`);
  const width = Math.max(...names.map((n) => n.length));
  for (const n of names) {
    const v = (k: string) => seen.get(n)?.get(k) ?? "?";
    const age = seen.get(n)?.get("oldest_age");
    const oldest = age !== undefined && age !== "0" ? ` (oldest ${formatUptime(age) ?? `${age}s`})` : "";
    row("", `${n.padEnd(width)}  ${stateOf(n)}, ${v("queue_depth")} queued${oldest}, ${v("sent")} sent, ${v("dropped")} dropped, ${v("reconnects")} reconnects`);
  }
}

export interface QueryOptions {
  clock: Clock;
  /** How long to wait for the retained topics once connected. Default 1000 ms. */
  timeoutMs?: number;
  /** How long to wait for CONNACK. Default 2000 ms. */
  connectTimeoutMs?: number;
  cliVersion?: string;
  /** Overrides the endpoint from the config (tests). */
  endpoint?: { host: string; port: number };
}

/** Connects, reads the retained status topics, disconnects. */
export async function queryStatus(config: Config, o: QueryOptions): Promise<StatusResult> {
  const ep = o.endpoint ?? statusEndpoint(config);
  if ("error" in ep) return { ok: false, message: `hub status: ${ep.error}` };
  const endpoint = hostPort(ep.host, ep.port);
  const base = config.base_topic;
  const snapshot: StatusSnapshot = {
    endpoint,
    listeners: config.broker.listeners.map((l) => hostPort(l.host, l.port)),
    sys: new Map(),
    hubStatus: undefined,
    availability: new Map(),
    configuredDevices: config.devices.map((d) => d.name),
    sysEnabled: config.broker.sys_interval > 0,
    cliVersion: o.cliVersion,
    bridges: new Map(),
    configuredBridges: config.bridges.map((b) => b.name),
    ruleResults: new Map(),
    configuredRules: config.rules.map((r) => r.id),
  };
  // Loaded here, not at the top: `hub run` imports this module and must not pay MQTT.js's memory.
  const { default: mqtt } = await import("mqtt");
  const client = mqtt.connect({
    host: ep.host,
    port: ep.port,
    protocolVersion: 5,
    clientId: `hub-status-${process.pid}`,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: o.connectTimeoutMs ?? 2_000,
  });
  const connected = await new Promise<Error | undefined>((resolve) => {
    client.once("connect", () => resolve(undefined));
    client.once("error", (err) => resolve(err));
    client.once("close", () => resolve(new Error("connection closed before CONNACK")));
  });
  if (connected) {
    client.end(true);
    const code = (connected as NodeJS.ErrnoException).code;
    return {
      ok: false,
      message:
        `hub status: the hub is not answering at ${endpoint} (${code ?? connected.message}).\n` +
        "Is it running? Check with: systemctl status hub; journalctl -u hub -n 50",
    };
  }

  const sysPrefix = "$SYS/broker/";
  const escaped = base.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const availability = new RegExp(`^${escaped}/([^/]+)/availability$`);
  const bridge = new RegExp(`^${escaped}/bridge/([^/]+)/([^/]+)$`);
  const ruleRun = new RegExp(`^${escaped}/rules/([^/]+)/last_run$`);
  client.on("message", (topic, payload) => {
    const text = payload.toString("utf8");
    if (topic.startsWith(sysPrefix)) snapshot.sys.set(topic.slice(sysPrefix.length), text);
    else if (topic === `${base}/status`) snapshot.hubStatus = text;
    else {
      const m = availability.exec(topic);
      if (m) snapshot.availability.set(m[1]!, text);
      const r = ruleRun.exec(topic);
      if (r) {
        try {
          snapshot.ruleResults!.set(r[1]!, String((JSON.parse(text) as { result?: unknown }).result ?? "unknown"));
        } catch {
          snapshot.ruleResults!.set(r[1]!, "unknown");
        }
      }
      const b = bridge.exec(topic);
      if (b) {
        const values = snapshot.bridges!.get(b[1]!) ?? new Map<string, string>();
        values.set(b[2]!, text);
        snapshot.bridges!.set(b[1]!, values);
      }
    }
  });
  await new Promise<void>((resolve) => {
    const cancel = o.clock.after(o.timeoutMs ?? 1_000, () => resolve());
    client.subscribe([`${sysPrefix}#`, `${base}/+/availability`, `${base}/status`, `${base}/bridge/+/+`, `${base}/rules/+/last_run`], { qos: 0 });
    // The barrier: acknowledged only after the retained messages of the SUBSCRIBE above.
    client.subscribe(`hub-status/${process.pid}/barrier`, { qos: 0 }, () => {
      cancel();
      resolve();
    });
  });
  await client.endAsync();

  const v = snapshot.sys.get("version");
  if (v !== undefined && !v.startsWith("hub ")) {
    return {
      ok: false,
      message: `hub status: the broker at ${endpoint} is not the hub ($SYS/broker/version is "${v}"). Another broker, often mosquitto, holds the port.`,
    };
  }
  return { ok: true, snapshot };
}

/** The whole command: the report on stdout and exit 0, or a message on stderr and exit 69. */
export async function statusCommand(
  config: Config,
  o: QueryOptions & { stdout: (s: string) => void; stderr: (s: string) => void },
): Promise<number> {
  const r = await queryStatus(config, o);
  if (!r.ok) {
    o.stderr(`${r.message}\n`);
    return EX_UNAVAILABLE;
  }
  o.stdout(formatStatus(r.snapshot));
  return 0;
}
