// scenarios.ts: what `aether sanitize` runs for each sanitizer, each with an id (for --only and the reports):
//   native <component>/<name>  a C driver from test/native/ linked directly against the instrumented library
//   fuzz/<target>              a fuzz target's committed corpus, replayed by fuzz/regression_driver.c
//   extra/<name>               a driver given with --driver
//   suite/<file>               one file of the Bun test suite, run with the sanitizer's runtime preloaded
//
// Adding a component's scenarios: write test/native/<name>.c (include "check.h"; print "ok ..." and exit 0
// when every check held) and add one entry to NATIVE below with its arguments for a full run, for TSan (which
// is 5-15x slower: use smaller counts) and, if it belongs in `aether check`, for the quick run. A fuzz target
// needs nothing: any fuzz/<target>.c with a corpus in fuzz/corpus/<target>/ is replayed.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join, relative } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import type { SanitizerName } from "./sanitizers.ts";

export interface NativeScenario {
  id: string;
  component: string;
  /** C sources, relative to the repository root */
  sources: string[];
  /** arguments of a full run */
  args: string[];
  /** smaller arguments under TSan (default: args) */
  tsanArgs?: string[];
  /** arguments in the quick set (aether check, --quick); absent: not part of it */
  quickArgs?: string[];
  /** only under these sanitizers (default: all) */
  only?: SanitizerName[];
  /** a function the scenario needs in csrc/include/aether.h: a component still being built on another branch
   * has its scenarios ready, and they join the run when its API lands */
  requires?: string;
  /** sanitizers it cannot run under, each with the reason (listed as skipped, never silently left out) */
  cannot?: Partial<Record<SanitizerName, string>>;
  /** extra include directories */
  include?: string[];
  /** what a passing run prints: the driver's own verdict ("ok ..." on stdout), or the regression driver's
   * "replayed N inputs" on stderr, or nothing beyond exit 0 (--driver files) */
  verdict: "ok-line" | "replayed" | "exit-0";
  /** warnings are errors for the project's own drivers, not for a --driver someone hands in */
  werror: boolean;
  timeoutS: number;
}

const DRIVER = (name: string) => `test/native/${name}.c`;

/** The project's native scenarios: unit scenarios per component and the concurrent stress of each structure. */
export const NATIVE: NativeScenario[] = [
  { id: "alloc/unit", component: "safe allocator", sources: [DRIVER("unit_alloc")], args: ["3"], tsanArgs: ["1"], quickArgs: ["1"] },
  { id: "alloc/threads", component: "safe allocator", sources: [DRIVER("alloc_threads")], args: ["4", "20000"], tsanArgs: ["4", "3000"], quickArgs: ["2", "2000"] },
  { id: "alloc/concurrent-walks", component: "safe allocator", sources: [DRIVER("alloc_concurrent")], args: ["4", "8000", "3"], tsanArgs: ["3", "3000", "2"] },
  { id: "simd/unit", component: "SIMD kernels", sources: [DRIVER("unit_simd")], args: ["16"], tsanArgs: ["12"], quickArgs: ["8"] },
  { id: "stack/unit", component: "stack and layout", sources: [DRIVER("unit_stack_layout")], args: ["4000"], tsanArgs: ["1000"], quickArgs: ["500"] },
  { id: "devpool/unit", component: "device pools", sources: [DRIVER("unit_devpool")], args: ["3"], tsanArgs: ["1"], quickArgs: ["1"] },
  { id: "devpool/threads", component: "device pools", sources: [DRIVER("devpool_threads")], args: ["4", "4000"], tsanArgs: ["4", "600"], quickArgs: ["2", "300"] },
  { id: "queues/unit", component: "queues and pool", sources: [DRIVER("unit_queues_pool")], args: ["50000"], tsanArgs: ["5000"], quickArgs: ["5000"], requires: "aether_spsc_create" },
  ...(["spsc", "mpmc", "pool", "alloc"] as const).map((t) => ({
    id: `stress/${t}`,
    component: "stress runner",
    sources: [DRIVER("stress_structures")],
    args: [t, "2", "2", "200000"],
    tsanArgs: [t, "2", "2", "5000"],
    requires: "aether_stress_start",
  })),
].map((s) => ({ verdict: "ok-line" as const, werror: true, timeoutS: 600, ...s }));

/** Why a driver that hashes audit records cannot run under MSan. */
export const LIBCRYPTO_UNDER_MSAN =
  "its SHA-256 comes from OpenSSL's libcrypto (dlopen, not instrumented): MemorySanitizer reports libcrypto's reads of what it wrote itself";

/** Whether a driver's source reaches libcrypto (audit files and their verifier). */
function usesLibcrypto(source: string): boolean {
  return /aether_audit_(verify_|crypto_status)|aether_devpool_set_audit_log/.test(source);
}

/** Whether the public header declares fn (a component's API has landed in this tree). */
export function apiPresent(fn: string, root = PACKAGE_ROOT): boolean {
  const header = join(root, "csrc", "include", "aether.h");
  return existsSync(header) && new RegExp(`\\b${fn}\\s*\\(`).test(readFileSync(header, "utf8"));
}

/** Fuzz targets with a committed corpus: fuzz/<target>.c replayed over fuzz/corpus/<target>/. */
export function fuzzScenarios(root = PACKAGE_ROOT): NativeScenario[] {
  const dir = join(root, "fuzz");
  const driver = join(dir, "regression_driver.c");
  if (!existsSync(driver)) return [];
  const out: NativeScenario[] = [];
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith(".c") || f === "regression_driver.c") continue;
    const name = basename(f, ".c");
    const corpus = join(dir, "corpus", name);
    const source = readFileSync(join(dir, f), "utf8");
    if (!existsSync(corpus) || !source.includes("LLVMFuzzerTestOneInput")) continue;
    out.push({
      id: `fuzz/${name}`,
      component: "fuzz regression",
      sources: [`fuzz/${f}`, "fuzz/regression_driver.c"],
      args: [relative(root, corpus)],
      include: ["fuzz", "csrc"], // trace.c reads the parsed trace's layout from csrc/trace_internal.h
      verdict: "replayed",
      werror: false, // written for clang and gcc alike: gcc warns about clang's pragmas and sanitizer-only paths
      cannot: usesLibcrypto(source) ? { msan: LIBCRYPTO_UNDER_MSAN } : undefined,
      timeoutS: 600,
    });
  }
  return out;
}

/** A --driver FILE.c, optionally "asan:FILE.c" to run it under one sanitizer only. */
export function extraScenario(spec: string, root = PACKAGE_ROOT): NativeScenario {
  const m = /^(asan|ubsan|tsan|msan):(.+)$/.exec(spec);
  const file = m ? m[2]! : spec;
  return {
    id: `extra/${basename(file, ".c")}`,
    component: "--driver",
    sources: [file.startsWith("/") ? relative(root, file) : file],
    args: [],
    only: m ? [m[1] as SanitizerName] : undefined,
    verdict: "exit-0",
    werror: false,
    timeoutS: 300,
  };
}

/** The Bun suite's files, as Bun finds them (bunfig root: test/). */
export function suiteFiles(root = PACKAGE_ROOT): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name.startsWith(".") || e.name === "node_modules" || e.name === "fixtures") continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.test\.[cm]?[jt]sx?$/.test(e.name)) out.push(relative(root, p));
    }
  };
  walk(join(root, "test"));
  return out.sort();
}

export function suiteId(file: string): string {
  return `suite/${basename(file).replace(/\.test\.[cm]?[jt]sx?$/, "")}`;
}

/** Does id match one of the --only patterns (an id, or a prefix ending at a '/')? */
export function matches(id: string, only: string[] | undefined): boolean {
  if (!only || only.length === 0) return true;
  return only.some((p) => id === p || id.startsWith(p.endsWith("/") ? p : `${p}/`));
}
