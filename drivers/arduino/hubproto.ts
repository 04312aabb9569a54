// The hubproto session (PROTOCOL.md) over one open port: everything before the HELLO banner is
// discarded (the board resets when the port opens and its bootloader may print), then readings,
// events and pongs are passed up and every refused line is counted, never published.
import { formatHubCommand, lineSplitter, PROTOCOL_VERSION, parseBoardLine } from "./protocol.js";
import type { ProtocolSession, SessionFactory } from "./session.js";

export const hubprotoSession: SessionFactory = (h): ProtocolSession => {
  let ready = false;
  let seq = 0;
  let awaiting: string | undefined;
  const send = (text: string) => {
    h.write(Buffer.from(text, "latin1")).catch((err) => h.log.debug("write failed", { error: err }));
  };
  const splitter = lineSplitter(
    (line) => {
      const r = parseBoardLine(line);
      if (!ready && !(r.ok && r.message.type === "hello")) {
        h.count("discarded_lines");
        return;
      }
      if (!r.ok) {
        h.count(r.reason === "checksum" ? "checksum_errors" : "bad_lines", r.detail);
        return;
      }
      const m = r.message;
      switch (m.type) {
        case "hello":
          if (m.version !== PROTOCOL_VERSION) {
            h.fail(`the board speaks hubproto=${m.version}; this hub speaks hubproto=${PROTOCOL_VERSION} (update the ${m.version > PROTOCOL_VERSION ? "hub" : "HubLink library on the board"})`);
            return;
          }
          for (const note of m.notes) h.log.warn("banner", { note });
          // A second banner while running: the sketch restarted (watchdog, brown-out). The link
          // treats it as a fresh handshake and re-sends the outputs the board has just forgotten.
          ready = true;
          awaiting = undefined;
          h.ready({ board: m.board, protocol: "hubproto", version: String(m.version), channels: m.channels, fields: m.fields });
          return;
        case "reading":
          h.reading(m.channel, m.value);
          return;
        case "event":
          h.event(m.name, m.text);
          return;
        case "pong":
          // Only the answer to the latest ping counts: an old one says nothing about now.
          if (awaiting !== undefined && m.token === awaiting) {
            awaiting = undefined;
            h.pong();
          }
          return;
        case "error":
          h.count("board_errors", `${m.code} ${m.text}`.trim());
          return;
        case "unknown":
          h.count("unknown_lines", m.verb);
          return;
      }
    },
    () => h.count(ready ? "bad_lines" : "discarded_lines", "line too long"),
  );
  return {
    data: (chunk) => splitter.push(chunk),
    ping() {
      awaiting = String(++seq);
      send(formatHubCommand({ type: "ping", token: awaiting }));
    },
    set: (channel, value) => send(formatHubCommand({ type: "set", channel, value })),
    report: () => send(formatHubCommand({ type: "report" })),
    // HubLink 1.1 answers with its banner; 1.0 with ERR unknown_command, discarded before a banner.
    requestBanner() {
      if (!ready) send(formatHubCommand({ type: "hello" }));
    },
    dispose() {
      splitter.reset();
    },
  };
};
