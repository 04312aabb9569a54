// A TCP proxy on a loopback port for fault tests of links (the bridge's uplink): put it between a
// client and a server, then cut, blackhole, delay or throttle the link, and restore it.
// - cut(): closes every open connection and refuses new ones (accepted, then closed at once).
// - blackhole(): connections stay open but nothing is delivered either way, as when a router drops
//   packets; what was sent meanwhile is held, and delivered late on restore() (TCP retransmits).
// - delay(ms, jitter) / throttle(bytesPerSecond): every chunk arrives late / at that rate, in order.
// - limitData(bytes): each open connection is closed after that many more bytes upward, mid-packet.
// - intercept(direction, fn): rewrites (or drops) what passes one way, e.g. to lose chosen packets.
// Byte order is kept by construction: each direction is ONE FIFO drained by ONE timer. (An earlier
// version gave every chunk its own setTimeout; timers of different durations are started from
// libuv's millisecond clock while the due times came from Date.now(), so under throttle() a small
// chunk due < 1 ms after a bigger one could fire first — the bridge test then saw message 114
// arrive upstream before 108..113.)
import net from "node:net";

type Mode =
  | { kind: "pass" }
  | { kind: "cut" }
  | { kind: "blackhole" }
  | { kind: "delay"; ms: number; jitter: number; random: () => number }
  | { kind: "throttle"; rate: number };

export type LinkDirection = "up" | "down";

interface Direction {
  pair: Pair;
  to: net.Socket;
  /** Blackhole: held until restore(). */
  held: Buffer[];
  /** Chunks on their way, in order, each with the time (ms) it may be written. */
  fifo: { chunk: Buffer; due: number }[];
  timer: NodeJS.Timeout | undefined;
  /** Throttle: time (ms) at which the link is free again. */
  nextFree: number;
}

interface Pair {
  /** limitData: bytes still allowed upward before the connection is closed. */
  budget: number;
  client: net.Socket;
  server: net.Socket;
  up: Direction;
  down: Direction;
}

export interface TcpProxy {
  readonly port: number;
  /** Connections accepted so far (including refused ones while cut). */
  readonly accepted: number;
  /** Connections open now. */
  open(): number;
  cut(): void;
  blackhole(): void;
  /** Each chunk is late by ms ± jitter (uniform; `random` for a seeded run); order is kept. */
  delay(ms: number, jitter?: number, random?: () => number): void;
  /** The open connections are closed after `bytes` more bytes client → server (the server sees a partial packet). */
  limitData(bytes: number): void;
  throttle(bytesPerSecond: number): void;
  /**
   * `up` is client → server. `fn` sees every chunk before the mode applies and returns what to pass
   * on (an empty buffer drops it); undefined removes the hook. Applies to open and new connections.
   */
  intercept(direction: LinkDirection, fn: ((chunk: Buffer) => Buffer) | undefined): void;
  /** Back to a plain pipe; held data is delivered. */
  restore(): void;
  /** Resolves once `n` connections have been accepted in total (event-driven, no polling). */
  waitForAccepted(n: number): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: Mode = { kind: "pass" };
  let accepted = 0;
  const pairs = new Set<Pair>();
  const waiters: { n: number; resolve: () => void }[] = [];
  const hooks: Partial<Record<LinkDirection, (chunk: Buffer) => Buffer>> = {};

  const pump = (d: Direction) => {
    d.timer = undefined;
    const now = Date.now();
    while (d.fifo.length > 0 && d.fifo[0]!.due <= now) {
      const { chunk } = d.fifo.shift()!;
      if (!d.to.destroyed) d.to.write(chunk);
    }
    if (d.fifo.length > 0) d.timer = setTimeout(pump, Math.max(1, d.fifo[0]!.due - now), d);
  };
  const enqueue = (d: Direction, chunk: Buffer, due: number) => {
    d.fifo.push({ chunk, due });
    if (d.timer === undefined) pump(d);
  };
  const forward = (dir: LinkDirection, d: Direction, raw: Buffer) => {
    const hook = hooks[dir];
    const chunk = hook === undefined ? raw : hook(raw);
    if (chunk.length === 0) return;
    const now = Date.now();
    if (dir === "up" && d.pair.budget !== Number.POSITIVE_INFINITY) {
      const p = d.pair;
      if (chunk.length >= p.budget) {
        // What fits goes out, then FIN to the server and a reset to the client: a link dying mid-packet.
        if (p.budget > 0 && !p.server.destroyed) p.server.write(chunk.subarray(0, p.budget));
        p.budget = 0;
        p.server.end();
        p.client.destroy();
        return;
      }
      p.budget -= chunk.length;
    }
    switch (mode.kind) {
      case "pass":
        if (d.held.length > 0) d.held.push(chunk);
        else enqueue(d, chunk, now); // behind anything still delayed, never before it
        return;
      case "cut":
        return;
      case "blackhole":
        d.held.push(chunk);
        return;
      case "delay":
        enqueue(d, chunk, now + mode.ms + (mode.random() * 2 - 1) * mode.jitter);
        return;
      case "throttle":
        d.nextFree = Math.max(now, d.nextFree) + (chunk.length * 1000) / mode.rate;
        enqueue(d, chunk, d.nextFree);
        return;
    }
  };
  const release = (d: Direction) => {
    const now = Date.now();
    for (const c of d.held.splice(0)) enqueue(d, c, now);
  };
  const kill = (p: Pair) => {
    for (const d of [p.up, p.down]) {
      if (d.timer !== undefined) clearTimeout(d.timer);
      d.timer = undefined;
      d.fifo = [];
    }
    p.client.destroy();
    p.server.destroy();
    pairs.delete(p);
  };
  const direction = (pair: Pair, to: net.Socket): Direction => ({ pair, to, held: [], fifo: [], timer: undefined, nextFree: 0 });

  const server = net.createServer((client) => {
    accepted++;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (accepted >= waiters[i]!.n) waiters.splice(i, 1)[0]!.resolve();
    }
    if (mode.kind === "cut") {
      client.destroy();
      return;
    }
    const upstream = net.connect(target);
    upstream.setNoDelay(true);
    client.setNoDelay(true);
    const p = { budget: Number.POSITIVE_INFINITY, client, server: upstream } as Pair;
    p.up = direction(p, upstream);
    p.down = direction(p, client);
    pairs.add(p);
    client.on("data", (c: Buffer) => forward("up", p.up, c));
    upstream.on("data", (c: Buffer) => forward("down", p.down, c));
    // Either side closing or failing closes the other: the proxy never keeps half a link.
    for (const s of [client, upstream]) {
      s.on("error", () => kill(p));
      s.on("close", () => kill(p));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    get accepted() {
      return accepted;
    },
    open: () => pairs.size,
    cut() {
      mode = { kind: "cut" };
      for (const p of [...pairs]) kill(p);
    },
    blackhole() {
      mode = { kind: "blackhole" };
    },
    delay(ms, jitter = 0, random = Math.random) {
      mode = { kind: "delay", ms, jitter, random };
    },
    limitData(bytes) {
      for (const p of pairs) p.budget = bytes;
    },
    throttle(rate) {
      mode = { kind: "throttle", rate };
    },
    intercept(dir, fn) {
      if (fn === undefined) delete hooks[dir];
      else hooks[dir] = fn;
    },
    restore() {
      mode = { kind: "pass" };
      for (const p of pairs) {
        release(p.up);
        release(p.down);
      }
    },
    waitForAccepted(n) {
      if (accepted >= n) return Promise.resolve();
      return new Promise((resolve) => waiters.push({ n, resolve }));
    },
    async close() {
      for (const p of [...pairs]) kill(p);
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
