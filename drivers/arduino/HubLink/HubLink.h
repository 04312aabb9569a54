// HubLink: the board side of hubproto 1 (drivers/arduino/PROTOCOL.md), header-only, for the
// Arduino IDE. Name your sensors and outputs, call begin() in setup() and loop() in loop(); the
// library prints the HELLO banner, sends readings with CRC-8 checksums, and obeys SET, PING,
// REPORT and HELLO (banner again: native-USB boards do not reset when the hub opens the port) from the hub. It uses only Stream::write/available/read and millis(), so the same code
// compiles on a PC with a small shim (test/drivers/arduino/shim) and is tested against the hub's parser.
#ifndef HUBLINK_H
#define HUBLINK_H

#include <Arduino.h>

#ifndef HUBLINK_MAX_CHANNELS
#define HUBLINK_MAX_CHANNELS 12
#endif
#define HUBLINK_LINE 64  // longest hub -> board line accepted

class HubLink {
 public:
  typedef float (*ReadFn)();
  typedef void (*WriteFn)(int value);

  HubLink(Stream& io, const char* board) : io_(io), board_(board) {}

  // A number: analogRead, a temperature... `decimals` digits are sent after the point.
  void sensor(const char* name, const char* unit, ReadFn read, uint8_t decimals = 2) { add(name, "sensor", unit, read, 0, decimals); }
  // An input that is on (non-zero) or off: a button, a door contact.
  void binary(const char* name, ReadFn read) { add(name, "binary", 0, read, 0, 0); }
  // An on/off output: `write` receives 1 or 0 when the hub sends ON / OFF.
  void output(const char* name, WriteFn write) { add(name, "output", 0, 0, write, 0); }
  // A 0..255 output (analogWrite).
  void pwm(const char* name, WriteFn write) { add(name, "pwm", 0, 0, write, 0); }
  // Time between readings of sensors and binary inputs (binary inputs are also sent on change).
  void every(unsigned long ms) { interval_ = ms; }

  // Call in setup() after Serial.begin(): prints the banner.
  void begin() {
    banner();
    last_ = millis();
  }

  // Call in loop(): handles commands and sends readings when due. Never blocks.
  void loop() {
    while (io_.available() > 0) {
      int c = io_.read();
      if (c < 0) break;
      if (c == '\n') {
        if (overflow_) error("too_long", 0);
        else handle();
        len_ = 0;
        overflow_ = false;
      } else if (len_ < HUBLINK_LINE - 1) {
        in_[len_++] = (char)c;
      } else {
        overflow_ = true;
      }
    }
    unsigned long now = millis();
    for (uint8_t i = 0; i < count_; i++) {
      Channel& c = ch_[i];
      if (c.kind[0] == 'b' && c.read) {  // binary: report changes at once
        int v = c.read() != 0;
        if (v != c.lastBinary) {
          c.lastBinary = v;
          reading(i);
        }
      }
    }
    if (interval_ && now - last_ >= interval_) {
      last_ = now;
      for (uint8_t i = 0; i < count_; i++)
        if (ch_[i].read) reading(i);
    }
  }

  // The banner: the protocol version, the board's name and its channels (PROTOCOL.md).
  void banner() {
    start();
    put("HELLO hubproto=1 board=");
    putEscaped(board_);
    put(" fw=HubLink-1.1");
    for (uint8_t i = 0; i < count_; i++) {
      put(" ch=");
      putEscaped(ch_[i].name);
      put(":");
      put(ch_[i].kind);
      if (ch_[i].unit && ch_[i].unit[0]) {
        put(":");
        putEscaped(ch_[i].unit);
      }
    }
    finish();
  }

  // Sends an event, e.g. event("button", "long press"); published on hub/<device>/event.
  void event(const char* name, const char* text = "") {
    start();
    put("EV ");
    put(name);
    if (text && text[0]) {
      put(" ");
      putEscaped(text);
    }
    finish();
  }

  // Sends every channel's current value.
  void report() {
    for (uint8_t i = 0; i < count_; i++) reading(i);
  }

 private:
  struct Channel {
    const char* name;
    const char* kind;
    const char* unit;
    ReadFn read;
    WriteFn write;
    uint8_t decimals;
    int value;       // last value written to an output
    int lastBinary;  // last binary state sent (-1: none yet)
  };

  Stream& io_;
  const char* board_;
  Channel ch_[HUBLINK_MAX_CHANNELS];
  uint8_t count_ = 0;
  unsigned long interval_ = 5000;
  unsigned long last_ = 0;
  char in_[HUBLINK_LINE];
  uint8_t len_ = 0;
  bool overflow_ = false;
  uint8_t crc_ = 0;

  void add(const char* name, const char* kind, const char* unit, ReadFn read, WriteFn write, uint8_t decimals) {
    if (count_ >= HUBLINK_MAX_CHANNELS) return;
    Channel& c = ch_[count_++];
    c.name = name;
    c.kind = kind;
    c.unit = unit;
    c.read = read;
    c.write = write;
    c.decimals = decimals;
    c.value = 0;
    c.lastBinary = -1;
  }

  // CRC-8/SMBUS: polynomial 0x07, initial value 0, no reflection, no final XOR (PROTOCOL.md).
  static uint8_t crcStep(uint8_t crc, uint8_t b) {
    crc ^= b;
    for (uint8_t i = 0; i < 8; i++) crc = (crc & 0x80) ? (uint8_t)((crc << 1) ^ 0x07) : (uint8_t)(crc << 1);
    return crc;
  }
  static char hexDigit(uint8_t v) { return v < 10 ? (char)('0' + v) : (char)('A' + v - 10); }
  static int hexValue(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }

  void start() { crc_ = 0; }
  void putc_(char c) {
    crc_ = crcStep(crc_, (uint8_t)c);
    io_.write((uint8_t)c);
  }
  void put(const char* s) {
    while (*s) putc_(*s++);
  }
  // Escapes as PROTOCOL.md says: \\ for a backslash, \s for a space, \xHH outside 0x21..0x7E.
  void putEscaped(const char* s) {
    for (; *s; s++) {
      uint8_t b = (uint8_t)*s;
      if (b == '\\') put("\\\\");
      else if (b == ' ') put("\\s");
      else if (b < 0x21 || b > 0x7E) {
        putc_('\\');
        putc_('x');
        putc_(hexDigit(b >> 4));
        putc_(hexDigit(b & 15));
      } else putc_((char)b);
    }
  }
  void finish() {
    uint8_t crc = crc_;
    io_.write((uint8_t)'*');
    io_.write((uint8_t)hexDigit(crc >> 4));
    io_.write((uint8_t)hexDigit(crc & 15));
    io_.write((uint8_t)'\n');
  }
  void putLong(long v) {
    char buf[12];
    uint8_t n = 0;
    unsigned long u = v < 0 ? (unsigned long)(-(v + 1)) + 1 : (unsigned long)v;
    if (v < 0) putc_('-');
    do {
      buf[n++] = (char)('0' + u % 10);
      u /= 10;
    } while (u);
    while (n) putc_(buf[--n]);
  }
  // A float as plain decimal with `decimals` digits (no exponent: the hub refuses nan and inf).
  void putFloat(float v, uint8_t decimals) {
    if (v != v || v > 2e9f || v < -2e9f) v = 0;
    unsigned long scale = 1;
    for (uint8_t i = 0; i < decimals; i++) scale *= 10;
    bool neg = v < 0;
    float a = neg ? -v : v;
    unsigned long whole = (unsigned long)a;
    unsigned long frac = (unsigned long)((a - (float)whole) * scale + 0.5f);
    if (frac >= scale) {
      whole++;
      frac -= scale;
    }
    if (neg && (whole || frac)) putc_('-');
    putLong((long)whole);
    if (decimals) {
      putc_('.');
      for (unsigned long d = scale / 10; d; d /= 10) putc_((char)('0' + (frac / d) % 10));
    }
  }

  void reading(uint8_t i) {
    Channel& c = ch_[i];
    start();
    put("R ");
    put(c.name);
    put(" ");
    if (c.write) putLong(c.value);
    else if (c.kind[0] == 'b') putLong(c.read() != 0);
    else putFloat(c.read(), c.decimals);
    finish();
  }

  void error(const char* code, const char* text) {
    start();
    put("ERR ");
    put(code);
    if (text && text[0]) {
      put(" ");
      putEscaped(text);
    }
    finish();
  }

  int find(const char* name) {
    for (uint8_t i = 0; i < count_; i++) {
      const char* a = ch_[i].name;
      const char* b = name;
      while (*a && *a == *b) a++, b++;
      if (!*a && !*b) return i;
    }
    return -1;
  }

  // One hub line in in_[0..len_): check the checksum, then act on it.
  void handle() {
    if (len_ && in_[len_ - 1] == '\r') len_--;
    in_[len_] = 0;
    if (len_ < 4 || in_[len_ - 3] != '*') return error("bad_line", 0);
    int hi = hexValue(in_[len_ - 2]), lo = hexValue(in_[len_ - 1]);
    uint8_t crc = 0;
    for (uint8_t i = 0; i < len_ - 3; i++) crc = crcStep(crc, (uint8_t)in_[i]);
    if (hi < 0 || lo < 0 || crc != (uint8_t)(hi * 16 + lo)) return error("checksum", 0);
    in_[len_ - 3] = 0;
    // Tokens: verb, then up to two arguments; further ones are ignored (forward compatibility).
    char* tok[3] = {0, 0, 0};
    uint8_t n = 0;
    for (char* p = in_; *p && n < 3;) {
      while (*p == ' ') *p++ = 0;
      if (!*p) break;
      tok[n++] = p;
      while (*p && *p != ' ') p++;
    }
    for (char* p = in_; p < in_ + len_ - 3; p++)
      if (*p == ' ') *p = 0;
    if (!tok[0]) return error("bad_line", 0);
    if (same(tok[0], "PING")) {
      start();
      put("PONG ");
      put(tok[1] ? tok[1] : "");
      finish();
    } else if (same(tok[0], "REPORT")) {
      report();
    } else if (same(tok[0], "HELLO")) {
      banner();
    } else if (same(tok[0], "SET") && tok[1] && tok[2]) {
      int i = find(tok[1]);
      if (i < 0) return error("unknown_channel", tok[1]);
      Channel& c = ch_[i];
      if (!c.write) return error("read_only", tok[1]);
      long v = parseLong(tok[2]);
      if (c.kind[0] == 'o') v = v != 0;
      else if (v < 0) v = 0;
      else if (v > 255) v = 255;
      c.value = (int)v;
      c.write(c.value);
      reading((uint8_t)i);  // the confirmation the hub publishes
    } else {
      error("unknown_command", tok[0]);
    }
  }
  static bool same(const char* a, const char* b) {
    while (*a && *a == *b) a++, b++;
    return *a == *b;
  }
  static long parseLong(const char* s) {
    long v = 0;
    bool neg = *s == '-';
    if (*s == '-' || *s == '+') s++;
    while (*s >= '0' && *s <= '9') v = v * 10 + (*s++ - '0');
    if (*s == '.' && s[1] >= '5' && s[1] <= '9') v++;  // round half up
    return neg ? -v : v;
  }
};

#endif
