// A TCP proxy on a loopback port for fault tests of links (the bridge's uplink): put it between a
// client and a server, then cut, blackhole, delay or throttle the link, and restore it.
// - cut(): closes every open connection and refuses new ones (accepted, then closed at once).
// - blackhole(): connections stay open but nothing is delivered either way, as when a router drops
//   packets; what was sent meanwhile is held, and delivered late on restore() (TCP retransmits).
// - delay(ms) / throttle(bytesPerSecond): every chunk arrives late / at that rate, in order.
import net from "node:net";

type Mode = { kind: "pass" } | { kind: "cut" } | { kind: "blackhole" } | { kind: "delay"; ms: number } | { kind: "throttle"; rate: number };

interface Direction {
  to: net.Socket;
  held: Buffer[];
  /** Throttle: time (ms) at which the link is free again. */
  nextFree: number;
}

interface Pair {
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
  delay(ms: number): void;
  throttle(bytesPerSecond: number): void;
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

  const write = (d: Direction, chunk: Buffer) => {
    if (!d.to.destroyed) d.to.write(chunk);
  };
  const forward = (d: Direction, chunk: Buffer) => {
    switch (mode.kind) {
      case "pass":
        if (d.held.length > 0) d.held.push(chunk);
        else write(d, chunk);
        return;
      case "cut":
        return;
      case "blackhole":
        d.held.push(chunk);
        return;
      case "delay":
        setTimeout(() => write(d, chunk), mode.ms);
        return;
      case "throttle": {
        const now = Date.now();
        d.nextFree = Math.max(now, d.nextFree) + (chunk.length * 1000) / mode.rate;
        setTimeout(() => write(d, chunk), d.nextFree - now);
        return;
      }
    }
  };
  const release = (d: Direction) => {
    for (const c of d.held.splice(0)) write(d, c);
  };
  const kill = (p: Pair) => {
    p.client.destroy();
    p.server.destroy();
    pairs.delete(p);
  };

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
    const p: Pair = {
      client,
      server: upstream,
      up: { to: upstream, held: [], nextFree: 0 },
      down: { to: client, held: [], nextFree: 0 },
    };
    pairs.add(p);
    client.on("data", (c: Buffer) => forward(p.up, c));
    upstream.on("data", (c: Buffer) => forward(p.down, c));
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
    delay(ms) {
      mode = { kind: "delay", ms };
    },
    throttle(rate) {
      mode = { kind: "throttle", rate };
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
