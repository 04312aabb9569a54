// Checklist section B (strings / UTF-8) as table rows: every string field, every bad sequence, on
// the wire. mqtt-packet would decode bad UTF-8 to U+FFFD, so these can only be caught on raw bytes.
import { readFileSync } from "node:fs";
import { RC } from "../../../hub/broker/reason-codes.js";
import {
  connectFrame,
  frame,
  hex,
  type Level,
  prop,
  props,
  publishFrame,
  subscribeFrame,
  summary,
  unsubscribeFrame,
} from "../../support/raw-client.js";
import { certDir } from "../../support/certs.js";
import { handshake, startListeners, tlsSpec } from "../../support/listeners.js";
import { gone, type Row } from "./ctx.js";

/** B1: ill-formed UTF-8 (MQTT-1.5.3-1 / MQTT-1.5.4-1); B2: U+0000 (MQTT-1.5.3-2 / MQTT-1.5.4-2). */
const BAD = {
  B1: [
    ["surrogate ED A0 80", hex("eda080")],
    ["overlong C0 AF", hex("c0af")],
    ["truncated F0 9F 98", hex("f09f98")],
    ["above U+10FFFF F4 90 80 80", hex("f4908080")],
  ],
  B2: [["U+0000", hex("00")]],
} as const;

interface Field {
  name: string;
  versions: readonly Level[];
  /** Whether the bad bytes travel in the CONNECT (then v5 answers with CONNACK). */
  atConnect: boolean;
  /** The packet carrying `bad` (a CONNECT, or a packet sent after a valid CONNECT). */
  bytes(v: Level, bad: Buffer, id: string): Buffer;
}

const s = (bad: Buffer) => Buffer.concat([Buffer.from("b/"), bad]);

const FIELDS: Field[] = [
  { name: "client id", versions: [4, 5], atConnect: true, bytes: (v, bad) => connectFrame({ v, clientId: s(bad) }) },
  {
    name: "will topic",
    versions: [4, 5],
    atConnect: true,
    bytes: (v, bad, id) => connectFrame({ v, clientId: id, will: { topic: s(bad), payload: "w" } }),
  },
  { name: "user name", versions: [4, 5], atConnect: true, bytes: (v, bad, id) => connectFrame({ v, clientId: id, username: s(bad) }) },
  {
    name: "CONNECT user property",
    versions: [5],
    atConnect: true,
    bytes: (v, bad, id) => connectFrame({ v, clientId: id, properties: [prop.pair("k", s(bad))] }),
  },
  {
    name: "will content type",
    versions: [5],
    atConnect: true,
    bytes: (v, bad, id) => connectFrame({ v, clientId: id, will: { topic: "b/will", properties: [prop.string(3, s(bad))] } }),
  },
  { name: "PUBLISH topic", versions: [4, 5], atConnect: false, bytes: (v, bad) => publishFrame({ v, topic: s(bad), qos: 1, id: 1, payload: "p" }) },
  { name: "SUBSCRIBE filter", versions: [4, 5], atConnect: false, bytes: (v, bad) => subscribeFrame({ v, filters: [[s(bad), 0]] }) },
  { name: "UNSUBSCRIBE filter", versions: [4, 5], atConnect: false, bytes: (v, bad) => unsubscribeFrame({ v, filters: [s(bad)] }) },
  {
    name: "PUBLISH content type",
    versions: [5],
    atConnect: false,
    bytes: (v, bad) => publishFrame({ v, topic: "b/t", properties: [prop.string(3, s(bad))], payload: "p" }),
  },
  {
    name: "PUBLISH response topic",
    versions: [5],
    atConnect: false,
    bytes: (v, bad) => publishFrame({ v, topic: "b/t", properties: [prop.string(8, s(bad))], payload: "p" }),
  },
  {
    name: "PUBLISH user property name",
    versions: [5],
    atConnect: false,
    bytes: (v, bad) => publishFrame({ v, topic: "b/t", properties: [prop.pair(s(bad), "v")], payload: "p" }),
  },
  {
    name: "PUBLISH user property value",
    versions: [5],
    atConnect: false,
    bytes: (v, bad) => publishFrame({ v, topic: "b/t", properties: [prop.pair("k", s(bad))], payload: "p" }),
  },
  {
    name: "SUBSCRIBE user property",
    versions: [5],
    atConnect: false,
    bytes: (v, bad) => subscribeFrame({ v, filters: [["b/t", 0]], properties: [prop.pair("k", s(bad))] }),
  },
  {
    name: "PUBACK reason string",
    versions: [5],
    atConnect: false,
    bytes: (_v, bad) => frame(0x40, hex("00 01 00"), props(prop.string(31, s(bad)))),
  },
];

function rowsFor(id: "B1" | "B2"): Row[] {
  const rows: Row[] = [];
  for (const f of FIELDS) {
    for (const v of f.versions) {
      const title = `${id === "B1" ? "ill-formed UTF-8" : "U+0000"} in ${f.name} (v${v === 5 ? 5 : "3.1.1"}) → close${v === 5 ? " 0x81" : ""}, never forwarded`;
      rows.push({
        id,
        title,
        run: async (ctx) => {
          const w = await ctx.watch(["#"]);
          for (const [what, bad] of BAD[id]) {
            const cid = ctx.id("b");
            const c = f.atConnect ? await ctx.open(v) : await ctx.connect(v, { clientId: cid });
            c.write(f.bytes(v, bad, cid));
            await gone(ctx.t, c, { v5: RC.MALFORMED_PACKET, atConnect: f.atConnect, what });
          }
          ctx.t.same((await w.before()).map(summary), [], "nothing reached a subscriber (no message, no will)");
        },
      });
    }
  }
  return rows;
}

export const rowsB: Row[] = [
  ...rowsFor("B1"),
  ...rowsFor("B2"),
  {
    id: "B3",
    title: "BOM EF BB BF inside a topic: accepted, kept byte for byte, distinct from the topic without it",
    run: async (ctx) => {
      const { t } = ctx;
      const bom = "\uFEFFb3";
      const withBom = await ctx.watch([bom], 5);
      const without = await ctx.watch(["b3"], 4);
      const any = await ctx.watch(["+"], 4);
      const pub = await ctx.connect(4);
      pub.write(publishFrame({ topic: hex("efbbbf6233"), qos: 1, id: 1, payload: "bom" }));
      await pub.expectPacket("puback");
      pub.write(publishFrame({ topic: "b3", qos: 1, id: 2, payload: "plain" }));
      await pub.expectPacket("puback");
      const a = await withBom.before();
      t.same(a.map((p) => [Buffer.from(p.topic).toString("hex"), String(p.payload)]), [["efbbbf6233", "bom"]], "BOM filter: BOM topic only, bytes kept");
      t.same((await without.before()).map((p) => String(p.payload)), ["plain"], "plain filter: plain topic only");
      t.same((await any.before()).map((p) => Buffer.from(p.topic).toString("hex")), ["efbbbf6233", "6233"], "'+' sees both as distinct topics");
    },
  },
  {
    id: "B4",
    title: "control characters U+0001–U+001F in a topic → rejected at the hub edge and logged (policy)",
    run: async (ctx) => {
      const w = await ctx.watch(["#"]);
      for (const v of [4, 5] as const) {
        for (const cc of [0x01, 0x0a, 0x1f]) {
          const c = await ctx.connect(v);
          c.write(publishFrame({ v, topic: Buffer.from([0x62, 0x34, 0x2f, cc]), qos: 1, id: 1, payload: "p" }));
          // Whichever comes first: an acknowledgement (accepted) or the close (rejected).
          const r = await c.expectPacket("puback").then(
            () => "acknowledged",
            () => "closed",
          );
          ctx.t.equal(r, "closed", `v${v} PUBLISH with U+00${cc.toString(16).padStart(2, "0")}`);
        }
        const sub = await ctx.connect(v);
        sub.write(subscribeFrame({ v, filters: [[Buffer.from([0x62, 0x34, 0x2f, 0x07]), 0]] }));
        const r = await sub.expectPacket("suback").then(
          (a) => `SUBACK ${a.granted}`,
          () => "closed",
        );
        ctx.t.ok(r === "closed" || r === `SUBACK ${RC.TOPIC_FILTER_INVALID}`, `v${v} SUBSCRIBE with U+0007: ${r}`);
      }
      ctx.t.same((await w.before()).map(summary), [], "nothing reached a subscriber");
      ctx.t.ok(ctx.b.lines.some((l) => /control/i.test(l)), "logged");
    },
  },
  {
    id: "B5",
    title: "user name or client id from a TLS certificate with invalid UTF-8 → reject",
    // An mqtts listener of its own (identity_as_username), with certificates made by openssl.
    async run(ctx) {
      const d = certDir();
      ctx.t.teardown(() => d.remove());
      const ca = d.ca("ca");
      const server = d.issue(ca, "server", "localhost", "server");
      const caPem = readFileSync(ca.cert);
      const b = await startListeners([
        { host: "127.0.0.1", port: 0, protocol: "mqtts", tls: tlsSpec({ cert: server.cert, key: server.key, ca: ca.cert }, { require_client_cert: true, identity_as_username: true }) },
      ]);
      ctx.t.teardown(() => b.stop());
      const client = (c: { cert: string; key: string }) =>
        handshake(b.port(), { ca: caPem, cert: readFileSync(c.cert), key: readFileSync(c.key), waitForServer: true });
      // Ill-formed UTF-8 in the CN (UTF8String C0 AF; BMPString lone surrogate D800): OpenSSL 3 will
      // not decode such a certificate at all, so it can never complete a handshake with the hub.
      for (const [name, bytes, tag] of [
        ["overlong C0 AF", hex("41c0af42"), 0x0c],
        ["lone surrogate D800 (BMPString)", hex("d8000041"), 0x1e],
      ] as const) {
        const bad = d.issueRawCn(ca, `bad${tag}`, bytes, tag);
        await ctx.t.rejects(client(bad), { code: /^ERR_OSSL_ASN1_/ }, `${name}: the certificate cannot be used`);
      }
      // U+0000 is well-formed UTF-8 but not allowed in an MQTT string (MQTT-1.5.4-2): the hub refuses it.
      const nul = d.issueRawCn(ca, "nul", Buffer.from("ev\u0000il"));
      ctx.t.match(await client(nul), { ok: false }, "CN with U+0000: refused");
      ctx.t.equal(b.broker.core.sessions.size, 0, "no session was created");
      const good = await client(d.issue(ca, "alice", "alice", "client"));
      ctx.t.equal(good.ok, true, "a well-formed CN gets in");
      if (good.ok) good.socket.destroy();
    },
  },
];
