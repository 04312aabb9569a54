// Config pieces for GPIO hardware beyond the Pi's header and for the HTU21D sensor: the `gpio:`
// section (which sysfs chip is the header's, and MCP23017 expanders by name), the `expander` and
// `pull_up` fields of gpio_input/gpio_output, and the HTU21D resolution. Part of THE schema
// (hub/config/schema.ts imports it; defaults live here); the cross-checks are in check-gpio.ts.
import { z } from "zod";
import { int } from "./schema-kit.js";
import { duration } from "./duration.js";
import { SOC_GPIO_LABELS } from "../../drivers/io/gpio-chip.js";

const hexByte = (a: number) => `0x${a.toString(16).padStart(2, "0")}`;
const MCP_ADDRESSES = [0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27] as const;

const NAME_MSG = "a name of lowercase letters, digits, _ and - (e.g. relays)";
const expanderName = z.string({ error: NAME_MSG }).regex(/^[a-z0-9_-]+$/, { error: NAME_MSG });

export const mcp23017Schema = z
  .strictObject({
    name: expanderName.describe("Name devices use in `expander:`."),
    type: z.literal("mcp23017", { error: "mcp23017 (the only expander type)" }).default("mcp23017").describe("Expander chip. Default: mcp23017."),
    bus: int(0, 255).default(1).describe("I2C bus number: /dev/i2c-<bus>. Default: 1."),
    address: z
      .literal(MCP_ADDRESSES, { error: `one of ${MCP_ADDRESSES.map(hexByte).join(", ")}` })
      .default(0x20)
      .describe("I2C address, written in hex: 0x20 + A2A1A0 (address pins to GND = 0x20 ... all to VCC = 0x27). Default: 0x20."),
    interrupt_pin: int(0, 63)
      .optional()
      .describe(
        "BCM GPIO of the Pi wired to the expander's INTA (INTA and INTB are mirrored): an input change is read at once instead of at the next poll. Default: none (polling only).",
      ),
    poll_interval: duration()
      .refine((ms) => ms > 0, { error: "a duration > 0" })
      .prefault("50ms")
      .describe("Time between reads of the input pins (also with interrupt_pin, as a safety net). Default: 50ms."),
  })
  .describe("An MCP23017 16-bit I/O expander on I2C; its pins 0-7 (GPA0-7) and 8-15 (GPB0-7) serve gpio_input and gpio_output devices with `expander: <name>`.");

export const gpioSchema = z
  .strictObject({
    chip_labels: z
      .array(z.string({ error: "a chip label" }).min(1, { error: "a chip label" }), { error: "a list of chip labels" })
      .min(1, { error: "at least one label" })
      .default([...SOC_GPIO_LABELS])
      .describe(
        "Labels of the sysfs GPIO chip that carries the header's pins (cat /sys/class/gpio/gpiochip*/label), tried in order; BCM n is that chip's base + n. Default: pinctrl-bcm2835, pinctrl-bcm2711, pinctrl-rp1 (every Pi so far); if none matches, the only chip with 54 or more lines.",
      ),
    expanders: z.array(mcp23017Schema, { error: "a list of expanders" }).default([]).describe("GPIO expanders, by name. Default: none."),
  })
  .describe("GPIO: the Pi's own chip and expanders.");

/** `expander:` of gpio_input / gpio_output. */
export const expanderField = expanderName
  .optional()
  .describe("Name of a gpio.expanders entry: pin is then the expander's pin 0-15 (GPA0-7 = 0-7, GPB0-7 = 8-15). Default: the Pi's own GPIO.");

/** `pull_up:` of gpio_input. */
export const pullUpField = z
  .boolean({ error: "true or false" })
  .optional()
  .describe("Expander pins only: the chip's internal 100 kΩ pull-up (for a button or contact to ground). Default: true on an expander. The Pi's own pins take their pulls from the wiring or config.txt.");

/** `resolution:` of htu21d (user register bits 7 and 0). */
export const htu21dResolution = z
  .enum(["rh12_t14", "rh8_t12", "rh10_t13", "rh11_t11"], { error: "rh12_t14, rh8_t12, rh10_t13 or rh11_t11" })
  .default("rh12_t14")
  .describe("Resolution in bits, humidity / temperature: rh12_t14 (slowest, 66 ms, finest), rh11_t11, rh10_t13 or rh8_t12. Default: rh12_t14.");

export const HTU21D_DESCRIPTION =
  "TE HTU21D(F) (also Si7021, SHT21) on I2C at 0x40: temperature (°C) and humidity (%), CRC-checked.";
