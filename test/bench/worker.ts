// Load-generator worker thread for the throughput scenarios: hosts some publishers and/or
// subscribers, so the generator spreads over both cores. Driven by load.ts with one reply per command.
import { parentPort } from "node:worker_threads";
import { encodePublish, newBitmap, PAYLOAD_BYTES, type Proto } from "./codec.js";
import { type Client, closeClient, openClient, startWindowed, subscribe } from "./wire.js";

export interface ClientSpec {
  id: string;
  role: "sub" | "pub";
  topic: string; // filter for subscribers, topic for publishers
  qos: 0 | 1;
  pubId: number; // publishers: written into every payload; subscribers: unused
  persistent?: boolean; // a session that outlives the connection (the durable scenario's subscriber)
}

export type Cmd =
  | { cmd: "setup"; port: number; proto: Proto; clients: ClientSpec[]; highWater: number; window: number; pubs: number }
  | { cmd: "start"; warmupMs: number; durationMs: number }
  | { cmd: "report"; bits: boolean }
  | { cmd: "close" };

export interface SubReport {
  received: number;
  windowCount: number;
  windowMs: number;
  dupes: number;
  bits: Uint8Array[] | null; // per publisher id: delivered seqs (QoS 1)
}
export interface PubReport {
  pubId: number;
  sent: number;
  acked: number;
  nacked: number;
  inflight: number;
  window: number;
  bits: Uint8Array | null; // acknowledged seqs (QoS 1)
}
export type Reply =
  | { ev: "ok" }
  | { ev: "report"; subs: SubReport[]; pubs: PubReport[] }
  | { ev: "error"; message: string };

interface Flood {
  running: boolean;
  sent: number;
}

const BATCH = 64; // QoS 0 PUBLISHes per write: one pre-built Buffer written again and again

interface Host {
  spec: ClientSpec;
  c: Client;
  flood: Flood | null;
  startCount: number;
  windowCount: number;
  windowMs: number;
}

function post(r: Reply): void {
  parentPort!.postMessage(r);
}

function startFlood(h: Host, highWater: number): void {
  const one = encodePublish(h.spec.topic, Buffer.alloc(PAYLOAD_BYTES, 0x61), 0, false, 0, h.c.proto);
  const batch = Buffer.concat(Array.from({ length: BATCH }, () => one));
  const f: Flood = { running: true, sent: 0 };
  h.flood = f;
  const sock = h.c.sock;
  // Keep the pipe full but bounded: stop writing above `highWater` queued bytes, resume on 'drain'.
  const pump = () => {
    while (f.running && !sock.destroyed && sock.writableLength < highWater) {
      sock.write(batch);
      f.sent += BATCH;
    }
    if (f.running && !sock.destroyed) sock.once("drain", pump);
  };
  pump();
}

async function main(): Promise<void> {
  const port = parentPort;
  if (port === null) throw new Error("worker.ts must run as a worker thread");
  let hosts: Host[] = [];
  let highWater = 1 << 20;
  let window = 100;
  port.on("message", async (m: Cmd) => {
    try {
      if (m.cmd === "setup") {
        highWater = m.highWater;
        window = m.window;
        hosts = await Promise.all(
          m.clients.map(async (spec) => {
            const c = await openClient(m.port, spec.id, m.proto, 10_000, spec.persistent === true);
            if (spec.role === "sub") {
              if (spec.qos === 1) c.track = Array.from({ length: m.pubs }, () => newBitmap());
              await subscribe(c, spec.topic, spec.qos, 10_000);
            }
            return { spec, c, flood: null, startCount: 0, windowCount: 0, windowMs: 0 };
          }),
        );
        post({ ev: "ok" });
      } else if (m.cmd === "start") {
        // Publishers run warmup + window; subscribers count only what arrives inside the window.
        for (const h of hosts) {
          if (h.spec.role === "sub") continue;
          if (h.spec.qos === 0) startFlood(h, highWater);
          else startWindowed(h.c, h.spec.topic, h.spec.pubId, Math.max(1, Math.min(window, h.c.connack!.receiveMax)));
        }
        await new Promise((resolve) => setTimeout(resolve, m.warmupMs));
        const t0 = process.hrtime.bigint();
        for (const h of hosts) if (h.spec.role === "sub") h.startCount = h.c.received;
        setTimeout(() => {
          const ms = Number(process.hrtime.bigint() - t0) / 1e6;
          for (const h of hosts) {
            if (h.flood !== null) h.flood.running = false;
            if (h.c.win !== null) h.c.win.running = false;
            if (h.spec.role === "sub") {
              h.windowCount = h.c.received - h.startCount;
              h.windowMs = ms;
            }
          }
          post({ ev: "ok" });
        }, m.durationMs);
      } else if (m.cmd === "report") {
        const subs: SubReport[] = [];
        const pubs: PubReport[] = [];
        for (const h of hosts) {
          const c = h.c;
          if (c.error !== null) throw new Error(`${h.spec.id}: ${c.error}`);
          if (c.closed) throw new Error(`${h.spec.id}: connection closed by the broker during the run`);
          if (h.spec.role === "sub") {
            subs.push({
              received: c.received,
              windowCount: h.windowCount,
              windowMs: h.windowMs,
              dupes: c.dupes,
              bits: m.bits && c.track !== null ? c.track.map((b) => b.bits) : null,
            });
          } else {
            const w = c.win;
            pubs.push({
              pubId: h.spec.pubId,
              sent: w !== null ? w.nextSeq : (h.flood?.sent ?? 0),
              acked: w?.acked ?? 0,
              nacked: w?.nacked ?? 0,
              inflight: w?.inflight ?? 0,
              window: w?.window ?? 0,
              bits: m.bits && w !== null ? w.ackedBits.bits : null,
            });
          }
        }
        post({ ev: "report", subs, pubs });
      } else if (m.cmd === "close") {
        for (const h of hosts) closeClient(h.c);
        post({ ev: "ok" });
        setTimeout(() => port.close(), 50);
      }
    } catch (e) {
      post({ ev: "error", message: (e as Error).message });
    }
  });
}

void main();
