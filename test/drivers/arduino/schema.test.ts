// The arduino device's config: the banner timeout and baud rate left out follow the protocol (a
// StandardFirmata Uno answers about 3.1 s after the port opens, past hubproto's 4 s budget less
// margin), a value given wins, and Firmata's cross-field rules report at the offending key.
import t from "tap";
import { linkTiming } from "../../../drivers/arduino/schema.js";
import { arduinoSchema } from "../../../hub/config/schema.js";

const parse = (extra: Record<string, unknown>) => arduinoSchema.safeParse({ name: "board", type: "arduino", path: "/dev/ttyACM0", ...extra });

t.test("banner_timeout and baud default per protocol", async (t) => {
  const hub = parse({});
  const firmata = parse({ protocol: "firmata", channels: { light: { kind: "sensor", pin: "A0" } } });
  t.ok(hub.success && firmata.success);
  if (!hub.success || !firmata.success) return;
  t.same(linkTiming(hub.data), { baud: 115200, bannerTimeoutMs: 4000 });
  t.same(linkTiming(firmata.data), { baud: 57600, bannerTimeoutMs: 8000 }, "Firmata gets time for StandardFirmata's start-up blink");
  const own = parse({ protocol: "firmata", baud: 115200, banner_timeout: "12s", channels: { light: { kind: "sensor", pin: "A0" } } });
  t.ok(own.success);
  if (own.success) t.same(linkTiming(own.data), { baud: 115200, bannerTimeoutMs: 12000 }, "a value given wins");
});

t.test("Firmata needs pins; hubproto refuses them", async (t) => {
  const noChannels = parse({ protocol: "firmata" });
  t.notOk(noChannels.success);
  t.match(noChannels.error?.issues, [{ path: ["channels"], message: /required with protocol: firmata/ }]);
  const digitalSensor = parse({ protocol: "firmata", channels: { light: { kind: "sensor", pin: 3 } } });
  t.match(digitalSensor.error?.issues, [{ path: ["channels", "light", "pin"], message: /analog input/ }]);
  const hubPin = parse({ channels: { pump: { kind: "output", pin: 7 } } });
  t.match(hubPin.error?.issues, [{ path: ["channels", "pump", "pin"], message: /names its own pins/ }]);
});
