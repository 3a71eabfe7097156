// build.ts: (re)build a libaether variant with cmake-js into build/<variant>/.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { BUILD_ROOT, PACKAGE_ROOT, VARIANTS, type VariantName, variantPath } from "../native/ffi.ts";
import { findClang, INSTALL_CLANG_HINT, toolEnv, which } from "./tools.ts";

export class BuildError extends Error {
  override name = "BuildError";
}

export interface BuildOptions {
  variant: VariantName;
  /** extra -D definitions for CMake, e.g. { AETHER_STACK_USAGE: "ON" } */
  defines?: Record<string, string>;
  /** build folder name under build/ (default: the variant's) */
  folder?: string;
  quiet?: boolean;
}

/** Build a variant; returns the library path. Throws BuildError with the compiler's last lines on failure. */
export function buildVariant(opts: BuildOptions): string {
  const v = VARIANTS[opts.variant];
  const cmakeJs = join(PACKAGE_ROOT, "node_modules", "cmake-js", "bin", "cmake-js");
  if (!existsSync(cmakeJs)) throw new BuildError("cmake-js is not installed: run `npm install` first");
  if (!which("cmake")) throw new BuildError("cmake is not on PATH: install it (apt-get install -y cmake)");
  const folder = opts.folder ?? v.name;
  const args = ["compile", "--out", join(BUILD_ROOT, folder), "--log-level", "warn"];
  if (v.sanitize) args.push(`--CDAETHER_SANITIZE=${v.sanitize}`);
  for (const [k, val] of Object.entries(opts.defines ?? {})) args.push(`--CD${k}=${val}`);
  if (v.clangOnly) {
    const clang = findClang();
    if (!clang) throw new BuildError(`the ${v.name} variant needs clang (MemorySanitizer is clang-only): ${INSTALL_CLANG_HINT}`);
    if (!clang.msan) throw new BuildError(`${clang.path} has no MemorySanitizer runtime: ${INSTALL_CLANG_HINT}`);
    args.push("--cc", clang.path);
  }
  const runner = which("node") ?? process.execPath;
  const r = Bun.spawnSync({
    cmd: [runner, cmakeJs, ...args],
    cwd: PACKAGE_ROOT,
    stdout: opts.quiet ? "pipe" : "inherit",
    stderr: opts.quiet ? "pipe" : "inherit",
    env: toolEnv(),
  });
  if (r.exitCode !== 0) {
    const tail = opts.quiet ? `\n${(r.stdout?.toString() ?? "") + (r.stderr?.toString() ?? "")}`.split("\n").slice(-15).join("\n") : "";
    throw new BuildError(`building the ${v.name} variant failed (cmake-js exit ${r.exitCode})${tail}`);
  }
  const out = folder === v.name ? variantPath(v.name) : join(BUILD_ROOT, folder, v.file);
  if (!existsSync(out)) throw new BuildError(`the build finished but ${out} is missing`);
  return out;
}
