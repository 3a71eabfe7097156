// Compile a C test program against libaether (the variant under test) with gcc, once per process.
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { ROOT, runCmd } from "./run.ts";

const built = new Map<string, string>();

/** Build test/native/<name>.c into build/test-bin/ and return the executable's path. */
export function buildNative(name: string, libDir = join(ROOT, "build", "release"), lib = "aether", extra: string[] = []): string {
  const key = `${name}:${libDir}:${lib}:${extra.join(" ")}`;
  const cached = built.get(key);
  if (cached) return cached;
  const outDir = join(ROOT, "build", "test-bin");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${basename(name, ".c")}-${basename(libDir)}`);
  const r = runCmd([
    "gcc", "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", "-Wall", "-Werror", ...extra,
    join(ROOT, "test", "native", name), `-I${join(ROOT, "csrc", "include")}`,
    `-L${libDir}`, `-l${lib}`, `-Wl,-rpath,${libDir}`, "-lpthread", "-o", out,
  ]);
  if (r.code !== 0) throw new Error(`gcc failed for ${name}:\n${r.stderr}`);
  built.set(key, out);
  return out;
}
