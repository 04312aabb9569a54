// Turns benchmark runs into the Markdown tables: medians per metric, hub/mosquitto ratios, the
// targets from the issue ("Embedded MQTT broker", item 8) with met/not met, and CPU per scenario.
import os from "node:os";
import type { Metrics } from "./scenarios.js";
import { FSYNC_LABEL } from "./targets.js";

/** Runs of one scenario against one broker. */
export interface Cell {
  runs: Metrics[];
  errors: string[];
}

interface Agg {
  med: (k: string) => number;
  max: (k: string) => number;
}

export function median(xs: number[]): number {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}

function agg(c: Cell | undefined): Agg | null {
  if (c === undefined || c.runs.length === 0) return null;
  return {
    med: (k) => median(c.runs.map((m) => m[k] ?? Number.NaN)),
    max: (k) => Math.max(...c.runs.map((m) => m[k] ?? Number.NaN)),
  };
}

const int = (x: number) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
const fix = (x: number, d: number) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

/** Flags a loss count that includes messages still arriving when the ≤ 2 s drain ran out. */
const cutNote = (a: Agg) => (a.max("drainCut") > 0 ? "; still delivering when the drain ended" : "");

interface Row {
  scenario: string;
  metric: string;
  cell: (a: Agg) => string;
  /** Value compared between the two brokers (null: no ratio for this row). */
  ratioKey: string | null;
  target: (hub: Agg | null, ref: Agg | null) => string;
  met: (hub: Agg, ref: Agg | null, ratio: number) => boolean | null;
}

const ratioMin = (min: number) => (_h: Agg, ref: Agg | null, ratio: number) => (ref === null ? null : ratio >= min);
const ratioMax = (max: number) => (_h: Agg, ref: Agg | null, ratio: number) => (ref === null ? null : ratio <= max);

const ROWS: Row[] = [
  {
    scenario: "fanin0",
    metric: "fan-in QoS 0, 4 pub → 1 sub (msg/s)",
    cell: (a) => `${int(a.med("rate"))} (dropped ${int(a.max("lost"))}${cutNote(a)})`,
    ratioKey: "rate",
    target: () => "≥ 0.8×",
    met: ratioMin(0.8),
  },
  {
    scenario: "fanin1",
    metric: "fan-in QoS 1, 4 pub → 1 sub (msg/s)",
    cell: (a) => `${int(a.med("rate"))} (lost ${int(a.max("lost"))}${cutNote(a)}, window ${int(a.med("window"))})`,
    ratioKey: "rate",
    target: () => "≥ 1.0×, 0 lost",
    met: (h, ref, ratio) => (h.max("lost") !== 0 ? false : ref === null ? null : ratio >= 1.0),
  },
  {
    scenario: "fanout",
    metric: "fan-out QoS 0, 1 pub → 50 subs (deliveries/s)",
    cell: (a) => `${int(a.med("rate"))} (dropped ${int(a.max("lost"))}${cutNote(a)})`,
    ratioKey: "rate",
    target: () => "≥ 0.8×",
    met: ratioMin(0.8),
  },
  {
    scenario: "latency",
    metric: "latency QoS 1 @ 1k msg/s, p50 (ms)",
    cell: (a) => `${fix(a.med("p50"), 3)}`,
    ratioKey: "p50",
    target: () => "—",
    met: () => null,
  },
  {
    scenario: "latency",
    metric: "latency QoS 1 @ 1k msg/s, p99 (ms)",
    cell: (a) => `${fix(a.med("p99"), 3)} (max ${fix(a.med("max"), 1)}, lost ${int(a.max("lost"))})`,
    ratioKey: "p99",
    target: () => "≤ 2×",
    met: ratioMax(2),
  },
  {
    scenario: "idle",
    metric: "idle connections: RSS per connection (KB)",
    cell: (a) => `${fix(a.med("kbPerConn"), 2)} (${int(a.med("conns"))} conns)`,
    ratioKey: "kbPerConn",
    target: () => "≤ 5 KB",
    met: (h) => h.med("kbPerConn") <= 5,
  },
  {
    scenario: "idle",
    metric: "idle connections: handshakes/s (CONNECT+SUBSCRIBE)",
    cell: (a) => `${int(a.med("hps"))} (${fix(a.med("secs"), 2)} s, ${int(a.max("failed"))} failed)`,
    ratioKey: "hps",
    target: () => "≥ 0.5×",
    met: ratioMin(0.5),
  },
  {
    scenario: "idle",
    metric: "idle connections: broker CPU per handshake (µs)",
    cell: (a) => `${fix(a.med("cpuUsPerHs"), 0)}`,
    ratioKey: "cpuUsPerHs",
    target: () => "—",
    met: () => null,
  },
  {
    scenario: "retained",
    metric: "retained: RSS per message (bytes)",
    cell: (a) => `${int(a.med("bytesPerMsg"))}`,
    ratioKey: "bytesPerMsg",
    target: () => "≤ 1.5 KB",
    met: (h) => h.med("bytesPerMsg") <= 1536,
  },
  {
    scenario: "retained",
    metric: "retained: replay to a new `ret/#` subscriber (ms)",
    cell: (a) => `${fix(a.med("replayMs"), 1)}`,
    ratioKey: "replayMs",
    target: () => "≤ 2×",
    met: ratioMax(2),
  },
  {
    scenario: "durable1",
    metric: "durable fan-in QoS 1, 4 pub → 1 persistent sub, persistence on (msg/s)",
    cell: (a) => `${int(a.med("rate"))} (lost ${int(a.max("lost"))}${cutNote(a)}, window ${int(a.med("window"))})`,
    ratioKey: "rate",
    target: () => "0 lost",
    met: (h) => h.max("lost") === 0,
  },
  {
    scenario: "durable1",
    metric: "durable fan-in: fsyncs per 1,000 messages",
    cell: (a) => {
      const how = FSYNC_LABEL[a.med("fsyncMethod")] ?? "?";
      return Number.isFinite(a.med("fsyncPer1k")) ? `${fix(a.med("fsyncPer1k"), 2)} (${int(a.med("fsyncs"))} calls; ${how})` : `n/a (${how})`;
    },
    ratioKey: null,
    target: () => "—",
    met: () => null,
  },
  {
    scenario: "idlerss",
    metric: "idle RSS (MB)",
    cell: (a) => `${fix(a.med("mb"), 1)}`,
    ratioKey: "mb",
    target: (h, r) => `≤ bare node + 10 MB (node ${fix((h ?? r)?.med("nodeMb") ?? Number.NaN, 1)} MB)`,
    met: (h) => h.med("mb") - h.med("nodeMb") <= 10,
  },
  {
    scenario: "idlerss",
    metric: "idle RSS at rest, --rest-ms after the first reading (MB)",
    cell: (a) => (Number.isFinite(a.med("mbRest")) ? `${fix(a.med("mbRest"), 1)}` : "not measured (--rest-ms N)"),
    ratioKey: "mbRest",
    target: () => "— (for information)",
    met: () => null,
  },
];

function errorCell(c: Cell | undefined, notes: string[]): string {
  if (c === undefined) return "skipped";
  const note = c.errors[0]!.split("\n")[0]!;
  if (!notes.includes(note)) notes.push(note);
  return `error [${notes.indexOf(note) + 1}]`;
}

/** The main table. `results` maps scenario id → broker ("hub" | "ref") → runs. */
export function renderTable(results: Map<string, Map<string, Cell>>, refLabel: string, haveRef: boolean): string {
  const lines = [
    `| scenario | hub | ${refLabel} | ratio hub/${refLabel} | target | met? |`,
    "| --- | --- | --- | --- | --- | --- |",
  ];
  const notes: string[] = [];
  for (const row of ROWS) {
    const byT = results.get(row.scenario);
    if (byT === undefined) continue;
    const hc = byT.get("hub");
    const rc = byT.get("ref");
    const h = agg(hc);
    const r = agg(rc);
    const hubCell = h !== null ? row.cell(h) : errorCell(hc, notes);
    const refCell = !haveRef ? "not installed" : r !== null ? row.cell(r) : errorCell(rc, notes);
    const ratio = h !== null && r !== null && row.ratioKey !== null ? h.med(row.ratioKey) / r.med(row.ratioKey) : Number.NaN;
    const met = h === null ? null : row.met(h, r, ratio);
    const metCell = met === null ? (h === null ? "no data" : "—") : met ? "yes" : "**no**";
    lines.push(
      `| ${row.metric} | ${hubCell} | ${refCell} | ${Number.isFinite(ratio) ? fix(ratio, 2) + "×" : "—"} | ${row.target(h, r)} | ${metCell} |`,
    );
  }
  lines.push(
    "",
    "Medians of the runs; ratios are of the medians; lost/dropped counts are the worst run. lost (QoS 1) =",
    "acknowledged to the publisher but not delivered by the end of the drain; dropped (QoS 0) = sent but not",
    "delivered (a broker may shed QoS 0 under overload).",
  );
  notes.forEach((n, i) => {
    lines.push("", `[${i + 1}] ${n}`);
  });
  return lines.join("\n");
}

/** CPU per scenario (% of one core, medians) so a reader can tell whether broker or generator limited a run. */
export function renderCpu(
  results: Map<string, Map<string, Cell>>,
  titles: Map<string, string>,
  refLabel: string,
): string {
  const lines = [`| scenario | hub run: broker · generator · other | ${refLabel} run: broker · generator · other |`, "| --- | --- | --- |"];
  const pct = (a: Agg, k: string) => `${fix(a.med(k), 0)}%`;
  const cell = (a: Agg | null) => {
    if (a === null) return "—";
    const flags = [];
    if (a.med("cpu.machine") >= 185) flags.push("saturated");
    if (a.max("cpu.other") >= 30) flags.push("other load");
    const f = flags.length > 0 ? ` (${flags.join(", ")})` : "";
    return `${pct(a, "cpu.broker")} · ${pct(a, "cpu.gen")} · ${pct(a, "cpu.other")}${f}`;
  };
  for (const [id, byT] of results) {
    lines.push(`| ${titles.get(id) ?? id} | ${cell(agg(byT.get("hub")))} | ${cell(agg(byT.get("ref")))} |`);
  }
  lines.push(
    "",
    "CPU = user+system time over the measured phase divided by its wall time, median of the runs (100% = one",
    `core; the machine has ${os.cpus().length}). generator = this process with all its worker threads; other = whole`,
    "machine (/proc/stat) minus broker and generator: other processes, and kernel work charged to neither.",
    "A single-threaded broker near 100% is the bottleneck. saturated = all cores busy (broker and generator",
    "competed); other load = in some run ≥ 30% of a core went elsewhere, so treat that row's figures as noisy.",
  );
  return lines.join("\n");
}
