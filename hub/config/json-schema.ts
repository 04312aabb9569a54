// The JSON Schema editors use to check and complete config.yaml (`hub schema` prints it; the
// committed config.schema.json is its output). Input side of the zod schema: durations are strings
// such as "10s" and keys with defaults may be left out.
import { z } from "zod";
import { configSchema } from "./schema.js";

export function configJsonSchema(): object {
  // draft-07: the newest draft the YAML language server and most editors fully support.
  return z.toJSONSchema(configSchema, { io: "input", target: "draft-7" });
}
