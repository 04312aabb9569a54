// The real I2C backend: i2c-bus (native, an optional dependency) loaded lazily, so the hub installs
// and simulates on machines where it did not build. i2c-bus opens a missing /dev/i2c-N without
// complaint and scan() then finds nothing, so the device node is checked first and a missing one is
// reported as what it almost always is: I2C switched off in the Pi's configuration.
import { accessSync, constants } from "node:fs";
import { hwError, type RawI2cBus } from "./i2c.js";

/** The part of the i2c-bus module used here. */
export interface I2cBusModule {
  openPromisified(busNumber: number): Promise<RawI2cBus>;
}

export interface LinuxI2cDeps {
  /** Throws like fs.accessSync (ENOENT, EACCES) when the device node cannot be read and written. */
  access?: (path: string) => void;
  /** Loads i2c-bus; rejects when it is not installed. */
  load?: () => Promise<I2cBusModule>;
}

async function loadI2cBus(): Promise<I2cBusModule> {
  const name = "i2c-bus"; // a variable: TypeScript must not look for its types (none are published)
  const m = (await import(name)) as { default?: I2cBusModule } & Partial<I2cBusModule>;
  return (m.default ?? m) as I2cBusModule;
}

/** Opens /dev/i2c-<bus> through i2c-bus, or fails with a message that says what to do. */
export function linuxI2c(deps: LinuxI2cDeps = {}): (bus: number) => Promise<RawI2cBus> {
  const access = deps.access ?? ((p: string) => accessSync(p, constants.R_OK | constants.W_OK));
  const load = deps.load ?? loadI2cBus;
  return async (bus) => {
    const path = `/dev/i2c-${bus}`;
    try {
      access(path);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT") {
        throw hwError(
          `I2C is not enabled (raspi-config → Interface → I2C): ${path} does not exist` +
            (bus === 1 ? "" : ` (is bus ${bus} right? \`ls /dev/i2c-*\` lists the buses)`),
          "ENOENT",
          err,
        );
      }
      if (code === "EACCES" || code === "EPERM") {
        throw hwError(`no permission to use ${path}: add the hub's user to the i2c group (sudo usermod -aG i2c <user>)`, code, err);
      }
      throw err;
    }
    let mod: I2cBusModule;
    try {
      mod = await load();
    } catch (err) {
      throw hwError("i2c-bus is not installed (needs build-essential): sudo apt install build-essential, then reinstall the hub so its optional i2c-bus module builds", "ENOMODULE", err);
    }
    return mod.openPromisified(bus);
  };
}
