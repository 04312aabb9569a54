// A bounds-checked cursor over one framed packet, for the fast-path decoders of CONNECT and
// SUBSCRIBE/UNSUBSCRIBE (parse-connect.ts, parse-subscribe.ts), including MQTT 5 property blocks
// decoded into exactly the objects mqtt-packet 9.0.2 builds (its names, its value types).
//
// The fast path only decodes packets it is sure about. Whenever the bytes are not plainly well-formed
// (a field running past the packet or past its property block, an unknown or repeated property, a
// non-minimal or 5-byte variable byte integer) the reader throws UNUSUAL and the caller hands the
// packet to mqtt-packet instead, which then produces its own result or error. That keeps every
// rejection (and every oddity mqtt-packet tolerates) exactly as it was, and this file small.
// UNUSUAL is a frozen constant, not an Error: no stack is captured on the fallback path.

/** Thrown by Reader when the fast path should give the packet to mqtt-packet. */
export const UNUSUAL: Readonly<{ unusual: true }> = Object.freeze({ unusual: true });

// Property value encodings (MQTT 5 §1.5, §2.2.2.2), as mqtt-packet's `propertiesTypes` name them.
const BOOL = 1; // "byte": mqtt-packet turns it into `value !== 0`
const INT8 = 2; // Maximum QoS only: kept as a number
const U16 = 3;
const U32 = 4;
const VBI = 5;
const STRING = 6;
const PAIR = 7; // User Property: string pair
const BINARY = 8;

/** Property identifier → [mqtt-packet's name, encoding] (MQTT 5 §2.2.2.2 table 2-4). */
const PROPERTIES: ReadonlyArray<readonly [number, string, number]> = [
  [1, "payloadFormatIndicator", BOOL],
  [2, "messageExpiryInterval", U32],
  [3, "contentType", STRING],
  [8, "responseTopic", STRING],
  [9, "correlationData", BINARY],
  [11, "subscriptionIdentifier", VBI],
  [17, "sessionExpiryInterval", U32],
  [18, "assignedClientIdentifier", STRING],
  [19, "serverKeepAlive", U16],
  [21, "authenticationMethod", STRING],
  [22, "authenticationData", BINARY],
  [23, "requestProblemInformation", BOOL],
  [24, "willDelayInterval", U32],
  [25, "requestResponseInformation", BOOL],
  [26, "responseInformation", STRING],
  [28, "serverReference", STRING],
  [31, "reasonString", STRING],
  [33, "receiveMaximum", U16],
  [34, "topicAliasMaximum", U16],
  [35, "topicAlias", U16],
  [36, "maximumQoS", INT8],
  [37, "retainAvailable", BOOL],
  [38, "userProperties", PAIR],
  [39, "maximumPacketSize", U32],
  [40, "wildcardSubscriptionAvailable", BOOL],
  [41, "subscriptionIdentifiersAvailable", BOOL],
  [42, "sharedSubscriptionAvailable", BOOL],
];
const PROP_NAME: readonly string[] = (() => {
  const a: string[] = [];
  for (const [id, name] of PROPERTIES) a[id] = name;
  return a;
})();
const PROP_TYPE = new Uint8Array(43);
for (const [id, , type] of PROPERTIES) PROP_TYPE[id] = type;

export type Properties = Record<string, unknown>;

/** Cursor over buf[pos..end). Every read checks its bounds and throws UNUSUAL when they fail. */
export class Reader {
  constructor(
    readonly buf: Buffer,
    public pos: number,
    /** Exclusive limit of reads; narrowed to a property block while it is read. */
    public end: number,
  ) {}

  u8(): number {
    if (this.pos >= this.end) throw UNUSUAL;
    return this.buf[this.pos++]!;
  }

  /** Two Byte Integer, big-endian (§1.5.2). */
  u16(): number {
    const p = this.pos;
    if (p + 2 > this.end) throw UNUSUAL;
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  /** Four Byte Integer (§1.5.3). */
  u32(): number {
    const p = this.pos;
    if (p + 4 > this.end) throw UNUSUAL;
    this.pos = p + 4;
    return this.buf.readUInt32BE(p);
  }

  /** Variable Byte Integer (§1.5.5): at most 4 bytes, minimally encoded (MQTT-1.5.5-1). */
  vbi(): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8();
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw UNUSUAL;
        return value;
      }
      mul *= 128;
    }
    throw UNUSUAL;
  }

  /**
   * UTF-8 Encoded String (§1.5.4), decoded like mqtt-packet (Buffer#toString). The string gate
   * (wire-strings.ts) has already refused ill-formed UTF-8 and U+0000 on the raw bytes.
   */
  str(): string {
    const n = this.u16();
    const s = this.pos;
    if (s + n > this.end) throw UNUSUAL;
    this.pos = s + n;
    return this.buf.toString("utf8", s, s + n);
  }

  /** Binary Data (§1.5.6): a view into the packet, as mqtt-packet returns it. */
  bin(): Buffer {
    const n = this.u16();
    const s = this.pos;
    if (s + n > this.end) throw UNUSUAL;
    this.pos = s + n;
    return this.buf.subarray(s, s + n);
  }

  /**
   * A v5 property block (§2.2.2): Property Length, then properties, which must end exactly at the
   * block's end. Returns undefined for an empty block (mqtt-packet then sets no `properties`).
   * A repeated property other than User Property is UNUSUAL (mqtt-packet makes an array of it; the
   * string gate refuses it as a protocol error before this runs anyway).
   */
  properties(): Properties | undefined {
    const len = this.vbi();
    const blockEnd = this.pos + len;
    if (blockEnd > this.end) throw UNUSUAL; // checklist A11: mqtt-packet reads past the packet here
    if (len === 0) return undefined;
    const outer = this.end;
    // Values are read against the block's end, so none can run into the fields after it. (After an
    // UNUSUAL throw the reader is dropped with the packet, so `end` needs no restoring then.)
    this.end = blockEnd;
    const props: Properties = {};
    while (this.pos < blockEnd) {
      const id = this.u8();
      const type = id < PROP_TYPE.length ? PROP_TYPE[id]! : 0;
      if (type === 0) throw UNUSUAL; // unknown identifier (or 0): mqtt-packet's error
      const name = PROP_NAME[id]!;
      if (type === PAIR) this.userProperty(props);
      else if (props[name] !== undefined) throw UNUSUAL;
      else props[name] = this.value(type);
    }
    this.end = outer;
    return props;
  }

  private value(type: number): unknown {
    switch (type) {
      case BOOL:
        return this.u8() !== 0;
      case INT8:
        return this.u8();
      case U16:
        return this.u16();
      case U32:
        return this.u32();
      case VBI:
        return this.vbi();
      case STRING:
        return this.str();
      default:
        return this.bin();
    }
  }

  /**
   * User Property (§3.1.2.11.8): a name/value pair, kept like mqtt-packet does: an object without a
   * prototype (names such as `__proto__` are ordinary keys: GHSA-52qw), a repeated name becomes an
   * array. mqtt-packet tests the existing value for truthiness, so a repeat of a name whose first
   * value was "" replaces it instead; copied as is, because the results must be identical.
   */
  private userProperty(props: Properties): void {
    let up = props.userProperties as Record<string, string | string[]> | undefined;
    if (up === undefined) {
      up = Object.create(null) as Record<string, string | string[]>;
      props.userProperties = up;
    }
    const name = this.str();
    const value = this.str();
    const cur = up[name];
    if (cur) {
      if (Array.isArray(cur)) cur.push(value);
      else up[name] = [cur, value];
    } else {
      up[name] = value;
    }
  }
}
