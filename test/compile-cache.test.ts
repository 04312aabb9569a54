// Where the compile cache goes (hub/compile-cache.ts): under systemd the unit's cache or state
// directory, because PrivateTmp= gives every start a fresh /tmp (Node's default location).
import module from "node:module";
import t from "tap";
import { compileCacheDir, enableCompileCache } from "../hub/compile-cache.js";

t.test("systemd's CacheDirectory= first, then StateDirectory=, else Node's default", async (t) => {
  t.equal(compileCacheDir({ CACHE_DIRECTORY: "/var/cache/hub", STATE_DIRECTORY: "/var/lib/hub" }), "/var/cache/hub");
  t.equal(compileCacheDir({ STATE_DIRECTORY: "/var/lib/hub" }), "/var/lib/hub/compile-cache");
  t.equal(compileCacheDir({ STATE_DIRECTORY: "/var/lib/hub:/var/lib/other" }), "/var/lib/hub/compile-cache");
  t.equal(compileCacheDir({}), undefined);
  t.equal(compileCacheDir({ CACHE_DIRECTORY: "" }), undefined);
});

const hasCache = typeof (module as unknown as { enableCompileCache?: unknown }).enableCompileCache === "function";

t.test("on a Node without module.enableCompileCache it does nothing", { skip: hasCache && "this Node has a compile cache" }, async (t) => {
  t.equal(enableCompileCache({}), false);
});
