// Helpers that run things in child processes: the CLI as users call it, and scripts that may crash or print
// diagnostics (death tests, deliberate corruption) so the test runner itself is never at risk.
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const ROOT = resolve(import.meta.dir, "..", "..");
export const CLI = join(ROOT, "cli", "aether.ts");
export const BUN = process.execPath;

export interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `aether <args>` (NO_COLOR, so output is plain) and capture everything. */
export function aether(args: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; stdin?: string; timeoutMs?: number } = {}): Ran {
  return runCmd([BUN, CLI, ...args], opts);
}

/** This process's environment with NO_COLOR and the given changes (undefined removes a variable). */
function childEnv(changes: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...process.env, NO_COLOR: "1", ...changes })) if (v !== undefined) env[k] = v;
  return env;
}

/** Write a snippet under test/.snippets/ (inside the package, so "aether-memory" resolves); the caller removes it. */
function snippetFile(code: string): string {
  const dir = join(ROOT, "test", ".snippets");
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `s${process.pid}-${Math.random().toString(36).slice(2)}.ts`);
  writeFileSync(file, code);
  return file;
}

export function runCmd(cmd: string[], opts: { env?: Record<string, string | undefined>; cwd?: string; stdin?: string; timeoutMs?: number } = {}): Ran {
  const env = childEnv(opts.env);
  const r = Bun.spawnSync({
    cmd,
    cwd: opts.cwd ?? ROOT,
    env,
    stdin: opts.stdin !== undefined ? Buffer.from(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { code: r.exitCode ?? (r.signalCode ? 128 : -1), stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

/** Run a TypeScript snippet in a fresh Bun process. The snippet can `import { memory } from "aether-memory"`
 * (resolved through tsconfig paths) and anything under cli/. */
export function runSnippet(code: string, opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Ran {
  const file = snippetFile(code);
  try {
    return runCmd([BUN, file], opts);
  } finally {
    rmSync(file, { force: true });
  }
}

/** runSnippet, without waiting: for several processes at once. */
export async function runSnippetAsync(code: string, opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Ran> {
  const file = snippetFile(code);
  const env = childEnv(opts.env);
  try {
    const p = Bun.spawn({ cmd: [BUN, file], cwd: ROOT, env, stdout: "pipe", stderr: "pipe", timeout: opts.timeoutMs ?? 120_000 });
    const [stdout, stderr, code_] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    return { code: code_ ?? 128, stdout, stderr };
  } finally {
    rmSync(file, { force: true });
  }
}

/** Lines of stderr that are allocator diagnostics. */
export function diagnostics(stderr: string): string[] {
  return stderr.split("\n").filter((l) => l.startsWith("AETHER MEMORY"));
}

/** Bun Workers cannot run under ThreadSanitizer: with gcc 12's TSan runtime preloaded into Bun (aether sanitize
 * --tsan), Bun deadlocks in its own thread synchronization in about one run in two, with no libaether code in any
 * thread's stack (reproduced with Workers doing plain JavaScript: Bun is not instrumented, TSan only intercepts
 * its pthread calls). Tests that need Workers skip under AETHER_VARIANT=tsan; aether sanitize --tsan checks the
 * same concurrency with native threads against the instrumented library (alloc/threads, alloc/concurrent-walks,
 * devpool/threads). */
export const NO_WORKERS_UNDER_TSAN = process.env.AETHER_VARIANT === "tsan";

/** Environment overrides for a program that is not the one under test (a separately built sanitizer binary, a
 * shell, a browser): no sanitizer runtime or options this suite may run under (aether sanitize preloads one). */
export const WITHOUT_SANITIZER: Record<string, undefined> = {
  LD_PRELOAD: undefined,
  ASAN_OPTIONS: undefined,
  UBSAN_OPTIONS: undefined,
  TSAN_OPTIONS: undefined,
  MSAN_OPTIONS: undefined,
  LSAN_OPTIONS: undefined,
};
