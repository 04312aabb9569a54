// Helpers for differential tests of the fast-path packet decoders against mqtt-packet 9.0.2 (the
// reference): decode one framed packet with a fresh mqtt-packet parser, compare two decoded packets
// exactly (keys and their order, value types, Buffers by content, null-prototype objects), and
// re-frame a mutated packet body so its fixed header stays consistent.
import fc from "fast-check";
import mqtt from "mqtt-packet";
import { pkt } from "./bytes.js";

export type Reference = { packet: mqtt.Packet } | { error: string };

/** mqtt-packet's verdict on one whole packet, decoded as parse.ts configures it (`protocolVersion`). */
export function referenceParse(buf: Buffer, protocolVersion: 3 | 4 | 5, bridgeMode = false): Reference {
  const p = mqtt.parser({ protocolVersion, bridgeMode });
  let packet: mqtt.Packet | undefined;
  let error: string | undefined;
  p.on("packet", (x) => {
    packet ??= x;
  });
  p.on("error", (e) => {
    error ??= e.message;
  });
  try {
    p.parse(buf);
  } catch (e) {
    return { error: `threw: ${e instanceof Error ? e.message : String(e)}` };
  }
  if (error !== undefined) return { error };
  if (packet === undefined) return { error: "incomplete" };
  return { packet };
}

/**
 * A canonical form in which key order, keys holding `undefined`, prototypes (null or not) and Buffer
 * contents all count, so two packets are identical exactly when their canonical JSON is.
 */
export function canonical(x: unknown): unknown {
  if (Buffer.isBuffer(x)) return { $buffer: x.toString("hex") };
  if (Array.isArray(x)) return x.map(canonical);
  if (x !== null && typeof x === "object") {
    const o: Record<string, unknown> = { $keys: Object.keys(x).join(","), $nullProto: Object.getPrototypeOf(x) === null };
    for (const k of Object.keys(x)) o[`.${k}`] = canonical((x as Record<string, unknown>)[k]);
    return o;
  }
  if (x === undefined) return { $undefined: true };
  return x;
}

export function samePacket(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

/** Length of the fixed header of a well-framed packet. */
export function headerLength(buf: Buffer): number {
  let i = 1;
  while (buf[i]! & 0x80) i++;
  return i + 1;
}

/**
 * Applies byte mutations to the body (after the fixed header) and optionally truncates the body,
 * then frames it again with its own first byte: the result always has a consistent remaining
 * length, so the decoder under test (not the framer) sees the damage.
 */
export function mutateBody(buf: Buffer, mutations: ReadonlyArray<readonly [number, number]>, truncate: number | undefined): Buffer {
  const h = headerLength(buf);
  let body = Buffer.from(buf.subarray(h));
  for (const [pos, byte] of mutations) if (body.length > 0) body[pos % body.length] = byte;
  if (truncate !== undefined) body = body.subarray(0, truncate % (body.length + 1));
  return pkt(buf[0]!, body);
}

/** mutateBody's inputs for property tests: few mutations and rare truncation, so that a fair share of the damaged packets still decodes. */
export const mutationsArb = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 });
export const truncateArb = fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.nat() });
