// Cross-field checks a per-field schema cannot express: unique device names, unique listener
// addresses, ranges that must nest. They run on a config that already passed the schema; the loader
// turns each problem's path into file:line:col.
import { sunConditionPaths, sunTriggerPaths } from "../../rules/describe.js";
import { authFileProblems } from "../broker/auth/file-check.js";
import { listenerProblems } from "../broker/listener-check.js";
import { isLoopback } from "../broker/loopback.js";

export { isLoopback };
import type { ReadFile } from "../broker/tls.js";
import { checkGpio } from "./check-gpio.js";
import type { Config, ListenerConfig } from "./schema.js";

export interface CheckProblem {
  path: (string | number)[];
  expected: string;
  found: string;
}

/** `readFile` (optional): also check that files the config names (TLS certificates) are usable. */
export function checkConfig(config: Config, deps: { readFile?: ReadFile } = {}): CheckProblem[] {
  const problems: CheckProblem[] = [];

  const devices = new Map<string, number>();
  config.devices.forEach((d, i) => {
    const first = devices.get(d.name);
    if (first === undefined) devices.set(d.name, i);
    else {
      problems.push({
        path: ["devices", i, "name"],
        expected: "a device name not used by another device",
        found: `${JSON.stringify(d.name)} again (also devices[${first}])`,
      });
    }
    if (d.type !== "simulated_sensor") return;
    for (const [q, spec] of Object.entries(d.quantities)) {
      const at = ["devices", i, "quantities", q];
      if (spec.min > spec.max) {
        problems.push({ path: [...at, "min"], expected: `min <= max (${spec.max})`, found: String(spec.min) });
      } else if (spec.start < spec.min || spec.start > spec.max) {
        problems.push({ path: [...at, "start"], expected: `a start between min ${spec.min} and max ${spec.max}`, found: String(spec.start) });
      }
    }
  });

  // Two devices on one GPIO line would fight over it (the second export fails or reconfigures it).
  const pins = new Map<number, number>();
  config.devices.forEach((d, i) => {
    if ((d.type !== "gpio_input" && d.type !== "gpio_output") || d.expander !== undefined) return; // expander pins: check-gpio.ts
    const first = pins.get(d.pin);
    if (first === undefined) pins.set(d.pin, i);
    else {
      problems.push({
        path: ["devices", i, "pin"],
        expected: "a GPIO pin not used by another device",
        found: `${d.pin} again (also devices[${first}])`,
      });
    }
  });

  // Two sensors at one I2C address would both answer (garbage), two devices on one DS18B20 are a typo.
  const i2c = new Map<string, number>();
  const w1 = new Map<string, number>();
  config.devices.forEach((d, i) => {
    if (d.type === "ds18b20") {
      if (d.id === undefined) return;
      const first = w1.get(d.id);
      if (first === undefined) w1.set(d.id, i);
      else problems.push({ path: ["devices", i, "id"], expected: "a 1-Wire id not used by another device", found: `${d.id} again (also devices[${first}])` });
      return;
    }
    if (!("address" in d) || !("bus" in d)) return;
    const key = `${d.bus}/${d.address}`;
    const first = i2c.get(key);
    if (first === undefined) i2c.set(key, i);
    else {
      problems.push({
        path: ["devices", i, "address"],
        expected: "an I2C bus and address not used by another device",
        found: `0x${d.address.toString(16)} on bus ${d.bus} again (also devices[${first}])`,
      });
    }
    if (d.type === "ads1115") {
      for (const [name, c] of Object.entries(d.channels)) {
        if (c.scale && c.scale.volts[0] === c.scale.volts[1]) {
          problems.push({ path: ["devices", i, "channels", name, "scale", "volts"], expected: "two different voltages", found: `${c.scale.volts[0]} twice` });
        }
      }
    }
  });

  problems.push(...checkGpio(config));

  // Port 0 asks the OS for a free port, so two of them never clash. A wildcard address takes the
  // port on every address of its family (:: on both: Node listens dual-stack), so 0.0.0.0:1883 and
  // 127.0.0.1:1883 cannot both listen (EADDRINUSE at start).
  const seen: Array<{ host: string; port: number; i: number }> = [];
  config.broker.listeners.forEach((l, i) => {
    if (l.port === 0) return;
    const host = l.host.toLowerCase();
    const first = seen.find((o) => o.port === l.port && addressesClash(o.host, host));
    if (first === undefined) seen.push({ host, port: l.port, i });
    else {
      problems.push({
        path: ["broker", "listeners", i],
        expected: "a host and port not used by another listener (0.0.0.0 and :: take the port on every address)",
        found: `${l.host} port ${l.port} again (also listeners[${first.i}]${first.host === host ? "" : `, ${first.host}`})`,
      });
    }
  });

  // Security by default: no anonymous access from the network unless the config says so.
  config.broker.listeners.forEach((l, i) => {
    if (l.allow_anonymous === undefined && !isLoopback(l.host) && !listenerHasAuthentication(l, config)) {
      problems.push({
        path: ["broker", "listeners", i, "host"],
        expected:
          "a loopback address (127.0.0.1, ::1), authentication (broker.auth.passwd_file, or tls.require_client_cert with tls.identity_as_username), or allow_anonymous: true",
        found: `${l.host}, reachable from the network without authentication`,
      });
    }
    for (const p of listenerProblems(l, deps.readFile)) problems.push({ ...p, path: ["broker", "listeners", i, ...p.path] });
  });

  // Password and ACL files that cannot be read, at their config key (their lines: broker/auth/load.ts).
  const auth = config.broker.auth;
  if (auth !== undefined && config.broker.external === undefined && deps.readFile !== undefined) {
    for (const p of authFileProblems(auth, deps.readFile)) problems.push({ ...p, path: ["broker", "auth", ...p.path] });
  }

  const ext = config.broker.external;
  if (ext?.tls !== undefined) {
    const { cert_file, key_file } = ext.tls;
    if ((cert_file === undefined) !== (key_file === undefined)) {
      problems.push({
        path: ["broker", "external", "tls", cert_file === undefined ? "key_file" : "cert_file"],
        expected: "cert_file and key_file together",
        found: `only ${cert_file === undefined ? "key_file" : "cert_file"}`,
      });
    }
    // The URL may carry user:password@, so only its scheme is shown.
    const scheme = ext.url.slice(0, ext.url.indexOf(":"));
    if (scheme === "mqtt" || scheme === "ws") {
      problems.push({
        path: ["broker", "external", "url"],
        expected: "an mqtts:// or wss:// URL (tls options are given)",
        found: `${scheme}://`,
      });
    }
  }
  // A sun trigger without a location could only fail when the rule starts: report it here instead.
  if (config.location === undefined) {
    for (const at of sunTriggerPaths(config.rules)) {
      problems.push({ path: ["rules", ...at, "trigger"], expected: "location: { latitude, longitude } in the config for a sun trigger", found: "no location" });
    }
    for (const at of sunConditionPaths(config.rules)) {
      problems.push({ path: ["rules", ...at, "condition"], expected: "location: { latitude, longitude } in the config for a sun condition", found: "no location" });
    }
  }
  return problems;
}

/**
 * Whether clients of this listener must prove who they are, so it may face the network without
 * allow_anonymous: a client certificate that names the user, or user accounts from a password file
 * (anonymous clients are then refused there: allow_anonymous defaults to false off loopback).
 */
export function listenerHasAuthentication(l: ListenerConfig, config: Config): boolean {
  if (config.broker.auth?.passwd_file !== undefined) return true;
  const secure = l.protocol === "mqtts" || l.protocol === "wss";
  return secure && l.tls?.require_client_cert === true && l.tls.identity_as_username === true;
}

/** Can listeners on hosts `a` and `b` (lower case) not share one port? */
function addressesClash(a: string, b: string): boolean {
  if (a === b) return true;
  const covers = (w: string, o: string) => w === "::" || (w === "0.0.0.0" && !o.includes(":"));
  return covers(a, b) || covers(b, a);
}

