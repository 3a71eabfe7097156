// build.ts: compile the C fuzz targets. The library's sources (csrc/*.c, csrc/device/*.c) are compiled once per
// configuration into build/fuzz/<config>/obj/ and linked into each target, so libFuzzer sees the library's own
// branches (coverage) and the sanitizers check the library's own code:
//   libfuzzer-<sanitizers>   clang -fsanitize=fuzzer,<sanitizers> (address and undefined by default)
//   regression[-<sans>]      gcc with fuzz/regression_driver.c as main() (no libFuzzer), sanitizers if gcc has them
// A file is recompiled when it, or any header under csrc/ or fuzz/, is newer than its object.
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import { findClang, gccRuntime, INSTALL_CLANG_HINT, toolEnv, which } from "../tools.ts";
import { FUZZ_BUILD_DIR, FUZZ_DIR, type CTarget } from "./targets.ts";

export type Sanitizer = "address" | "undefined";
export type CEngine = "libfuzzer" | "regression";

export class FuzzBuildError extends Error {
  override name = "FuzzBuildError";
}

export interface BuildConfig {
  engine: CEngine;
  sanitizers: Sanitizer[];
}

export function configName(c: BuildConfig): string {
  const san = c.sanitizers.map((s) => (s === "address" ? "asan" : "ubsan")).join("-");
  return san ? `${c.engine}-${san}` : c.engine;
}

export function binaryPath(c: BuildConfig, target: string): string {
  return join(FUZZ_BUILD_DIR, configName(c), target);
}

/** The sanitizers gcc can link here (Debian's gcc ships libasan and libubsan with the compiler). */
export function gccSanitizers(): Sanitizer[] {
  const out: Sanitizer[] = [];
  if (gccRuntime("libasan.so")) out.push("address");
  if (gccRuntime("libubsan.so")) out.push("undefined");
  return out;
}

/** The C compiler for a configuration, or a one-line reason it cannot be built here. */
export function compilerFor(engine: CEngine): { cc: string } | { missing: string } {
  if (engine === "libfuzzer") {
    const clang = findClang();
    if (!clang) return { missing: `libFuzzer needs clang, which is not installed: ${INSTALL_CLANG_HINT}` };
    if (!clang.libFuzzer) return { missing: `${clang.path} has no libFuzzer runtime: ${INSTALL_CLANG_HINT}` };
    return { cc: clang.path };
  }
  const cc = which("gcc") ?? which("cc") ?? which("clang");
  return cc ? { cc } : { missing: "no C compiler found (gcc): apt-get install -y gcc" };
}

function newest(paths: string[]): number {
  let t = 0;
  for (const p of paths) t = Math.max(t, statSync(p).mtimeMs);
  return t;
}

function listC(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".c")).sort().map((f) => join(dir, f)) : [];
}
function listH(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".h")).map((f) => join(dir, f)) : [];
}

function flags(cc: string, c: BuildConfig, forLibrary: boolean): string[] {
  const clang = basename(cc).startsWith("clang");
  const version = (JSON.parse(readFileSync(join(PACKAGE_ROOT, "package.json"), "utf8")) as { version: string }).version;
  const f = [
    "-std=c11", "-g", "-O1", "-fno-omit-frame-pointer", "-Wall", "-Wextra", "-pthread",
    "-D_GNU_SOURCE", "-DAETHER_BUILDING", `-DAETHER_VERSION_STRING="${version}"`, `-DAETHER_VARIANT_NAME="fuzz"`,
    `-DAETHER_COMPILER="${basename(cc)}"`, `-DAETHER_C_FLAGS="fuzz build (${configName(c)})"`,
    `-I${join(PACKAGE_ROOT, "csrc", "include")}`, `-I${join(PACKAGE_ROOT, "csrc")}`, `-I${FUZZ_DIR}`,
  ];
  const sans: string[] = [...c.sanitizers];
  if (c.engine === "libfuzzer") sans.unshift(forLibrary ? "fuzzer-no-link" : "fuzzer");
  if (sans.length) f.push(`-fsanitize=${sans.join(",")}`);
  if (c.sanitizers.includes("undefined")) f.push("-fno-sanitize-recover=undefined");
  if (!clang) f.push("-Wno-unknown-pragmas");
  return f;
}

async function run(cmd: string[], what: string): Promise<void> {
  const p = Bun.spawn({ cmd, cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: toolEnv() });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) {
    const tail = `${out}${err}`.trim().split("\n").slice(-12).join("\n");
    throw new FuzzBuildError(`compiling ${what} failed (exit ${code}):\n${tail}`);
  }
}

/** Run tasks at most `jobs` at a time. */
async function pool<T>(items: T[], jobs: number, fn: (x: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

/** Build the given targets for a configuration; returns each target's binary. Throws FuzzBuildError. */
export async function buildTargets(c: BuildConfig, targets: CTarget[], opts: { jobs?: number; log?: (l: string) => void } = {}): Promise<Map<string, string>> {
  const comp = compilerFor(c.engine);
  if ("missing" in comp) throw new FuzzBuildError(comp.missing);
  const cc = comp.cc;
  const root = join(FUZZ_BUILD_DIR, configName(c));
  const objDir = join(root, "obj");
  mkdirSync(objDir, { recursive: true });
  const headers = [...listH(join(PACKAGE_ROOT, "csrc")), ...listH(join(PACKAGE_ROOT, "csrc", "include")), ...listH(join(PACKAGE_ROOT, "csrc", "device")), ...listH(FUZZ_DIR)];
  const headerTime = newest(headers);
  const sources = [...listC(join(PACKAGE_ROOT, "csrc")), ...listC(join(PACKAGE_ROOT, "csrc", "device"))];
  const libFlags = flags(cc, c, true);
  const clang = basename(cc).startsWith("clang");
  const objects: string[] = [];
  const stale = (src: string, obj: string) => !existsSync(obj) || statSync(obj).mtimeMs < Math.max(statSync(src).mtimeMs, headerTime);
  const compiles: { src: string; obj: string; extra: string[] }[] = [];
  for (const src of sources) {
    const rel = src.slice(PACKAGE_ROOT.length + 1).replace(/[/\\]/g, "_");
    const obj = join(objDir, rel.replace(/\.c$/, ".o"));
    objects.push(obj);
    // The scalar reference of the SIMD kernels stays one lane (as CMakeLists.txt builds it).
    const extra = basename(src) === "qstate_scalar.c" ? (clang ? ["-fno-vectorize", "-fno-slp-vectorize"] : ["-fno-tree-vectorize"]) : [];
    if (stale(src, obj)) compiles.push({ src, obj, extra });
  }
  let driverObj: string | undefined;
  if (c.engine === "regression") {
    const src = join(FUZZ_DIR, "regression_driver.c");
    driverObj = join(objDir, "regression_driver.o");
    if (stale(src, driverObj)) compiles.push({ src, obj: driverObj, extra: [] });
  }
  const jobs = opts.jobs ?? 2;
  if (compiles.length) opts.log?.(`compiling ${compiles.length} file(s) with ${basename(cc)} (${configName(c)})`);
  await pool(compiles, jobs, (x) => run([cc, ...libFlags, ...x.extra, "-c", x.src, "-o", x.obj], x.src.slice(PACKAGE_ROOT.length + 1)));
  const bins = new Map<string, string>();
  const objTime = newest(objects.concat(driverObj ? [driverObj] : []));
  await pool(targets, jobs, async (t) => {
    const bin = join(root, t.name);
    bins.set(t.name, bin);
    if (existsSync(bin) && statSync(bin).mtimeMs >= Math.max(statSync(t.source).mtimeMs, objTime, headerTime)) return;
    opts.log?.(`linking ${t.name} (${configName(c)})`);
    const cmd = [cc, ...flags(cc, c, false), t.source, ...objects, ...(driverObj ? [driverObj] : []), "-o", bin, "-lpthread", "-ldl", "-lm"];
    await run(cmd, `fuzz/${t.name}.c`);
  });
  return bins;
}
