// sanitizers.ts: what `aether sanitize` knows about each sanitizer: the library variant it builds, how native
// drivers are compiled against it, the runtime a Bun process preloads, the options (strict for native drivers,
// adapted for Bun, which is not instrumented), and a probe that says in one line why one cannot run here.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { BUILD_ROOT, VARIANTS, type VariantName, variantPath } from "../../native/ffi.ts";
import { findClang, gccRuntime, INSTALL_CLANG_HINT, toolEnv, which } from "../tools.ts";

export type SanitizerName = "asan" | "ubsan" | "tsan" | "msan";
export const SANITIZERS: SanitizerName[] = ["asan", "ubsan", "tsan", "msan"];

export interface Sanitizer {
  name: SanitizerName;
  /** what the sanitizer is called in its own reports */
  title: string;
  variant: VariantName;
  /** the environment variable that carries its runtime options */
  optionsVar: "ASAN_OPTIONS" | "UBSAN_OPTIONS" | "TSAN_OPTIONS" | "MSAN_OPTIONS";
  /** compiler flags for a native driver (the same instrumentation as the library's variant) */
  cflags: string[];
  /** gcc's runtime that a Bun process preloads; undefined: Bun cannot host this sanitizer (MSan) */
  bunRuntime?: string;
  /** why the Bun suite does not run under it, when it does not */
  noSuite?: string;
  /** the symbol prefix every instrumented function of the library calls into (its hooks) */
  hookPrefix: string;
}

export const SANITIZER: Record<SanitizerName, Sanitizer> = {
  asan: {
    name: "asan",
    title: "AddressSanitizer",
    variant: "asan",
    optionsVar: "ASAN_OPTIONS",
    cflags: ["-fsanitize=address", "-fno-omit-frame-pointer"],
    bunRuntime: "libasan.so",
    hookPrefix: "__asan_",
  },
  ubsan: {
    name: "ubsan",
    title: "UndefinedBehaviorSanitizer",
    variant: "ubsan",
    optionsVar: "UBSAN_OPTIONS",
    cflags: ["-fsanitize=undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"],
    bunRuntime: "libubsan.so",
    hookPrefix: "__ubsan_handle_",
  },
  tsan: {
    name: "tsan",
    title: "ThreadSanitizer",
    variant: "tsan",
    optionsVar: "TSAN_OPTIONS",
    cflags: ["-fsanitize=thread"],
    bunRuntime: "libtsan.so",
    hookPrefix: "__tsan_",
  },
  msan: {
    name: "msan",
    title: "MemorySanitizer",
    variant: "msan",
    optionsVar: "MSAN_OPTIONS",
    cflags: ["-fsanitize=memory", "-fsanitize-memory-track-origins=2", "-fno-omit-frame-pointer"],
    noSuite: "native drivers only: MemorySanitizer needs every line of the process instrumented, and Bun is not",
    hookPrefix: "__msan_",
  },
};

/** Options as NAME=VALUE pairs joined with ':' (the sanitizers' own syntax). */
export function formatOptions(o: Record<string, string | number>): string {
  return Object.entries(o)
    .map(([k, v]) => `${k}=${v}`)
    .join(":");
}

/** Strict options for native drivers: stop at the first report, leaks on, every check the runtime has. */
export function nativeOptions(s: SanitizerName, logPrefix: string, suppressions?: string): Record<string, string | number> {
  const common: Record<string, string | number> = { halt_on_error: 1, log_path: logPrefix };
  if (suppressions) common.suppressions = suppressions;
  switch (s) {
    case "asan":
      return {
        ...common,
        abort_on_error: 0,
        detect_leaks: 1,
        detect_stack_use_after_return: 1,
        strict_string_checks: 1,
      };
    case "ubsan":
      return { ...common, print_stacktrace: 1, report_error_type: 1 };
    case "tsan":
      return { ...common, second_deadlock_stack: 1, detect_deadlocks: 1, report_signal_unsafe: 1, history_size: 4 };
    case "msan":
      return { ...common, poison_in_dtor: 1 };
  }
}

/** Options for the Bun suite: the same strictness where Bun allows it. Bun's own code is not instrumented and
 * not ours: LeakSanitizer would report Bun's allocations (leaks are checked by the native drivers); TSan must
 * ignore Bun's uninstrumented memcpy and friends, and its deadlock detector hits an internal CHECK once a
 * thread holds more than 64 mutexes, as Bun's do (deadlocks are checked by the native drivers, with
 * second_deadlock_stack). Sizes Bun asks for that exceed what ASan allows fail as NULL, as they would in glibc. */
export function suiteOptions(s: SanitizerName, logPrefix: string, suppressions?: string): Record<string, string | number> {
  const common: Record<string, string | number> = { halt_on_error: 1, log_path: logPrefix };
  if (suppressions) common.suppressions = suppressions;
  switch (s) {
    case "asan":
      return { ...common, detect_leaks: 0, allocator_may_return_null: 1 };
    case "ubsan":
      return { ...common, print_stacktrace: 1, report_error_type: 1 };
    case "tsan":
      return { ...common, ignore_noninstrumented_modules: 1, detect_deadlocks: 0 };
    case "msan":
      return common;
  }
}

export interface Toolchain {
  cc: string;
  /** the symbolizer the runtime should use (clang's needs llvm-symbolizer; gcc's has its own) */
  symbolizer?: string;
  /** gcc's runtime library a Bun process preloads */
  runtime?: string;
}

/** The compiler and runtime for s on this machine, or the one-line reason it cannot run here. */
export function toolchain(s: SanitizerName): Toolchain | { missing: string } {
  const def = SANITIZER[s];
  if (s === "msan") {
    const clang = findClang();
    if (!clang) return { missing: `MemorySanitizer needs clang, which is not installed (${INSTALL_CLANG_HINT})` };
    if (!clang.msan) return { missing: `${clang.path} has no MemorySanitizer runtime (${INSTALL_CLANG_HINT})` };
    const version = /clang-(\d+)$/.exec(clang.path)?.[1];
    const symbolizer = (version && which(`llvm-symbolizer-${version}`)) || which("llvm-symbolizer");
    return { cc: clang.path, symbolizer };
  }
  if (!which("gcc")) return { missing: `${def.title} needs gcc, which is not installed (apt-get install -y gcc)` };
  const runtime = gccRuntime(def.bunRuntime!);
  if (!runtime) {
    const pkg = { asan: "libasan8", ubsan: "libubsan1", tsan: "libtsan2" }[s];
    return { missing: `gcc has no ${def.title} runtime (${def.bunRuntime} not found: apt-get install -y ${pkg})` };
  }
  return { cc: "gcc", runtime };
}

/** Compile and run an empty program with the sanitizer: proves compiler, runtime and kernel get along (TSan
 * refuses some address-space layouts, for one). Returns undefined when it works, else the one-line reason. */
export function probe(s: SanitizerName, tc: Toolchain): string | undefined {
  // A success is remembered for this compiler and runtime (by path and modification time).
  const stamp = (p: string | undefined) => {
    const path = p && (p.startsWith("/") ? p : which(p));
    return path && existsSync(path) ? `${realpathSync(path)}@${statSync(path).mtimeMs}` : "-";
  };
  const key = [stamp(tc.cc), stamp(tc.runtime), SANITIZER[s].cflags.join(" ")].join("|");
  const cache = join(BUILD_ROOT, "sanitize", s, "probe.ok");
  if (existsSync(cache) && readFileSync(cache, "utf8") === key) return undefined;
  const work = mkdtempSync(join(tmpdir(), `aether-probe-${s}-`));
  try {
    const src = join(work, "probe.c");
    const exe = join(work, "probe");
    writeFileSync(src, "#include <stdlib.h>\nint main(void) { char *p = malloc(8); p[0] = 1; int r = p[0] - 1; free(p); return r; }\n");
    const cc = Bun.spawnSync({ cmd: [tc.cc, ...SANITIZER[s].cflags, "-g", src, "-o", exe], env: toolEnv(), stdout: "pipe", stderr: "pipe" });
    if (cc.exitCode !== 0) {
      const line = cc.stderr.toString().split("\n").find((l) => l.includes("error")) ?? `exit ${cc.exitCode}`;
      return `${tc.cc} cannot build with ${SANITIZER[s].cflags[0]}: ${line.trim()}`;
    }
    const env = toolEnv();
    for (const v of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS", "LSAN_OPTIONS"]) delete env[v];
    const run = Bun.spawnSync({ cmd: [exe], env, stdout: "pipe", stderr: "pipe" });
    if (run.exitCode !== 0) {
      const line = run.stderr.toString().split("\n").find((l) => l.trim() !== "") ?? `exit ${run.exitCode}`;
      return `a ${SANITIZER[s].title} program does not run here: ${line.trim()}`;
    }
    mkdirSync(dirname(cache), { recursive: true });
    writeFileSync(cache, key);
    return undefined;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The instrumented library of s: its folder, its path, and its name for -l. */
export function variantLibrary(s: SanitizerName): { dir: string; lib: string; name: string } {
  const v = VARIANTS[SANITIZER[s].variant];
  const lib = variantPath(v.name);
  return { dir: dirname(lib), lib, name: v.file.replace(/^lib/, "").replace(/\.so$/, "") };
}

export function isSanitizer(name: string): name is SanitizerName {
  return (SANITIZERS as string[]).includes(name);
}
