// The hub side of Arduino devices (drivers/arduino/): one serial link per configured board, whose
// readings are published retained on <base>/<device>/<channel> like other devices' (report-on-change
// through the device host's changeFilter), outputs obey <base>/<device>/<channel>/set, availability
// follows the link (online after the banner, offline on unplug or a hung sketch), events go to
// <base>/<device>/event and the link's counters to <base>/<device>/diagnostics (retained JSON).
// Channels come from the config and from the board's banner (the config wins where both name one).
// The last banner's channels are remembered in the state dir (arduino-channels.json), so Home
// Assistant keeps those entities across restarts and while the board is away; it is told again only
// when a banner differs from the remembered one.
import type { Bus, Cancel, Clock, Logger, Message, Service, Topics } from "./contracts.js";
import type { Config } from "./config/schema.js";
import { changeFilter, formatValue, parseSwitchCommand } from "./devices.js";
import type { DiscoveryDevice, DiscoveryEntity } from "./discovery.js";
import { firmataSession } from "../drivers/arduino/firmata.js";
import { hubprotoSession } from "../drivers/arduino/hubproto.js";
import { createLink } from "../drivers/arduino/link.js";
import { linkTiming } from "../drivers/arduino/timing.js";
import type { ChannelDecl, ChannelKind } from "../drivers/arduino/protocol.js";
import type { SerialProvider } from "../drivers/io/serial.js";
import { type ChannelMemory, channelMemory, type RememberedBoard } from "./arduino-channels.js";

export type ArduinoConfig = Extract<Config["devices"][number], { type: "arduino" }>;

export interface ArduinoChannel {
  kind: ChannelKind;
  unit?: string;
  precision?: number;
}

export interface ArduinoHostDeps {
  bus: Bus;
  clock: Clock;
  log: Logger;
  topics: Topics;
  serial: SerialProvider;
  /** Tells Home Assistant about channels learnt from a banner. */
  discover?: (d: DiscoveryDevice) => void;
  /** Where the last banner's channels are remembered (<state_dir>); none: not remembered. */
  stateDir?: string;
  logReadings?: boolean;
}

const COMPONENT = { sensor: "sensor", binary: "binary_sensor", output: "switch", pwm: "number" } as const;

/** Home Assistant entities of a board's channels. */
export function arduinoEntities(channels: Record<string, ArduinoChannel>): DiscoveryEntity[] {
  return Object.entries(channels).map(([quantity, c]) => {
    const e: DiscoveryEntity = { quantity, component: COMPONENT[c.kind] };
    if (c.kind === "sensor" && c.unit !== undefined) e.unit = c.unit;
    if (c.kind === "sensor" && c.precision !== undefined) e.precision = c.precision;
    return e;
  });
}

/** The channels the config declares (the banner may add more). */
export function configuredChannels(d: ArduinoConfig): Record<string, ArduinoChannel> {
  const out: Record<string, ArduinoChannel> = {};
  for (const [name, c] of Object.entries(d.channels ?? {})) {
    const ch: ArduinoChannel = { kind: c.kind };
    if (c.unit !== undefined) ch.unit = c.unit;
    if (c.precision !== undefined) ch.precision = c.precision;
    out[name] = ch;
  }
  return out;
}

/** The configured channels plus those of a banner that the config does not name. */
export function mergedChannels(d: ArduinoConfig, banner: readonly ChannelDecl[]): Record<string, ArduinoChannel> {
  const channels = configuredChannels(d);
  for (const c of banner) {
    if (channels[c.name]) continue;
    channels[c.name] = c.unit === undefined ? { kind: c.kind } : { kind: c.kind, unit: c.unit };
  }
  return channels;
}

const sameBoard = (a: RememberedBoard, b: RememberedBoard | undefined) =>
  b !== undefined &&
  a.board === b.board &&
  a.channels.length === b.channels.length &&
  a.channels.every((c, i) => c.name === b.channels[i]!.name && c.kind === b.channels[i]!.kind && c.unit === b.channels[i]!.unit);

export function createArduinoHost(devices: ArduinoConfig[], deps: ArduinoHostDeps): Service {
  const { bus, clock, topics } = deps;
  const running: Array<() => Promise<void>> = [];
  const names = devices.map((d) => d.name);
  const memory: ChannelMemory | undefined = deps.stateDir === undefined ? undefined : channelMemory(deps.stateDir, names, deps.log);
  const model = (board: string) => `arduino (${board})`;

  const runBoard = async (d: ArduinoConfig, remembered: RememberedBoard | undefined) => {
    const log = deps.log.child(d.name);
    let banner: RememberedBoard | undefined = remembered;
    let channels = mergedChannels(d, banner?.channels ?? []);
    // Known from an earlier run: Home Assistant gets the same entities as then, before discovery
    // starts (so nothing is withdrawn) and whether or not the board is plugged in.
    if (remembered) deps.discover?.({ name: d.name, model: model(remembered.board), entities: arduinoEntities(channels) });
    const last = new Map<string, number>();
    const filter = changeFilter(d);
    const publish = (topic: string, payload: string, retain = true) =>
      bus.publish({ topic, payload: Buffer.from(payload), qos: 1, retain }).catch((err) => log.warn("could not publish", { topic, error: err }));
    const text = (ch: string, v: number) => {
      const c = channels[ch];
      if (c?.kind === "output" || c?.kind === "binary") return formatValue(v !== 0, undefined);
      return formatValue(v, c?.precision);
    };
    let errorsSeen = 0;
    const protocol = d.protocol;
    const timing = linkTiming(d);
    const link = createLink(
      {
        path: d.path,
        baudRate: timing.baud,
        bannerTimeoutMs: timing.bannerTimeoutMs,
        heartbeatIntervalMs: d.ping_interval,
        heartbeatTimeoutMs: d.ping_timeout,
      },
      {
        serial: deps.serial,
        clock,
        log,
        session: protocol === "firmata" ? firmataSession({ channels: d.channels ?? {}, samplingIntervalMs: d.sampling_interval }) : hubprotoSession,
      },
      {
        online(info) {
          // Firmata's channels are the config's; a hubproto banner names the sketch's.
          const next: RememberedBoard | undefined = info.protocol === "hubproto" && info.channels.length > 0 ? { board: info.board, channels: info.channels } : undefined;
          if (next) {
            for (const name of Object.keys(configuredChannels(d))) {
              if (!next.channels.some((c) => c.name === name)) log.warn("channel in the config but not in the board's banner", { channel: name, board: info.board });
            }
          }
          if (next && !sameBoard(next, banner)) {
            banner = next;
            channels = mergedChannels(d, next.channels);
            deps.discover?.({ name: d.name, model: model(next.board), entities: arduinoEntities(channels) });
            memory?.remember(d.name, next).catch((err) => log.warn("could not remember the board's channels", { error: err }));
          }
          void publish(topics.availability(d.name), "online");
        },
        offline: () => void publish(topics.availability(d.name), "offline"),
        reading(ch, v) {
          last.set(ch, v);
          const t = text(ch, v);
          const now = clock.monotonic();
          if (!filter.due(ch, v, t, now)) return;
          filter.mark(ch, v, t, now);
          void publish(topics.state(d.name, ch), t);
          if (deps.logReadings) log.info("reading", { [ch]: t });
          else log.debug("reading", { [ch]: t });
        },
        event(name, t) {
          log.info("event", { event: name, text: t });
          void publish(`${topics.state(d.name, "event")}`, JSON.stringify({ event: name, text: t }), false);
        },
        diagnostics(diag) {
          const errors = diag.checksum_errors + diag.bad_lines;
          if (errors > errorsSeen) log.warn("damaged lines dropped", { checksum_errors: diag.checksum_errors, bad_lines: diag.bad_lines });
          errorsSeen = errors;
          void publish(topics.state(d.name, "diagnostics"), JSON.stringify(diag));
        },
      },
    );

    const onCommand = (m: Message) => {
      const ch = m.topic.split("/").at(-2)!;
      const payload = m.payload.toString("utf8").trim();
      if (m.retain) {
        log.warn("ignoring a retained command; clear it with an empty retained message", { topic: m.topic });
        return;
      }
      const c = channels[ch];
      if (!c || (c.kind !== "output" && c.kind !== "pwm")) {
        log.warn("command for a channel that is not an output", { topic: m.topic, channel: ch });
        return;
      }
      let value: number;
      if (c.kind === "output") {
        const cmd = parseSwitchCommand(payload);
        if (cmd === undefined) {
          log.warn("invalid command; expected ON, OFF, TOGGLE, 1, 0, true or false", { topic: m.topic, payload: payload.slice(0, 64) });
          return;
        }
        value = cmd === "toggle" ? ((last.get(ch) ?? 0) ? 0 : 1) : cmd ? 1 : 0;
      } else {
        value = Number(payload);
        if (payload === "" || !Number.isInteger(value) || value < 0 || value > 255) {
          log.warn("invalid command; expected an integer 0..255", { topic: m.topic, payload: payload.slice(0, 64) });
          return;
        }
      }
      // The state is published when the board confirms it (its R line), not here.
      if (!link.set(ch, value)) log.info("board offline: the command will be sent when it is back", { channel: ch, value });
    };

    await publish(topics.availability(d.name), "offline");
    const unsubscribe: Cancel = await bus.subscribe(`${topics.state(d.name)}/+/set`, onCommand, { qos: 1 });
    link.start();
    running.push(async () => {
      unsubscribe();
      await link.stop();
      await publish(topics.availability(d.name), "offline");
    });
  };

  return {
    name: "arduino",
    async start() {
      const remembered = (await memory?.load()) ?? {};
      for (const d of devices) await runBoard(d, remembered[d.name]);
    },
    async stop() {
      await Promise.all(running.splice(0).map((s) => s()));
      await memory?.settled();
    },
  };
}
