// BCM number → sysfs GPIO number. Since kernel 6.6 the SoC's chip no longer starts at 0 (Pi 4: base
// 512, BCM17 → 529; Pi 5: base 571, BCM17 → 588), and writing a bare BCM number to
// /sys/class/gpio/export fails with EINVAL. So the number is never hard-coded: at start we read
// label/base/ngpio of every /sys/class/gpio/gpiochip*, pick the SoC's pin controller by label
// (fallback: the one chip with >= 54 lines) and add its base. See hardware-notes.md "GPIO".
import type { Logger } from "../../hub/contracts.js";

/** The two reads the resolver needs, injected so tests run on fixture trees. */
export interface SysfsReader {
  readdir(path: string): Promise<string[]>;
  readFile(path: string): Promise<string>;
}

export const GPIO_ROOT = "/sys/class/gpio";

/** Pin controllers of the Pi's SoC: Pi 0–3 (BCM2835/6/7), Pi 4 (BCM2711), Pi 5 (RP1). */
export const SOC_GPIO_LABELS: readonly string[] = ["pinctrl-bcm2835", "pinctrl-bcm2711", "pinctrl-rp1"];

/** The header's GPIO bank has 54 lines on every Pi (BCM 0–53); expanders have far fewer. */
const MIN_SOC_LINES = 54;

export interface GpioChipInfo {
  /** Directory name, e.g. gpiochip512. */
  name: string;
  label: string;
  base: number;
  ngpio: number;
}

export interface GpioChip extends GpioChipInfo {
  /** The sysfs number of a BCM line; throws for a line the chip does not have. */
  sysfsNumber(bcm: number): number;
}

function errorCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err ? String((err as { code: unknown }).code) : undefined;
}

/** Every gpiochip* under root, sorted by base. */
export async function listGpioChips(fs: SysfsReader, root = GPIO_ROOT): Promise<GpioChipInfo[]> {
  let names: string[];
  try {
    names = await fs.readdir(root);
  } catch (err) {
    if (errorCode(err) === "ENOENT") {
      throw new Error(
        `${root} does not exist: this kernel offers no sysfs GPIO (not a Raspberry Pi, or CONFIG_GPIO_SYSFS is off). ` +
          "Use hardware: simulate (or --simulate) to run without GPIO hardware.",
      );
    }
    if (errorCode(err) === "EACCES") throw new Error(`cannot list ${root}: permission denied; add the hub's user to the gpio group`);
    throw err;
  }
  const chips: GpioChipInfo[] = [];
  for (const name of names) {
    if (!/^gpiochip\d+$/.test(name)) continue;
    const read = async (f: string) => (await fs.readFile(`${root}/${name}/${f}`)).trim();
    const label = await read("label");
    const base = Number.parseInt(await read("base"), 10);
    const ngpio = Number.parseInt(await read("ngpio"), 10);
    if (!Number.isInteger(base) || !Number.isInteger(ngpio)) continue;
    chips.push({ name, label, base, ngpio });
  }
  return chips.sort((a, b) => a.base - b.base);
}

/**
 * The SoC's chip: the first whose label is in `labels` (in the order of `labels`), else the only chip
 * with >= 54 lines. `fallback` says which rule decided, so the caller can warn about a guess.
 */
export function pickGpioChip(
  chips: readonly GpioChipInfo[],
  labels: readonly string[] = SOC_GPIO_LABELS,
  root = GPIO_ROOT,
): { chip: GpioChipInfo; fallback: boolean } {
  for (const label of labels) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return { chip, fallback: false };
  }
  const big = chips.filter((c) => c.ngpio >= MIN_SOC_LINES);
  const seen = chips.map((c) => `${c.name} "${c.label}" (${c.ngpio} lines)`).join(", ") || "none";
  if (big.length === 1) return { chip: big[0]!, fallback: true };
  if (big.length === 0) {
    throw new Error(`no GPIO chip labelled ${labels.join(", ")} and none with >= ${MIN_SOC_LINES} lines under ${root}; found: ${seen}`);
  }
  throw new Error(`no GPIO chip labelled ${labels.join(", ")} and several with >= ${MIN_SOC_LINES} lines under ${root}, cannot tell which is the header's: ${seen}`);
}

export function gpioChip(info: GpioChipInfo): GpioChip {
  return {
    ...info,
    sysfsNumber(bcm: number): number {
      if (!Number.isInteger(bcm) || bcm < 0 || bcm >= info.ngpio) {
        throw new Error(`GPIO ${bcm} does not exist: ${info.name} ("${info.label}") has lines 0..${info.ngpio - 1}`);
      }
      return info.base + bcm;
    },
  };
}

/** Reads the tree, picks the chip and logs the mapping (BCM n → sysfs base + n). */
export async function resolveGpioChip(
  fs: SysfsReader,
  opts: { root?: string; labels?: readonly string[]; log?: Logger } = {},
): Promise<GpioChip> {
  const root = opts.root ?? GPIO_ROOT;
  const chips = await listGpioChips(fs, root);
  const { chip, fallback } = pickGpioChip(chips, opts.labels, root);
  const fields = { chip: chip.name, label: chip.label, base: chip.base, ngpio: chip.ngpio, mapping: `BCM n -> sysfs ${chip.base} + n` };
  if (fallback) opts.log?.warn("GPIO chip chosen by line count (no known label)", fields);
  else opts.log?.info("GPIO chip", fields);
  return gpioChip(chip);
}
