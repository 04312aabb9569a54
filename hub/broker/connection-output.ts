// A connection's output side: the output high-water mark, the fixed 4-byte acknowledgements, and
// the once-per-turn flush of corked sockets (one batched write per connection per event-loop turn).
import type { ConnectionContext } from "./connection-context.js";

/** Output above this many buffered bytes marks the link blocked; QoS>0 waits in the session queue. */
export const HIGH_WATER = 1 << 20;

/** PUBACK/PUBREC/PUBREL/PUBCOMP with reason 0 and no properties: 4 bytes in every version. */
export function ack(type: number, id: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b[0] = type;
  b[1] = 2;
  b[2] = id >> 8;
  b[3] = id & 0xff;
  return b;
}
export const PUBACK = 0x40;
export const PUBREC = 0x50;
export const PUBREL = 0x62;
export const PUBCOMP = 0x70;
export const PINGRESP = Buffer.from([0xd0, 0x00]);

/**
 * Runs once per event-loop turn, in the check phase right after every readable socket of this turn
 * was handled: each connection written to in this turn gets one writev with all its packets. Under
 * load that is a few large writes instead of one syscall per publisher read; idle, it adds no delay.
 */
export function flushCorked(ctx: ConnectionContext): void {
  const list = ctx.corked;
  ctx.corked = [];
  for (const c of list) {
    (c as unknown as { corked: boolean }).corked = false;
    c.socket.uncork();
  }
}
