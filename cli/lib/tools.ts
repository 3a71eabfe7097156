// tools.ts: which optional tools this machine has (compilers, sanitizer runtimes, libFuzzer).
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

/** A sanitizer runtime's file name (gcc's libasan.so.8, clang's libclang_rt.tsan-x86_64.so, ...). */
export const SANITIZER_RUNTIME = /lib(a|t|ub|m|l)san\.so|libclang_rt\.(a|t|ub|m|l)san/;
const SANITIZER_OPTIONS = ["ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS", "LSAN_OPTIONS"];

/** The environment for a program started by this process that is not the one under test (a compiler, a shell, a
 * browser, a separately built sanitizer binary): without a sanitizer runtime this process was started with, nor
 * its options (aether sanitize runs the test suite under LD_PRELOAD=libtsan.so and the like). A compiler gains
 * nothing from it, gcc 12's preloaded TSan runtime crashes every shell (dash and bash call a sigsetjmp it has not
 * resolved), which is how ninja runs each build step, and a clang-built sanitizer binary cannot take gcc's. */
export function toolEnv(env: Record<string, string | undefined> = process.env): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !SANITIZER_OPTIONS.includes(k)) out[k] = v;
  const kept = (out.LD_PRELOAD ?? "").split(/[: ]/).filter((p) => p && !SANITIZER_RUNTIME.test(p));
  if (kept.length) out.LD_PRELOAD = kept.join(":");
  else delete out.LD_PRELOAD;
  return out;
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const p = join(dir, cmd);
    if (existsSync(p)) return p;
  }
  return undefined;
}

function run(cmd: string[]): { ok: boolean; out: string } {
  try {
    const r = Bun.spawnSync({ cmd, stdout: "pipe", stderr: "pipe" });
    return { ok: r.exitCode === 0, out: r.stdout.toString().trim() };
  } catch {
    return { ok: false, out: "" };
  }
}

export function firstVersionLine(cmd: string): string | undefined {
  const r = run([cmd, "--version"]);
  return r.ok ? r.out.split("\n")[0] : undefined;
}

/** gcc's sanitizer runtime (libasan.so, libtsan.so, libubsan.so), or undefined if gcc does not have it. */
export function gccRuntime(lib: string): string | undefined {
  if (!which("gcc")) return undefined;
  const r = run(["gcc", `-print-file-name=${lib}`]);
  return r.ok && r.out.startsWith("/") && existsSync(r.out) ? r.out : undefined;
}

export interface ClangInfo {
  path: string;
  version: string;
  libFuzzer: boolean;
  msan: boolean;
}

/** The newest clang on PATH and whether its resource dir ships libFuzzer and MSan runtimes. */
export function findClang(): ClangInfo | undefined {
  for (const name of ["clang-16", "clang-17", "clang-18", "clang-15", "clang-14", "clang"]) {
    const path = which(name);
    if (!path) continue;
    const version = firstVersionLine(path) ?? name;
    const res = run([path, "-print-resource-dir"]);
    let libs: string[] = [];
    if (res.ok) {
      const libDir = join(res.out, "lib");
      try {
        for (const sub of readdirSync(libDir)) libs = libs.concat(readdirSync(join(libDir, sub)));
      } catch {
        libs = [];
      }
    }
    return {
      path,
      version,
      libFuzzer: libs.some((f) => f.startsWith("libclang_rt.fuzzer")),
      msan: libs.some((f) => f.startsWith("libclang_rt.msan")),
    };
  }
  return undefined;
}

export const INSTALL_CLANG_HINT = "apt-get install -y clang-16 libclang-rt-16-dev";
