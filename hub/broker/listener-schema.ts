// The config schema of one broker listener (`broker.listeners[]`): address, protocol (MQTT over TCP,
// TLS, WebSocket or secure WebSocket), TLS material and client certificates, anonymous access and a
// per-listener connection cap. Part of THE config schema (hub/config/schema.ts imports it); defaults
// live here and nowhere else. Rules that span fields (tls needs mqtts/wss, require_client_cert needs
// ca_file, ...) are in hub/broker/listener-check.ts, so they are reported at file:line:col.
import { z } from "zod";
import { int, nonEmpty } from "../config/schema-kit.js";

const bool = () => z.boolean({ error: "true or false" });

export const listenerTlsSchema = z
  .strictObject({
    cert_file: nonEmpty("a file path").optional().describe("PEM certificate of this server (followed by any intermediate CA certificates). Required for mqtts and wss."),
    key_file: nonEmpty("a file path").optional().describe("PEM private key of cert_file (unencrypted). Required for mqtts and wss."),
    ca_file: nonEmpty("a file path")
      .optional()
      .describe("PEM file of the CA certificates that sign client certificates. Required with require_client_cert; an empty or unreadable file stops the hub from starting."),
    // TLS 1.0 and 1.1 are deprecated (RFC 8996): not even offered as a choice.
    min_version: z
      .enum(["TLSv1.2", "TLSv1.3"], { error: "TLSv1.2 or TLSv1.3" })
      .default("TLSv1.2")
      .describe("Oldest TLS version accepted: TLSv1.2 or TLSv1.3. Older versions are always refused."),
    require_client_cert: bool()
      .default(false)
      .describe("Clients must present a certificate signed by a CA in ca_file; others are refused during the TLS handshake."),
    identity_as_username: bool()
      .default(false)
      .describe("Use the client certificate's subject common name (CN) as the MQTT user name; no password is asked. Needs require_client_cert."),
  })
  .describe("TLS settings of an mqtts or wss listener. File paths are relative to the working directory; the files are read again on SIGHUP.");

export const listenerSchema = z
  .strictObject({
    host: nonEmpty("a host name or IP address").describe("Address to listen on, e.g. 127.0.0.1, ::1 or 0.0.0.0."),
    port: int(0, 65535).describe("TCP port; 1883 is MQTT's, 8883 MQTT over TLS. 0 picks a free port (for tests)."),
    protocol: z
      .enum(["mqtt", "mqtts", "ws", "wss"], { error: "mqtt, mqtts, ws or wss" })
      .default("mqtt")
      .describe("Protocol spoken on this port: mqtt (MQTT over TCP), mqtts (MQTT over TLS), ws (MQTT over WebSocket, for browsers), wss (WebSocket over TLS). MQTT 3.1.1 and 5.0 on each."),
    path: z
      .string({ error: "a URL path starting with /" })
      .regex(/^\/[^\s?#]*$/, { error: "a URL path starting with / (e.g. /mqtt)" })
      .default("/mqtt")
      .describe("ws and wss: the URL path WebSocket clients connect to (ws://host:port/mqtt); other paths are refused. Unused by mqtt and mqtts."),
    tls: listenerTlsSchema.optional(),
    allow_anonymous: bool()
      .optional()
      .describe(
        "Let clients connect without a user name. Default: true on loopback addresses, false elsewhere. A listener on a network address starts only with authentication (a password file, or tls.require_client_cert with tls.identity_as_username) or with allow_anonymous: true written here.",
      ),
    max_connections: int(1)
      .optional()
      .describe("Simultaneous connections on this listener; further ones are refused at once. Default: only the broker-wide limits.max_connections."),
  })
  .describe("One address the embedded broker listens on.");

export type ListenerSpecConfig = z.output<typeof listenerSchema>;
export type ListenerTlsConfig = z.output<typeof listenerTlsSchema>;
