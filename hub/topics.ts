// The hub's own topic layout (DESIGN.md §5): hub/<device>/<quantity>, hub/<device>/set,
// hub/<device>/availability, hub/status. The base topic is configurable.
import type { Topics } from "./contracts.js";

export function hubTopics(base: string): Topics {
  return {
    base,
    state: (device, quantity) => (quantity ? `${base}/${device}/${quantity}` : `${base}/${device}`),
    set: (device) => `${base}/${device}/set`,
    availability: (device) => `${base}/${device}/availability`,
    status: () => `${base}/status`,
  };
}
