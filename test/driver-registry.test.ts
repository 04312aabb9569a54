// The driver table (hub/driver-registry.ts): every device type the config schema accepts (but the
// Arduino, which has its own host) loads a driver of that kind, and an unknown type is refused.
import t from "tap";
import { deviceSchemas } from "../hub/config/schema.js";
import { loadDrivers } from "../hub/driver-registry.js";

t.test("every polled device type in the schema loads its own driver", async (t) => {
  const types = deviceSchemas.map((s) => s.shape.type.value as string).filter((type) => type !== "arduino");
  t.ok(types.length >= 12, "the schema's device types");
  const drivers = await loadDrivers(types);
  for (const type of types) t.equal(drivers.get(type)?.kind, type, type);
});

t.test("only the asked-for types, each once", async (t) => {
  const drivers = await loadDrivers(["bme280", "bme280", "bmp280"]);
  t.same([...drivers.keys()], ["bme280", "bmp280"]);
});

t.test("an unknown type is an error naming it", async (t) => {
  await t.rejects(loadDrivers(["flux_capacitor"]), /no driver for device type flux_capacitor/);
});
