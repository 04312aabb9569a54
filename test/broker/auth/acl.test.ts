// ACLs in mosquitto's acl_file syntax: parsing (with line numbers for mistakes), who gets which
// rules (anonymous before the first `user`, patterns for everyone, `hub:<part>` for the hub's own
// parts), deny first, %u/%c only as whole levels and never widened by + # / in a name (G9), an
// empty ACL denies all (G1), and filter-covers-filter for SUBSCRIBE checked as a property against
// the topic matcher.
import fc from "fast-check";
import t from "tap";
import { type AclRule, covers, createAcl, parseAclFile } from "../../../hub/broker/auth/acl.js";
import { internalIdentity } from "../../../hub/broker/auth/types.js";
import { matches } from "../../../hub/broker/topics.js";

function acl(text: string) {
  const r = parseAclFile(text);
  if (!r.ok) throw new Error(JSON.stringify(r.problems));
  return createAcl(r.rules);
}
const anon = { clientId: "c1" };
const alice = { clientId: "phone", username: "alice" };
const bob = { clientId: "laptop", username: "bob" };

t.test("parsing: rules, defaults, comments, spaces in filters", async (t) => {
  const r = parseAclFile(
    [
      "# anonymous",
      "topic read public/#",
      "",
      "user alice",
      "topic home/#",
      "  topic deny home/secret/#",
      "topic write with space/in topic",
      "pattern readwrite clients/%c/#",
      "user bob smith",
      "topic read x",
    ].join("\r\n"),
  );
  t.ok(r.ok);
  if (!r.ok) return;
  t.same(r.rules, [
    { user: undefined, pattern: false, access: "read", filter: "public/#" },
    { user: "alice", pattern: false, access: "readwrite", filter: "home/#" },
    { user: "alice", pattern: false, access: "deny", filter: "home/secret/#" },
    { user: "alice", pattern: false, access: "write", filter: "with space/in topic" },
    { pattern: true, access: "readwrite", filter: "clients/%c/#" },
    { user: "bob smith", pattern: false, access: "read", filter: "x" },
  ] satisfies AclRule[]);
});

t.test("parsing: every mistake with its line, column and what was expected", async (t) => {
  const r = parseAclFile(
    ["topic read a/#/b", "user", "  topc read x", "topic read", "pattern read dev-%c/x", "topic read ok/#", "topic deny hub/alarm/code   # deny wins"].join("\n"),
  );
  t.notOk(r.ok);
  if (r.ok) return;
  t.same(
    r.problems.map((p) => `${p.line}:${p.col}`),
    ["1:12", "2:1", "3:3", "4:1", "5:14", "7:12"],
  );
  t.match(r.problems[0]!.message, /^expected a topic filter \(.*\), found "a\/#\/b"$/);
  t.match(r.problems[1]!.message, /^expected a user name after user, found nothing$/);
  t.match(r.problems[2]!.message, /^expected topic, pattern or user, found "topc"$/);
  t.match(r.problems[3]!.message, /^expected a topic filter after topic read, found nothing$/);
  t.match(r.problems[4]!.message, /^expected %u and %c filling a whole topic level .*, not "dev-%c"/);
  t.match(r.problems[5]!.message, /a # comment must be on a line of its own/, "a trailing comment is explained");
});

t.test("an empty or comment-only ACL denies everything (G1)", async (t) => {
  for (const text of ["", "# nothing here\n\n"]) {
    const a = acl(text);
    for (const id of [anon, alice]) {
      t.notOk(a.canPublish(id, "a"), "publish denied");
      t.notOk(a.canSubscribe(id, "#"), "subscribe denied");
      t.notOk(a.canReceive(id, "a"), "receive denied");
    }
  }
});

t.test("who gets which rules; deny wins; read vs write", async (t) => {
  const a = acl(
    [
      "topic read public/#",
      "user alice",
      "topic readwrite home/#",
      "topic deny home/secret/#",
      "topic write cmd/+",
      "user bob",
      "topic read home/bob/#",
      "pattern write clients/%c/#",
      "pattern read users/%u/#",
    ].join("\n"),
  );
  t.ok(a.canReceive(anon, "public/x"), "anonymous: rules before the first user");
  t.notOk(a.canPublish(anon, "public/x"), "anonymous: read only");
  t.notOk(a.canReceive(alice, "public/x"), "alice does not get the anonymous rules");
  t.ok(a.canPublish(alice, "home/kitchen/light"));
  t.notOk(a.canPublish(alice, "home/secret/x"), "deny wins over readwrite");
  t.notOk(a.canReceive(alice, "home/secret"), "deny home/secret/# also covers home/secret");
  t.ok(a.canPublish(alice, "cmd/x"));
  t.notOk(a.canReceive(alice, "cmd/x"), "write is not read");
  t.ok(a.canReceive(bob, "home/bob/t"));
  t.notOk(a.canReceive(bob, "home/alice/t"));
  t.ok(a.canPublish(alice, "clients/phone/x"), "pattern %c for alice's client id");
  t.notOk(a.canPublish(alice, "clients/laptop/x"), "not another client's");
  t.ok(a.canReceive(anon, "clients/c1/x") === false, "write pattern gives no read");
  t.ok(a.canPublish(anon, "clients/c1/x"), "patterns apply to anonymous clients too");
  t.ok(a.canReceive(bob, "users/bob/x"), "%u");
  t.notOk(a.canReceive(anon, "users/undefined/x"), "%u never matches without a user name");
  t.notOk(a.canReceive(anon, "users//x"), "nor an empty level");
});

t.test("%u / %c with + # / never widen a pattern (G9, CVE-2017-7650)", async (t) => {
  const a = acl("pattern readwrite home/%c/#\npattern readwrite u/%u\n");
  for (const clientId of ["+", "#", "a/b", "", "a+"]) {
    const id = { clientId, username: "x/#" };
    t.notOk(a.canPublish(id, "home/other/t"), `client id ${JSON.stringify(clientId)}: no other client's topics`);
    t.notOk(a.canSubscribe(id, "home/#"), `client id ${JSON.stringify(clientId)}: cannot subscribe home/#`);
    t.notOk(a.canPublish(id, "u/x/y"), "user name x/# does not widen u/%u");
  }
  t.ok(a.canPublish({ clientId: "dev1" }, "home/dev1/t"), "a plain client id works");
});

t.test("subscribe: a read grant must cover the whole filter; a covering deny refuses", async (t) => {
  const a = acl(["user alice", "topic read home/#", "topic deny home/secret/#", "topic read $SYS/broker/#", "topic read dev/+/state"].join("\n"));
  t.ok(a.canSubscribe(alice, "home/#"), "partial deny: allowed, enforced per message");
  t.ok(a.canSubscribe(alice, "home/+/temp"));
  t.notOk(a.canSubscribe(alice, "home/secret/#"));
  t.notOk(a.canSubscribe(alice, "home/secret/+"));
  t.notOk(a.canSubscribe(alice, "#"), "E8: # as a low-privilege user");
  t.notOk(a.canSubscribe(alice, "+/temp"));
  t.ok(a.canSubscribe(alice, "$SYS/broker/clients/#"));
  t.ok(a.canSubscribe(alice, "dev/x/state"));
  t.ok(a.canSubscribe(alice, "dev/+/state"));
  t.notOk(a.canSubscribe(alice, "dev/#"));
  t.notOk(a.canReceive(alice, "home/secret/x"), "the deny filters deliveries of home/#");
});

t.test("the hub's parts: unrestricted unless a hub:<part> section exists; only that section applies", async (t) => {
  const a = acl(["topic read public/#", "pattern readwrite clients/%c/#", "user hub:rules", "topic readwrite hub/rules/#", "topic read hub/+/temperature"].join("\n"));
  const devices = internalIdentity("devices");
  t.ok(a.canPublish(devices, "anything/at/all"));
  t.ok(a.canSubscribe(devices, "#"));
  const rules = internalIdentity("rules");
  t.equal(rules.username, "hub:rules");
  t.ok(a.canPublish(rules, "hub/rules/x/last_run"));
  t.notOk(a.canPublish(rules, "hub/relay/set"));
  t.ok(a.canReceive(rules, "hub/living_room/temperature"));
  t.notOk(a.canPublish(rules, "clients/rules/x"), "patterns are not for parts with a section");
  t.notOk(a.canReceive(rules, "public/x"), "nor the anonymous rules");
});

t.test("topic rules take % literally; a leading wildcard does not cover $ topics", async (t) => {
  const a = acl("topic readwrite %c/x\ntopic read #\n");
  t.ok(a.canPublish(anon, "%c/x"));
  t.notOk(a.canPublish(anon, "c1/x"));
  t.notOk(a.canReceive(anon, "$SYS/broker/uptime"));
  t.notOk(a.canSubscribe(anon, "$SYS/#"));
  t.ok(a.canSubscribe(anon, "#"));
});

// Filter-covers-filter, as properties against the topic matcher on a small alphabet.
const level = fc.constantFrom("a", "b", "$s", "");
const topicArb = fc.array(level, { minLength: 1, maxLength: 4 }).map((l) => l.join("/"));
const filterArb = fc
  .tuple(fc.array(fc.constantFrom("a", "b", "$s", "", "+"), { minLength: 1, maxLength: 4 }), fc.boolean())
  .map(([l, hash]) => (hash ? [...l, "#"] : l).join("/"))
  .filter((f) => f !== "");
const exampleTopics = (f: string): string[] => {
  // Topics the filter matches: + replaced by each level, # by nothing / one / two levels.
  let out = [""];
  const levels = f.split("/");
  levels.forEach((l, i) => {
    const next: string[] = [];
    for (const p of out) {
      const pre = i === 0 ? "" : `${p}/`;
      if (l === "+") for (const x of ["a", "b", "", "$s", "z"]) next.push(pre + x);
      else if (l === "#") {
        if (i > 0) next.push(p);
        for (const x of ["a", "z", "a/b"]) next.push(pre + x);
      } else next.push(pre + l);
    }
    out = next;
  });
  return out.filter((t) => matches(f, t));
};

t.test("covers(r, s) is sound: every topic s matches, r matches", async (t) => {
  fc.assert(
    fc.property(filterArb, filterArb, topicArb, (r, s, topic) => {
      if (covers(r, s) && matches(s, topic)) return matches(r, topic);
      return true;
    }),
    { numRuns: 20_000 },
  );
  t.pass("20,000 cases");
});

t.test("covers(r, s) is complete on examples: when false, some topic of s escapes r", async (t) => {
  fc.assert(
    fc.property(filterArb, filterArb, (r, s) => {
      if (covers(r, s)) return true;
      const ts = exampleTopics(s);
      return ts.length === 0 || ts.some((topic) => !matches(r, topic));
    }),
    { numRuns: 20_000 },
  );
  t.same(
    [covers("#", "a/#"), covers("a/#", "a"), covers("a/+", "a"), covers("+/+", "a/#"), covers("+", "$s"), covers("$s/#", "$s")],
    [true, true, false, false, false, true],
  );
});
