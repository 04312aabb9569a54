// The fault-injecting TCP proxy the bridge tests stand on (test/support/tcp-proxy.ts): whatever the
// mode, bytes arrive in the order they were sent — the bridge's ordering tests mean nothing otherwise.
import net from "node:net";
import t, { type Test } from "tap";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";
import { until } from "./fixtures/harness.js";

interface Link {
  proxy: TcpProxy;
  client: net.Socket;
  /** Bytes the server received so far. */
  received(): string;
  /** Bytes the client received so far. */
  echoed(): string;
}

async function link(t: Test): Promise<Link> {
  const got: Buffer[] = [];
  const back: Buffer[] = [];
  const server = net.createServer((s) => {
    // Teardown closes the proxy while echoes may still be on their way: a reset is expected then.
    s.on("error", () => {});
    s.on("data", (c) => {
      got.push(c);
      s.write(c);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const proxy = await startTcpProxy({ host: "127.0.0.1", port: (server.address() as net.AddressInfo).port });
  t.teardown(proxy.close);
  const client = net.connect(proxy.port, "127.0.0.1");
  client.setNoDelay(true);
  client.on("data", (c) => back.push(c));
  client.on("error", () => {});
  t.teardown(() => client.destroy());
  await new Promise((r) => client.once("connect", r));
  await proxy.waitForAccepted(1);
  return { proxy, client, received: () => Buffer.concat(got).toString(), echoed: () => Buffer.concat(back).toString() };
}

const numbers = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${String(from + i).padStart(5, "0")},`);

/** Writes small chunks in many event-loop turns, with the loop sometimes busy for a moment. */
async function writeMany(s: net.Socket, chunks: string[]) {
  for (let i = 0; i < chunks.length; i++) {
    s.write(chunks[i]!);
    if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    if (i % 7 === 0) {
      // A busy event loop: libuv's cached time falls behind Date.now() (what reordered the old proxy).
      const end = Date.now() + 1;
      while (Date.now() < end) {}
    }
  }
}

t.test("throttle keeps byte order for many small chunks (both directions)", async (t) => {
  const l = await link(t);
  l.proxy.throttle(20_000);
  const chunks = numbers(0, 1500);
  await writeMany(l.client, chunks);
  const want = chunks.join("");
  await until("everything through", () => l.received().length >= want.length && l.echoed().length >= want.length, 20_000);
  t.equal(l.received(), want, "client -> server in order");
  t.equal(l.echoed(), want, "server -> client in order");
});

t.test("switching from delay to throttle never lets a later chunk overtake a delayed one", async (t) => {
  const l = await link(t);
  l.proxy.delay(30);
  const first = numbers(0, 200);
  await writeMany(l.client, first);
  l.proxy.throttle(50_000);
  const second = numbers(200, 400);
  await writeMany(l.client, second);
  const want = [...first, ...second].join("");
  await until("everything through", () => l.received().length >= want.length, 20_000);
  t.equal(l.received(), want);
});

t.test("blackhole holds both ways; restore delivers what was held, in order", async (t) => {
  const l = await link(t);
  l.client.write("a,");
  await until("a", () => l.echoed() === "a,");
  l.proxy.blackhole();
  l.client.write("b,");
  l.client.write("c,");
  await new Promise((r) => setImmediate(r));
  t.equal(l.received(), "a,", "nothing delivered while blackholed");
  l.proxy.restore();
  l.client.write("d,");
  await until("b, c, d", () => l.echoed() === "a,b,c,d,");
  t.equal(l.received(), "a,b,c,d,");
});

t.test("intercept rewrites or drops one direction only", async (t) => {
  const l = await link(t);
  l.proxy.intercept("up", (c) => Buffer.from(c.toString().replace(/x/g, "")));
  l.client.write("x1,");
  l.client.write("2,");
  await until("through", () => l.echoed() === "1,2,");
  t.equal(l.received(), "1,2,", "the hook saw the upward bytes");
  l.proxy.intercept("up", undefined);
  l.proxy.intercept("down", () => Buffer.alloc(0));
  l.client.write("x3,");
  await until("the server got it", () => l.received() === "1,2,x3,");
  l.proxy.intercept("down", undefined);
  l.client.write("4,");
  await until("4 back", () => l.echoed().endsWith("4,"));
  t.equal(l.echoed(), "1,2,4,", "what the down hook dropped never arrived");
});

t.test("cut closes open links and refuses new ones until restored", async (t) => {
  const l = await link(t);
  const closed = new Promise((r) => l.client.once("close", r));
  l.proxy.cut();
  await closed;
  t.equal(l.proxy.open(), 0);
  const refused = net.connect(l.proxy.port, "127.0.0.1");
  await new Promise((r) => refused.once("close", r));
  t.equal(l.proxy.accepted, 2, "accepted, then closed at once");
});

t.test("delay with jitter keeps byte order (a chunk never overtakes an earlier one)", async (t) => {
  const l = await link(t);
  let seed = 7;
  // A small LCG: the same jitter sequence every run.
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  l.proxy.delay(20, 15, random);
  const chunks = numbers(0, 300);
  await writeMany(l.client, chunks);
  const want = chunks.join("");
  await until("everything through", () => l.received().length >= want.length, 20_000);
  t.equal(l.received(), want);
});

t.test("limitData closes the link mid-way: the server gets exactly that many bytes", async (t) => {
  const l = await link(t);
  l.client.write("0123456789");
  await until("a round trip", () => l.echoed() === "0123456789");
  const closed = new Promise((r) => l.client.once("close", r));
  l.proxy.limitData(5);
  l.client.write("abc");
  l.client.write("defgh");
  await closed;
  await until("the partial write", () => l.received().length >= 15);
  t.equal(l.received(), "0123456789abcde");
  t.equal(l.proxy.open(), 0);
});
