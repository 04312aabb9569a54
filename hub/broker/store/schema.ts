// Config of the broker's durable state (`broker.storage`): part of THE config schema
// (hub/config/schema.ts imports it); defaults live here and nowhere else.
import { z } from "zod";
import { duration } from "../../config/duration.js";

export const storageSchema = z
  .strictObject({
    enabled: z
      .boolean({ error: "true or false" })
      .default(true)
      .describe(
        "Keep retained messages and persistent sessions (subscriptions, queued and in-flight QoS 1/2 messages, wills) in <state_dir>/broker.db so they survive a restart, a crash or kill -9. When false they live in memory only. Default: true.",
      ),
    sync: z
      .enum(["normal", "full"], { error: "normal or full" })
      .default("normal")
      .describe(
        "normal: SQLite WAL with synchronous=NORMAL; nothing acknowledged is lost when the hub crashes or is killed, but a power cut may lose the last commits (few writes: easiest on an SD card). full: synchronous=FULL, one fsync per commit; survives power loss, wears the card more. Default: normal.",
      ),
    commit_interval: duration()
      .prefault("5ms")
      .describe(
        "Group commit: changes are collected this long (or until 1000 are pending) and written in one transaction; QoS 1/2 PUBLISHes are acknowledged only after it, and a QoS 2 message to a persistent session is sent only after it (a crash cannot bring it back under a new packet id). Longer = fewer writes, slower acks. QoS 0 never waits. Default: 5ms.",
      ),
  })
  .describe("Durable broker state (SQLite, WAL) under state_dir.");

export type StorageConfig = z.output<typeof storageSchema>;
