// The `arduino` device type's options, as a zod shape that hub/config/schema.ts wraps with
// deviceType() (drivers/ may not import hub/, so the duration parser is passed in), plus the
// cross-field check: Firmata needs every channel listed with its pin; hubproto boards name their
// pins themselves in the sketch.
import { z } from "zod";

export { linkTiming, PROTOCOL_DEFAULTS } from "./timing.js";

type Duration = () => z.ZodType<number, string>;

const NAME_MSG = "a channel name of lowercase letters, digits, _ and - (e.g. soil_moisture)";
const PIN_MSG = "a digital pin number (e.g. 7) or an analog pin A0..A15";

const channelSchema = z
  .strictObject({
    kind: z
      .enum(["sensor", "binary", "output", "pwm"], { error: "sensor, binary, output or pwm" })
      .describe(
        "sensor: a number (analog value, temperature...); binary: an input that is ON or OFF (button, contact); output: a pin switched ON/OFF from <base_topic>/<device>/<channel>/set; pwm: an output set to 0..255 from .../set.",
      ),
    pin: z
      .union([z.int().min(0).max(127), z.string().regex(/^A([0-9]|1[0-5])$/)], { error: PIN_MSG })
      .optional()
      .describe("Firmata only: the board pin, a number for digital pins (binary, output, pwm) or A0..A15 for analog inputs (sensor)."),
    pullup: z.boolean({ error: "true or false" }).default(false).describe("Firmata binary inputs: switch on the pin's pull-up resistor (a button to GND reads ON when released). Default: false."),
    unit: z.string({ error: "a string" }).optional().describe("Unit shown to users (e.g. %, °C, V). Default: the banner's (hubproto), none (Firmata)."),
    precision: z.int({ error: "an integer 0..10" }).min(0).max(10).optional().describe("Decimal places published for sensors. Default: as the board sends it."),
  })
  .describe("One channel of the board: a sensor, a binary input or an output.");

export function arduinoShape(duration: Duration) {
  return {
    path: z
      .string({ error: "a device path such as /dev/serial/by-id/usb-Arduino..." })
      .min(1, { error: "a device path such as /dev/serial/by-id/usb-Arduino..." })
      .describe(
        "The board's serial device. Prefer the stable /dev/serial/by-id/usb-... name (ls /dev/serial/by-id/) over /dev/ttyACM0, which can change when the board is replugged.",
      ),
    protocol: z
      .enum(["hubproto", "firmata"], { error: "hubproto or firmata" })
      .default("hubproto")
      .describe("hubproto: the board runs a sketch using the HubLink library (drivers/arduino/HubLink). firmata: the board runs the stock StandardFirmata example. Default: hubproto."),
    baud: z
      .literal([300, 1200, 2400, 4800, 9600, 19200, 38400, 57600, 74880, 115200, 230400, 250000, 500000, 1000000], { error: "a baud rate such as 9600, 57600 or 115200" })
      .optional()
      .describe("Serial speed; must match the sketch's Serial.begin(). Default: 115200 for hubproto, 57600 for firmata (StandardFirmata's)."),
    channels: z
      .record(z.string().regex(/^[a-z0-9_-]{1,32}$/, { error: NAME_MSG }), channelSchema, { error: "a mapping of channel names" })
      .optional()
      .describe(
        "The board's channels, by name; each is published on <base_topic>/<device>/<channel>. hubproto: optional (the board announces its channels in its banner; list them here to set units/precision or to have Home Assistant entities before the board is first seen). firmata: required, with pins.",
      ),
    banner_timeout: duration()
      .optional()
      .describe(
        "Time from opening the port (which resets most boards) to the board's banner (hubproto) or firmware report (firmata). Default: 4s for hubproto (the bootloader waits about 1 s, then setup() prints the banner), 8s for firmata (StandardFirmata blinks its version for about 2 s first: a Uno answers after about 3 s, boards with an old bootloader later).",
      ),
    ping_interval: duration().prefault("5s").describe("Time between heartbeat pings while the board is online. Default: 5s."),
    ping_timeout: duration()
      .prefault("2s")
      .describe("A ping not answered within this time means the sketch hung: the board is marked offline and the port reopened, which resets it. Default: 2s."),
    sampling_interval: duration()
      .prefault("1s")
      .describe("Firmata only: how often the board sends analog values (Firmata's sampling interval, 10ms..65s). Default: 1s."),
  };
}

type ArduinoValue = {
  protocol: "hubproto" | "firmata";
  channels?: Record<string, { kind: string; pin?: number | string }>;
};

/** Cross-field rules, reported at the offending key. */
export function checkArduino(v: ArduinoValue, ctx: { addIssue(i: { code: "custom"; message: string; path: (string | number)[]; input?: unknown }): void }): void {
  const channels = v.channels ?? {};
  if (v.protocol === "firmata" && Object.keys(channels).length === 0) {
    ctx.addIssue({ code: "custom", message: "channels: required with protocol: firmata (which pins to use, and how)", path: ["channels"], input: v.channels });
  }
  for (const [name, c] of Object.entries(channels)) {
    if (v.protocol === "hubproto") {
      if (c.pin !== undefined) ctx.addIssue({ code: "custom", message: "pin is for protocol: firmata; a hubproto sketch names its own pins", path: ["channels", name, "pin"], input: c.pin });
      continue;
    }
    if (c.pin === undefined) {
      ctx.addIssue({ code: "custom", message: `a pin (${c.kind === "sensor" ? "A0..A15" : "a digital pin number"}) is required with protocol: firmata`, path: ["channels", name], input: c });
    } else if (c.kind === "sensor" && typeof c.pin !== "string") {
      ctx.addIssue({ code: "custom", message: "a Firmata sensor is an analog input: pin A0..A15", path: ["channels", name, "pin"], input: c.pin });
    } else if (c.kind !== "sensor" && typeof c.pin === "string") {
      ctx.addIssue({ code: "custom", message: `a ${c.kind} channel needs a digital pin number`, path: ["channels", name, "pin"], input: c.pin });
    }
  }
}
