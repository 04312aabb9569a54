// A tiny stand-in for the Arduino core, enough to compile HubLink.h on a PC for
// test/drivers/arduino/host.test.ts: Stream over stdin/stdout and a settable millis().
#ifndef ARDUINO_SHIM_H
#define ARDUINO_SHIM_H
#include <stdint.h>
#include <stdio.h>

inline unsigned long& shimMillis() {
  static unsigned long ms = 0;
  return ms;
}
inline unsigned long millis() { return shimMillis(); }

class Stream {
 public:
  virtual ~Stream() {}
  virtual size_t write(uint8_t b) = 0;
  virtual int available() = 0;
  virtual int read() = 0;
};

// Reads the hub's lines from stdin, writes the board's to stdout.
class HostSerial : public Stream {
 public:
  size_t write(uint8_t b) override { return fputc(b, stdout) == EOF ? 0 : 1; }
  int available() override {
    if (peeked_ == -2) peeked_ = fgetc(stdin);
    return peeked_ == EOF ? 0 : 1;
  }
  int read() override {
    available();
    int c = peeked_;
    peeked_ = -2;
    return c;
  }

 private:
  int peeked_ = -2;
};
#endif
