// What each Arduino announced in its last banner, kept in <state_dir>/arduino-channels.json, so that
// Home Assistant's entities for channels learnt from a banner (not listed in the config) stay put
// across hub restarts and while the board is unplugged. Without it the hub would start knowing only
// the configured channels, so discovery would withdraw the others (Home Assistant deletes an entity
// on an empty config payload, losing its name, area and customisation) and re-create them when the
// board comes online. Written only when a banner differs from what is remembered (SD cards wear),
// via a rename so a power cut leaves the old file or the new one. A missing or damaged file is
// treated as empty: the next banner rewrites it.
import { readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CHANNEL_KINDS, type ChannelDecl } from "../drivers/arduino/protocol.js";
import type { Logger } from "./contracts.js";

export const CHANNELS_FILE = "arduino-channels.json";

/** A board's last banner: its name and channels. */
export interface RememberedBoard {
  board: string;
  channels: ChannelDecl[];
}

export interface ChannelMemory {
  /** The remembered boards, by device name (call once, at start). */
  load(): Promise<Record<string, RememberedBoard>>;
  /** Remembers a device's latest banner; returns whether that changed anything. */
  remember(device: string, board: RememberedBoard): Promise<boolean>;
  /** Resolves when no write is under way (the hub waits for it when it stops). */
  settled(): Promise<void>;
}

const NAME = /^[a-z0-9_-]{1,32}$/;

function validBoard(v: unknown): RememberedBoard | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const { board, channels } = v as { board?: unknown; channels?: unknown };
  if (typeof board !== "string" || !Array.isArray(channels)) return undefined;
  const out: ChannelDecl[] = [];
  for (const c of channels as unknown[]) {
    const { name, kind, unit } = (c ?? {}) as { name?: unknown; kind?: unknown; unit?: unknown };
    if (typeof name !== "string" || !NAME.test(name) || !CHANNEL_KINDS.includes(kind as ChannelDecl["kind"])) return undefined;
    out.push(typeof unit === "string" ? { name, kind: kind as ChannelDecl["kind"], unit } : { name, kind: kind as ChannelDecl["kind"] });
  }
  return { board, channels: out };
}

/** The memory for the configured `devices`; entries of devices no longer configured are dropped. */
export function channelMemory(stateDir: string, devices: readonly string[], log: Logger): ChannelMemory {
  const file = join(stateDir, CHANNELS_FILE);
  const boards: Record<string, RememberedBoard> = {};
  let text = "";
  // Boards come online concurrently; writes go one after the other through the same .tmp file.
  let writing: Promise<unknown> = Promise.resolve();

  return {
    async load() {
      let raw: string;
      try {
        raw = await readFile(file, "utf8");
      } catch (err) {
        if ((err as { code?: string }).code !== "ENOENT") log.warn("cannot read the remembered Arduino channels; starting afresh", { file, error: err });
        return {};
      }
      text = raw;
      let v: unknown;
      try {
        v = JSON.parse(raw);
      } catch {
        log.warn("the remembered Arduino channels are not valid JSON; starting afresh", { file });
        return {};
      }
      for (const d of devices) {
        const b = validBoard((v as Record<string, unknown> | null)?.[d]);
        if (b) boards[d] = b;
      }
      return structuredClone(boards);
    },
    async remember(device, board) {
      const next = { board: board.board, channels: board.channels.map((c) => (c.unit === undefined ? { name: c.name, kind: c.kind } : { name: c.name, kind: c.kind, unit: c.unit })) };
      if (JSON.stringify(boards[device]) === JSON.stringify(next)) return false;
      boards[device] = next;
      const content = `${JSON.stringify(boards, null, 2)}\n`;
      const write = writing.then(async () => {
        if (content === text) return;
        await writeFile(`${file}.tmp`, content);
        await rename(`${file}.tmp`, file);
        text = content;
      });
      writing = write.catch(() => {});
      await write;
      return true;
    },
    async settled() {
      await writing;
    },
  };
}
