// The example sketch and the HubLink library build for a real Arduino Uno (ATmega328P; also the
// Mega 2560 and the native-USB Leonardo, whose Serial is another class) the way the
// Arduino IDE builds them (flags from the core's platform.txt: -Os, LTO, gc-sections), against the
// real Arduino AVR core headers, with every warning on and fatal (-Wall -Wextra -Werror) for the
// sketch and the library, and the program fits: flash within the Uno's 32256 bytes (32 KiB less the
// bootloader), static RAM under 75% of its 2048 bytes (above that the IDE warns of stability
// problems: the stack needs the rest). Sizes are printed (avr-size). Needs Debian's packages
// gcc-avr avr-libc arduino-core-avr; skipped with a reason without them. The host test
// (host.test.ts) checks behaviour; this one checks that what users flash compiles on the target.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import t from "tap";
import { REPO_ROOT } from "../../support/spawn.js";

const AVR = process.env.ARDUINO_AVR_DIR ?? "/usr/share/arduino/hardware/arduino/avr";
const CORE = join(AVR, "cores/arduino");
const LIBRARY = join(REPO_ROOT, "drivers/arduino/HubLink");

const tools = ["avr-gcc", "avr-g++", "avr-gcc-ar", "avr-size"];
const missingTool = tools.find((tool) => spawnSync(tool, ["--version"], { stdio: "ignore" }).error);
const skip = missingTool
  ? `${missingTool} is not installed (apt install gcc-avr avr-libc arduino-core-avr)`
  : !existsSync(join(CORE, "Arduino.h"))
    ? `no Arduino AVR core at ${AVR} (apt install arduino-core-avr, or set ARDUINO_AVR_DIR)`
    : false;
if (skip) t.comment(`skipping the AVR build test: ${skip}`);

interface Board {
  name: string;
  mcu: string;
  variant: string;
  define: string;
  flash: number;
  ram: number;
  extra?: string[];
}

// boards.txt: uno.upload.maximum_size / maximum_data_size, build.mcu, build.variant, build.board.
const UNO: Board = { name: "Arduino Uno", mcu: "atmega328p", variant: "standard", define: "ARDUINO_AVR_UNO", flash: 32256, ram: 2048 };
// The Mega's ATmega2560: more pins, 4 hardware serial ports, a 3-byte program counter.
const MEGA: Board = { name: "Arduino Mega 2560", mcu: "atmega2560", variant: "mega", define: "ARDUINO_AVR_MEGA2560", flash: 253952, ram: 8192 };
// A native-USB board: there Serial is the USB CDC port (Serial_), not HardwareSerial.
const LEONARDO: Board = {
  name: "Arduino Leonardo",
  mcu: "atmega32u4",
  variant: "leonardo",
  define: "ARDUINO_AVR_LEONARDO",
  flash: 28672,
  ram: 2560,
  extra: ["-DUSB_VID=0x2341", "-DUSB_PID=0x8036", '-DUSB_MANUFACTURER="Unknown"', '-DUSB_PRODUCT="Arduino Leonardo"'],
};

const run = (cmd: string, args: string[]) => spawnSync(cmd, args, { encoding: "utf8" });

type Built = { error: string } | { flash: number; ram: number; text: number; data: number; bss: number; warnings: string };

/** Builds the Basic example for `board`; returns the compiler's messages and avr-size's figures. */
function build(board: Board, dir: string): Built {
  mkdirSync(dir, { recursive: true });
  const defs = [`-mmcu=${board.mcu}`, "-DF_CPU=16000000L", "-DARDUINO=10819", `-D${board.define}`, "-DARDUINO_ARCH_AVR", ...(board.extra ?? [])];
  const inc = ["-I", CORE, "-I", join(AVR, "variants", board.variant)];
  const cFlags = ["-c", "-g", "-Os", "-std=gnu11", "-ffunction-sections", "-fdata-sections", "-flto", "-fno-fat-lto-objects"];
  const cppFlags = ["-c", "-g", "-Os", "-std=gnu++11", "-fpermissive", "-fno-exceptions", "-ffunction-sections", "-fdata-sections", "-fno-threadsafe-statics", "-Wno-error=narrowing", "-flto"];
  // The core, compiled as the IDE does with its default warning level (the core's own warnings are
  // not ours). Debian pairs core 1.8.7 with avr-gcc 5.4, whose <float.h> has no DECIMAL_DIG in C++11
  // (WString.cpp uses it); GCC's built-in __DECIMAL_DIG__ is the same number.
  const objects: string[] = [];
  for (const f of readdirSync(CORE).sort()) {
    const src = join(CORE, f);
    const obj = join(dir, `${f}.o`);
    const r = f.endsWith(".c")
      ? run("avr-gcc", [...cFlags, "-w", ...defs, ...inc, src, "-o", obj])
      : f.endsWith(".cpp")
        ? run("avr-g++", [...cppFlags, "-w", "-DDECIMAL_DIG=__DECIMAL_DIG__", ...defs, ...inc, src, "-o", obj])
        : f.endsWith(".S")
          ? run("avr-gcc", ["-c", "-g", "-x", "assembler-with-cpp", "-flto", ...defs, ...inc, src, "-o", obj])
          : undefined;
    if (!r) continue;
    if (r.status !== 0) return { error: `core ${f}: ${r.stderr}` };
    objects.push(obj);
  }
  const core = join(dir, "core.a");
  const ar = run("avr-gcc-ar", ["rcs", core, ...objects]);
  if (ar.status !== 0) return { error: `avr-gcc-ar: ${ar.stderr}` };
  // The IDE's sketch preprocessing: Arduino.h first, then the .ino with its line numbers kept.
  const ino = join(LIBRARY, "examples/Basic/Basic.ino");
  const sketch = join(dir, "Basic.ino.cpp");
  writeFileSync(sketch, `#include <Arduino.h>\n#line 1 "${ino}"\n${readFileSync(ino, "utf8")}`);
  const cc = run("avr-g++", [...cppFlags, "-Wall", "-Wextra", "-Werror", ...defs, ...inc, "-I", LIBRARY, sketch, "-o", join(dir, "Basic.ino.cpp.o")]);
  if (cc.status !== 0) return { error: `the sketch does not compile without warnings:\n${cc.stderr}` };
  const elf = join(dir, "Basic.elf");
  const ld = run("avr-gcc", ["-Wall", "-Os", "-g", "-flto", "-fuse-linker-plugin", "-Wl,--gc-sections", `-mmcu=${board.mcu}`, "-o", elf, join(dir, "Basic.ino.cpp.o"), core, "-lm"]);
  if (ld.status !== 0) return { error: `link: ${ld.stderr}` };
  const size = run("avr-size", ["-A", elf]);
  const section = (name: string) => Number(new RegExp(`^\\${name}\\s+(\\d+)`, "m").exec(size.stdout)?.[1] ?? 0);
  const text = section(".text");
  const data = section(".data");
  const bss = section(".bss");
  return { flash: text + data, ram: data + bss, text, data, bss, warnings: cc.stderr + ld.stderr };
}

for (const board of [UNO, MEGA, LEONARDO]) {
  t.test(`the Basic example builds for an ${board.name} (${board.mcu}) and fits`, { skip }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), "hublink-avr-"));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const r = build(board, join(dir, board.variant));
    if ("error" in r) {
      t.fail(r.error);
      return;
    }
    t.equal(r.warnings, "", "no warnings from the sketch, the library or the link");
    t.comment(
      `${board.name}: flash ${r.flash} of ${board.flash} bytes (${Math.round((100 * r.flash) / board.flash)}%), ` +
        `static RAM ${r.ram} of ${board.ram} bytes (${Math.round((100 * r.ram) / board.ram)}%) [.text ${r.text} .data ${r.data} .bss ${r.bss}]`,
    );
    t.ok(r.text > 1000, "a real program was linked (the core's Serial and the library are in it)");
    t.ok(r.flash <= board.flash, `fits in flash: ${r.flash} <= ${board.flash}`);
    t.ok(r.ram <= board.ram * 0.75, `static RAM leaves a quarter for the stack: ${r.ram} <= ${board.ram * 0.75}`);
  });
}
