// Whether a listener's host is a loopback address: such a listener allows anonymous clients unless
// the config says otherwise (only processes on the Pi itself can reach it). Its own file because the
// running broker needs it and hub/config/check.ts (which loads the TLS helpers and node:crypto for
// certificate checks) runs in the config-checking child, not in the hub.
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d+\.\d+\.\d+$/.test(h) || h === "::ffff:127.0.0.1";
}
