// The serial-link timing of an Arduino device: its own baud rate and banner timeout, or its
// protocol's default. Apart from schema.ts (zod) because the running hub needs only this, and the
// schema is never loaded into the running hub (config is validated in a child: hub/config/isolated.ts).

/**
 * Defaults of the keys whose default depends on the protocol (schema.ts leaves them undefined;
 * its descriptions say the same numbers). Firmata's 8 s: a real Uno running
 * StandardFirmata answers about 3.1 s after the port opens, old Nano bootloaders later.
 */
export const PROTOCOL_DEFAULTS = {
  hubproto: { baud: 115200, bannerTimeoutMs: 4_000 },
  firmata: { baud: 57600, bannerTimeoutMs: 8_000 },
} as const;

/** The baud rate and banner timeout a device uses: its own, or its protocol's default. */
export function linkTiming(d: { protocol: "hubproto" | "firmata"; baud?: number | undefined; banner_timeout?: number | undefined }): { baud: number; bannerTimeoutMs: number } {
  const def = PROTOCOL_DEFAULTS[d.protocol];
  return { baud: d.baud ?? def.baud, bannerTimeoutMs: d.banner_timeout ?? def.bannerTimeoutMs };
}
