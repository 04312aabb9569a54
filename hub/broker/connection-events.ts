// The socket listeners every connection shares (one function each, not closures per connection):
// `this` is the socket, and the connection hangs off it under CONN.
import type { Connection, Socketish } from "./connection.js";
import { RC } from "./reason-codes.js";

export const CONN = Symbol("hub.connection");

function connOf(s: unknown): Connection {
  return (s as Record<symbol, Connection>)[CONN]!;
}
export function onData(this: Socketish, chunk: Buffer): void {
  const c = connOf(this);
  try {
    c.onData(chunk);
  } catch (err) {
    c.core.log.warn("error handling a packet; closing that client", { client: c.clientId || c.remote, error: err });
    c.fail(RC.UNSPECIFIED, "internal error");
    this.destroy();
  }
}
export function onError(this: Socketish, err: Error): void {
  const c = connOf(this);
  c.core.log.debug("socket error", { client: c.clientId || c.remote, error: err.message });
}
export function onClose(this: Socketish): void {
  connOf(this).finish();
}
export function onDrain(this: Socketish): void {
  const c = connOf(this);
  c.blockedSince = 0;
  if (c.session && c.state === "connected") c.core.pumpSession(c.session);
}
export function resumeLater(c: Connection): void {
  c.continueReading();
}
