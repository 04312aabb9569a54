// Durations in the config: human strings such as `250ms`, `10s`, `5m`, `1h30m`, `1d`, turned into
// milliseconds; a bare number is refused on purpose (`timeout: 10` is ambiguous). The one
// implementation lives in rules/duration.ts: rules/ may not import from hub/ (test/architecture),
// while hub/ may import rules/, so the config takes it from there rather than keeping a copy.
export { DURATION_PATTERN, duration, parseDuration } from "../../rules/duration.js";
