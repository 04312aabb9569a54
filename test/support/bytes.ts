// A tiny byte builder for hand-made MQTT packets in unit tests of the wire gate.
export type Part = number | number[] | Buffer | string;

/** MQTT Variable Byte Integer, minimal encoding (MQTT 5 §1.5.5). */
export const vbi = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};

/** Numbers are bytes, strings are hex, arrays and Buffers are copied. */
export const bytes = (...parts: Part[]): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === "number" ? Buffer.from([p]) : typeof p === "string" ? Buffer.from(p, "hex") : Buffer.from(p))));

/** MQTT string: 2-byte length + UTF-8. */
export const str = (s: string): Buffer => {
  const b = Buffer.from(s, "utf8");
  return bytes([b.length >> 8, b.length & 0xff], b);
};

/** A packet: first byte, remaining length computed, body. */
export const pkt = (b0: number, ...body: Part[]): Buffer => {
  const b = bytes(...body);
  return bytes(b0, vbi(b.length), b);
};
