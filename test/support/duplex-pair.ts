// Two connected in-memory Duplex streams that behave like the two ends of a TCP connection, so the
// broker can be served without a socket (broker.accept(side)). Written here rather than using
// stream.duplexPair: that one is missing before Node 20.17 and is half-open by default, whereas a
// net.Socket is not (allowHalfOpen: false), and the broker's close path relies on that.
//   - Each write() arrives on the other side as one chunk, on a later tick (never re-entrantly).
//   - end() on one side ends the other's readable side, which then ends its own writable side.
//   - destroy() on one side destroys the other (a reset): both emit 'close'.
import { Duplex } from "node:stream";

export function duplexPair(): [Duplex, Duplex] {
  let a: Duplex | undefined;
  let b: Duplex | undefined;
  const side = (peer: () => Duplex) =>
    new Duplex({
      allowHalfOpen: false,
      read() {
        // Data is pushed by the peer's write(); nothing to fetch.
      },
      write(chunk: Buffer, _encoding, callback) {
        process.nextTick(() => {
          const p = peer();
          if (!p.destroyed) p.push(chunk);
          callback();
        });
      },
      final(callback) {
        process.nextTick(() => {
          const p = peer();
          if (!p.destroyed) p.push(null);
          callback();
        });
      },
      destroy(err, callback) {
        const p = peer();
        if (!p.destroyed) process.nextTick(() => p.destroy());
        callback(err);
      },
    });
  a = side(() => b!);
  b = side(() => a!);
  return [a, b];
}
