// Helpers around the real `mqtt` client for integration tests: connect, collect messages, wait for
// a condition driven by events (never by sleeping).
import mqtt from "mqtt";

export async function connect(url: string, opts: mqtt.IClientOptions = {}): Promise<mqtt.MqttClient> {
  const c = mqtt.connect(url, { reconnectPeriod: 0, connectTimeout: 5_000, ...opts });
  await new Promise<void>((resolve, reject) => {
    c.once("connect", () => resolve());
    c.once("error", reject);
    c.once("close", () => reject(new Error("closed before CONNACK")));
  });
  return c;
}

export interface Received {
  topic: string;
  payload: string;
  packet: mqtt.IPublishPacket;
}

/** Records every message a client receives; `next(n)` resolves once n have arrived in total. */
export function collect(c: mqtt.MqttClient) {
  const got: Received[] = [];
  const waiters: Array<{ n: number; resolve: () => void }> = [];
  c.on("message", (topic, payload, packet) => {
    got.push({ topic, payload: payload.toString(), packet });
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (got.length >= waiters[i]!.n) {
        waiters[i]!.resolve();
        waiters.splice(i, 1);
      }
    }
  });
  return {
    got,
    count(n: number): Promise<Received[]> {
      if (got.length >= n) return Promise.resolve(got);
      return new Promise((resolve) => waiters.push({ n, resolve: () => resolve(got) }));
    },
  };
}

/** Resolves when the client's connection closes. */
export function closed(c: mqtt.MqttClient): Promise<void> {
  return new Promise((resolve) => {
    if (!c.connected && c.disconnected) resolve();
    c.once("close", () => resolve());
  });
}

export async function end(...clients: mqtt.MqttClient[]): Promise<void> {
  await Promise.all(clients.map((c) => c.endAsync(true)));
}
