// Row <-> object conversions for the broker's SQLite file: message properties as JSON (binary
// correlation data as base64), wills as JSON, and message expiry kept as wall-clock ms in the file
// (monotonic time restarts with the process) and as monotonic ms in memory.
import type { Clock, PublishProperties, QoS } from "../../contracts.js";
import type { Identity } from "../auth/types.js";
import type { RoutedMessage } from "../publish-encode.js";
import type { Will } from "../session.js";

export function encodeProps(p: PublishProperties | undefined): string | null {
  if (p === undefined) return null;
  const o: Record<string, unknown> = { ...p };
  if (p.correlationData !== undefined) o.correlationData = Buffer.from(p.correlationData).toString("base64");
  return JSON.stringify(o);
}

export function decodeProps(s: string | null): PublishProperties | undefined {
  if (s === null) return undefined;
  const o = JSON.parse(s) as Record<string, unknown>;
  if (typeof o !== "object" || o === null) throw new Error("bad properties row");
  if (typeof o.correlationData === "string") o.correlationData = Buffer.from(o.correlationData, "base64");
  return o as PublishProperties;
}

/** Monotonic expiry -> wall-clock ms for the file (null: never expires). */
export function wallExpiry(expiresAt: number | undefined, clock: Clock): number | null {
  return expiresAt === undefined ? null : Math.round(expiresAt - clock.monotonic() + clock.now());
}

/** Wall-clock ms from the file -> monotonic expiry in this process. */
export function monoExpiry(wall: number | null, clock: Clock): number | undefined {
  return wall === null ? undefined : wall - clock.now() + clock.monotonic();
}

export function qosOf(n: unknown): QoS {
  if (n !== 0 && n !== 1 && n !== 2) throw new Error(`bad QoS ${String(n)} in a row`);
  return n;
}

interface WillJson {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  props: string | null;
  delayMs: number;
  expirySeconds?: number;
}

export function encodeWill(w: Will | undefined): string | null {
  if (w === undefined) return null;
  const j: WillJson = {
    topic: w.msg.topic,
    payload: w.msg.payload.toString("base64"),
    qos: w.msg.qos,
    retain: w.msg.retain,
    props: encodeProps(w.msg.properties),
    delayMs: w.delayMs,
  };
  if (w.expirySeconds !== undefined) j.expirySeconds = w.expirySeconds;
  return JSON.stringify(j);
}

export function decodeWill(s: string | null): Will | undefined {
  if (s === null) return undefined;
  const j = JSON.parse(s) as WillJson;
  if (typeof j.topic !== "string" || typeof j.payload !== "string" || typeof j.delayMs !== "number") throw new Error("bad will row");
  const msg: RoutedMessage = { topic: j.topic, payload: Buffer.from(j.payload, "base64"), qos: qosOf(j.qos), retain: !!j.retain };
  const props = decodeProps(j.props);
  if (props) msg.properties = props;
  const w: Will = { msg, delayMs: j.delayMs };
  if (typeof j.expirySeconds === "number") w.expirySeconds = j.expirySeconds;
  return w;
}

/** Who published a retained message (ACL check G3): JSON, null when not known (access control off). */
export function encodePublisher(p: Identity | undefined): string | null {
  if (p === undefined) return null;
  const o: { clientId: string; username?: string; internal?: boolean } = { clientId: p.clientId };
  if (p.username !== undefined) o.username = p.username;
  if (p.internal) o.internal = true;
  return JSON.stringify(o);
}

export function decodePublisher(s: string | null): Identity | undefined {
  if (s === null) return undefined;
  const o = JSON.parse(s) as { clientId?: unknown; username?: unknown; internal?: unknown };
  if (typeof o !== "object" || o === null || typeof o.clientId !== "string") throw new Error("bad publisher in a retained row");
  const id: { clientId: string; username?: string; internal?: boolean } = { clientId: o.clientId };
  if (typeof o.username === "string") id.username = o.username;
  if (o.internal === true) id.internal = true;
  return id;
}
