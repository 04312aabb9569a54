// The host program of test/drivers/arduino/host.test.ts: HubLink.h with a few channels, driven
// through the shim; the test feeds hub lines on stdin and parses stdout with the hub's parser.
#include <Arduino.h>
#include <HubLink.h>

static HostSerial io;
HubLink hub(io, "host test");
static int pumpState = -1;
static int fanLevel = -1;
float soil() { return 41.5f; }
float temp() { return -3.25f; }
float door() { return 1; }
void pump(int on) { pumpState = on; }
void fan(int v) { fanLevel = v; }

int main() {
  hub.sensor("soil", "%", soil, 1);
  hub.sensor("temp", "\xC2\xB0" "C", temp, 2);
  hub.binary("door", door);
  hub.output("pump", pump);
  hub.pwm("fan", fan);
  hub.every(1000);
  hub.begin();
  shimMillis() = 1000;
  hub.loop();  // reads every stdin line, answers, then sends the due readings
  hub.event("note", "back\\slash and space");
  fprintf(stderr, "pump=%d fan=%d\n", pumpState, fanLevel);
  return 0;
}
