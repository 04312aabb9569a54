// HubLink example: a soil moisture probe on A0, a temperature sensor (TMP36) on A1, a door
// contact on pin 2 and a pump relay on pin 7, a fan on PWM pin 9. Rename them, add yours, flash it
// (Arduino IDE: Sketch → Upload), then point the hub at the board (README "Arduino").
// Each channel becomes the topic hub/<device>/<channel>; outputs obey hub/<device>/<channel>/set.
#include <HubLink.h>

HubLink hub(Serial, "greenhouse");  // the board's name, shown in the hub's log

float soilMoisture() { return analogRead(A0) * 100.0 / 1023.0; }            // 0..100 %
float temperature() { return (analogRead(A1) * 5.0 / 1023.0 - 0.5) * 100.0; }  // TMP36: °C
float door() { return digitalRead(2) == LOW; }                                 // contact to GND: closed = ON
void pump(int on) { digitalWrite(7, on ? HIGH : LOW); }
void fan(int level) { analogWrite(9, level); }                                 // 0..255

void setup() {
  pinMode(2, INPUT_PULLUP);
  pinMode(7, OUTPUT);
  pinMode(9, OUTPUT);
  Serial.begin(115200);  // the hub's default for hubproto (config: baud)
  hub.sensor("soil_moisture", "%", soilMoisture, 1);
  hub.sensor("temperature", "°C", temperature, 1);
  hub.binary("door", door);
  hub.output("pump", pump);
  hub.pwm("fan", fan);
  hub.every(10000);  // readings every 10 s; the door is also sent when it changes
  hub.begin();       // the banner: the hub waits for it after opening the port
}

void loop() {
  hub.loop();  // keep loop() free of long delay()s: the hub pings every 5 s
}
