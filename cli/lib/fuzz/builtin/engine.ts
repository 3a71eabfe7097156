// engine.ts: the parent side of the builtin engine. It starts worker.ts in a child process (so a crash in
// native code is caught, not suffered), follows its progress, and when an input fails, shrinks the program:
// it removes runs of operations (halves, quarters, ... single ones) and then simplifies the ones left,
// keeping each candidate that still fails, every candidate tried in a child process in batches. The result
// is saved under fuzz/artifacts/<target>/ in the target's input format, so `aether fuzz --repro` replays it.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PACKAGE_ROOT } from "../../../native/ffi.ts";
import type { Finding, FuzzResult, Progress } from "../libfuzzer.ts";
import { ARTIFACTS_DIR, corpusDir, FUZZ_BUILD_DIR } from "../targets.ts";
import type { BuiltinTarget, Program } from "./types.ts";

const WORKER = join(import.meta.dir, "worker.ts");

function spawnWorker(args: string[]) {
  return Bun.spawn({ cmd: [process.execPath, WORKER, ...args], cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: { ...process.env, AETHER_QUIET: "1" } });
}

const sig = (s: unknown): string | null => (s === null || s === undefined ? null : String(s));

function describeExit(code: number | null, signal: string | null, stderr: string): string {
  const lines = stderr.trim().split("\n").filter(Boolean);
  const tail = lines.slice(-2).join(" | ");
  return signal ? `the worker died from ${signal}${tail ? `: ${tail}` : ""}` : `the worker exited with ${code}${tail ? `: ${tail}` : ""}`;
}

/** Of the candidate inputs, the index of the first that fails (in a child process), or -1. */
async function firstFailing(target: string, candidates: Uint8Array[], dir: string): Promise<number> {
  let start = 0;
  while (start < candidates.length) {
    const files = candidates.slice(start).map((c, i) => {
      const f = join(dir, `c${String(start + i).padStart(5, "0")}`);
      writeFileSync(f, c);
      return f;
    });
    const marker = join(dir, "marker");
    const p = spawnWorker(["first", target, marker, ...files]);
    const [out, , code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
    const line = out.trim().split("\n").pop() ?? "";
    if (code === 0 && line.includes('"t":"none"')) return -1;
    if (code === 0 && line.includes('"t":"first"')) return start + (JSON.parse(line) as { index: number }).index;
    // It crashed: the marker names the candidate it was running, which fails.
    const at = existsSync(marker) ? Number(readFileSync(marker, "utf8")) : 0;
    return start + at;
  }
  return -1;
}

/** Shrink a failing input: fewer operations, then simpler ones. Bounded by candidates tried and seconds. */
export async function shrink(t: BuiltinTarget, input: Uint8Array, opts: { seconds?: number; log?: (l: string) => void } = {}): Promise<Uint8Array> {
  const dir = join(FUZZ_BUILD_DIR, "builtin", t.name, "shrink");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const deadline = performance.now() + (opts.seconds ?? 60) * 1000;
  let best: Program = t.decode(input);
  let bestBytes = t.encode(best);
  const encode = (p: Program) => t.encode(p);
  // 1. Remove chunks of operations.
  for (let chunk = Math.max(1, Math.floor(best.ops.length / 2)); chunk >= 1 && performance.now() < deadline; chunk = Math.floor(chunk / 2)) {
    let progress = true;
    while (progress && performance.now() < deadline) {
      progress = false;
      const cands: Program[] = [];
      for (let i = 0; i + chunk <= best.ops.length; i += chunk) cands.push({ head: best.head, ops: [...best.ops.slice(0, i), ...best.ops.slice(i + chunk)] });
      if (!cands.length) break;
      const k = await firstFailing(t.name, cands.map(encode), dir);
      if (k >= 0) {
        best = cands[k]!;
        bestBytes = encode(best);
        progress = true;
        opts.log?.(`shrinking ${t.name}: ${best.ops.length} operations, ${bestBytes.length} bytes`);
      }
    }
  }
  // 2. Simplify each remaining operation.
  if (t.simplify) {
    let progress = true;
    while (progress && performance.now() < deadline) {
      progress = false;
      const cands: Program[] = [];
      best.ops.forEach((op, i) => {
        for (const s of t.simplify!(op)) cands.push({ head: best.head, ops: best.ops.map((o, j) => (j === i ? s : o)) });
      });
      if (!cands.length) break;
      const k = await firstFailing(t.name, cands.map(encode), dir);
      if (k >= 0) {
        best = cands[k]!;
        bestBytes = encode(best);
        progress = true;
      }
    }
  }
  rmSync(dir, { recursive: true, force: true });
  return bestBytes;
}

export interface BuiltinOptions {
  seconds?: number;
  runs?: number;
  seed: number;
  shrinkSeconds?: number;
  onProgress?: (p: Progress) => void;
  log?: (l: string) => void;
}

export async function runBuiltin(t: BuiltinTarget, opts: BuiltinOptions): Promise<FuzzResult> {
  const workDir = join(FUZZ_BUILD_DIR, "builtin", t.name);
  mkdirSync(workDir, { recursive: true });
  const marker = join(workDir, "current");
  rmSync(marker, { force: true });
  const t0 = performance.now();
  const p = spawnWorker(["fuzz", t.name, String(opts.seed), String(opts.seconds ?? 0), String(opts.runs ?? 0), String(t.maxLen), marker, corpusDir(t.name)]);
  const prog: Progress = { execs: 0, execPerSec: 0, coverage: 0, features: 0, corpus: 0, seconds: 0 };
  let failure: { message: string; input: Uint8Array } | undefined;
  let libraryError: string | undefined;
  let stdoutBuf = "";
  const decoder = new TextDecoder();
  const readOut = (async () => {
    for await (const chunk of p.stdout) {
      stdoutBuf += decoder.decode(chunk, { stream: true });
      const lines = stdoutBuf.split("\n");
      stdoutBuf = lines.pop()!;
      for (const l of lines) {
        let m: { t: string; execs?: number; seconds?: number; message?: string; input?: string };
        try {
          m = JSON.parse(l);
        } catch {
          continue;
        }
        if (m.execs !== undefined) {
          prog.execs = m.execs;
          prog.seconds = (performance.now() - t0) / 1000;
          prog.execPerSec = Math.round(prog.execs / Math.max(prog.seconds, 1e-3));
          opts.onProgress?.(prog);
        }
        if (m.t === "fail") failure = { message: m.message!, input: Uint8Array.from(Buffer.from(m.input!, "hex")) };
        if (m.t === "error") libraryError = m.message!;
      }
    }
  })();
  const [stderr, code] = await Promise.all([new Response(p.stderr).text(), p.exited, readOut]);
  prog.seconds = (performance.now() - t0) / 1000;
  prog.execPerSec = Math.round(prog.execs / Math.max(prog.seconds, 1e-3));
  const result: FuzzResult = { target: t.name, engine: "builtin", status: "pass", findings: [], ...prog };
  if (libraryError) {
    result.status = "fail";
    result.error = libraryError;
    return result;
  }
  if (!failure && code !== 0) {
    // A crash: the marker holds the input that was running.
    if (existsSync(marker)) failure = { message: describeExit(code, sig(p.signalCode), stderr), input: new Uint8Array(readFileSync(marker)) };
    else result.error = describeExit(code, sig(p.signalCode), stderr);
  }
  if (failure) {
    result.status = "fail";
    const artifacts = join(ARTIFACTS_DIR, t.name);
    mkdirSync(artifacts, { recursive: true });
    const sha = createHash("sha1").update(failure.input).digest("hex");
    const file = join(artifacts, `builtin-crash-${sha}`);
    writeFileSync(file, failure.input);
    const finding: Finding = { file: relative(PACKAGE_ROOT, file), summary: failure.message, reproduce: `aether fuzz ${t.name} --engine builtin --repro ${relative(PACKAGE_ROOT, file)}` };
    const small = await shrink(t, failure.input, { seconds: opts.shrinkSeconds ?? 60, log: opts.log });
    const min = `${file}.min`;
    writeFileSync(min, small);
    finding.minimized = relative(PACKAGE_ROOT, min);
    finding.minimizedBytes = small.length;
    finding.reproduce = `aether fuzz ${t.name} --engine builtin --repro ${finding.minimized}`;
    result.findings.push(finding);
  }
  return result;
}

/** Replay files through a builtin target in one child process: the first that fails, if any. */
export async function replayBuiltin(t: BuiltinTarget, files: string[]): Promise<{ ok: boolean; inputs: number; failed?: string; summary?: string }> {
  if (!files.length) return { ok: true, inputs: 0 };
  const dir = join(FUZZ_BUILD_DIR, "builtin", t.name);
  mkdirSync(dir, { recursive: true });
  const marker = join(dir, "replay-marker");
  rmSync(marker, { force: true });
  const p = spawnWorker(["first", t.name, marker, ...files]);
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const line = out.trim().split("\n").pop() ?? "";
  if (code === 0 && line.includes('"t":"none"')) return { ok: true, inputs: files.length };
  if (code === 0 && line.includes('"t":"first"')) {
    const m = JSON.parse(line) as { index: number; message: string };
    return { ok: false, inputs: m.index, failed: relative(PACKAGE_ROOT, files[m.index]!), summary: m.message };
  }
  const at = existsSync(marker) ? Number(readFileSync(marker, "utf8")) : 0;
  return { ok: false, inputs: at, failed: relative(PACKAGE_ROOT, files[at]!), summary: describeExit(code, sig(p.signalCode), err) };
}

/** One input through a builtin target in a child process, with the step-by-step account. */
export async function reproduceBuiltin(t: BuiltinTarget, file: string): Promise<{ code: number; stdout: string; stderr: string; signal: string | null }> {
  const p = spawnWorker(["repro", t.name, file, "-v"]);
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr, signal: sig(p.signalCode) };
}
