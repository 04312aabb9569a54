// The config schema of `broker.auth`: users (a mosquitto password file), access control (a mosquitto
// acl_file and/or the same rules in YAML) and failed-login limiting. Part of THE config schema
// (hub/config/schema.ts imports it); defaults live here and nowhere else.
// The key is `passwd_file`, not mosquitto's `password_file`: in this config `<field>_file` means "read
// the secret <field> from this file" (hub/config/load.ts), which a password file is not.
import { z } from "zod";
import { int, nonEmpty } from "../../config/schema-kit.js";
import { duration } from "../../config/duration.js";
import { checkRuleFilter } from "./acl.js";

const filterMsg = "an MQTT topic filter (+ and # wildcards allowed)";

export const aclRuleSchema = z
  .strictObject({
    user: nonEmpty("a user name")
      .optional()
      .describe("Whose rule this is. Omitted: clients without a user name (anonymous). hub:<part> (e.g. hub:rules, hub:bridge/cloud) restricts a part of the hub."),
    topic: nonEmpty(filterMsg).optional().describe("Topic filter the rule covers (like acl_file's `topic`)."),
    pattern: nonEmpty(filterMsg)
      .optional()
      .describe("Topic filter for every client where a level %u is the client's user name and %c its client id (like acl_file's `pattern`); needs no user."),
    access: z
      .enum(["read", "write", "readwrite", "deny"], { error: "read, write, readwrite or deny" })
      .default("readwrite")
      .describe("read (subscribe and receive), write (publish), readwrite, or deny (neither; wins over any grant). Default: readwrite."),
  })
  .superRefine((r, ctx) => {
    if ((r.topic === undefined) === (r.pattern === undefined)) {
      ctx.addIssue({ code: "custom", path: ["topic"], message: "exactly one of topic or pattern" });
      return;
    }
    if (r.pattern !== undefined && r.user !== undefined) {
      ctx.addIssue({ code: "custom", path: ["user"], message: "no user on a pattern rule (patterns apply to every client; use %u)" });
    }
    const filter = (r.topic ?? r.pattern)!;
    const bad = checkRuleFilter(filter, r.pattern !== undefined);
    if (bad) ctx.addIssue({ code: "custom", path: [r.topic !== undefined ? "topic" : "pattern"], message: bad });
  })
  .describe("One access rule, as in mosquitto's acl_file.");

export const authSchema = z
  .strictObject({
    passwd_file: nonEmpty("a file path")
      .optional()
      .describe(
        "mosquitto password file (user:hash lines, made by `hub passwd` or mosquitto_passwd; $6$ and $7$ hashes). With it, clients that send a user name must give its password. Relative to the working directory; re-read on SIGHUP.",
      ),
    acl_file: nonEmpty("a file path")
      .optional()
      .describe(
        "mosquitto acl_file: `user NAME`, `topic [read|write|readwrite|deny] FILTER`, `pattern [access] FILTER` with %u/%c, # comments. An empty file denies everything. Relative to the working directory; re-read on SIGHUP.",
      ),
    acl: z
      .array(aclRuleSchema, { error: "a list of access rules" })
      .optional()
      .describe("Access rules written here, added to those of acl_file. With neither acl nor acl_file, every client may publish and subscribe to everything."),
    login_failures: z
      .strictObject({
        max: int(1).default(5).describe("Failed logins from one address, or for one client id, that start a ban. Default: 5."),
        window: duration().prefault("1m").describe("Time in which the failures are counted. Default: 1m."),
        ban: duration().prefault("5m").describe("How long a banned address or client id is refused without checking its password. Default: 5m."),
      })
      .prefault({})
      .describe("Rate limiting of failed logins (password guessing)."),
  })
  .describe("Users and access control of the embedded broker. Without this section anonymous clients may do everything (on loopback listeners by default).");

/**
 * `broker.limits.flapping` (auth/flapping.ts, checklist H5). In limits, not auth: it protects every
 * broker, also one without users.
 */
export const flappingSchema = z
  .strictObject({
    enabled: z.boolean({ error: "true or false" }).default(true).describe("Ban client ids that reconnect too often. Default: true."),
    max_connects: int(1)
      .default(15)
      .describe("Accepted connections of one client id within `window`; the next one starts a ban (CONNECTs that fail authentication do not count). Default: 15 (as EMQX)."),
    window: duration().prefault("1m").describe("Time in which the connections are counted. Default: 1m."),
    ban: duration()
      .prefault("5m")
      .describe("How long a flapping client id is refused (MQTT 5 CONNACK 0x8A Banned, 3.1.1 code 5). Connected clients are not affected. Default: 5m."),
  })
  .describe("Reconnect flapping: a client id that connects and disconnects in a loop (a crash loop, or two devices sharing one client id) is refused for a while, logged once per ban.");

export type AuthConfig = z.output<typeof authSchema>;
export type AclRuleConfig = z.output<typeof aclRuleSchema>;
