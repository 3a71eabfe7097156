// libfuzzer.ts: run a libFuzzer target binary, follow its progress and collect what it found.
// New inputs go to build/fuzz/work/<target>/ (the committed corpus fuzz/corpus/<target>/ is only read, unless
// the caller asks to merge into it); crashes are written under fuzz/artifacts/<target>/ and minimized there.
import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import { toolEnv } from "../tools.ts";
import { ARTIFACTS_DIR, corpusDir, FUZZ_BUILD_DIR } from "./targets.ts";

export interface Progress {
  execs: number;
  execPerSec: number;
  coverage: number;
  features: number;
  corpus: number;
  seconds: number;
}

export interface Finding {
  /** the input as libFuzzer saved it, relative to the package root */
  file: string;
  /** a minimized copy, when minimization succeeded */
  minimized?: string;
  minimizedBytes?: number;
  /** the first lines that say what went wrong */
  summary: string;
  reproduce: string;
}

export interface FuzzResult extends Progress {
  target: string;
  engine: string;
  status: "pass" | "fail";
  findings: Finding[];
  log?: string;
  error?: string;
}

// "#12345	NEW    cov: 978 ft: 5921 corp: 510/182Kb lim: 600 exec/s: 79 rss: 475Mb ..."
const LINE = /^#(\d+)\s+(\w+)\s+cov: (\d+) ft: (\d+) corp: (\d+)\/\S+.*?exec\/s: (\d+)/;
// fork mode: "#123: cov: 978 ft: 5921 corp: 510 exec/s: 79 oom/timeout/crash: 0/0/0 time: 12s job: 3 dft_time: 0"
const FORK = /^#(\d+): cov: (\d+) ft: (\d+) corp: (\d+) exec\/s: (\d+) oom\/timeout\/crash: (\d+)\/(\d+)\/(\d+) time: (\d+)s/;
const WRITTEN = /Test unit written to (\S+)/;

export function parseLine(line: string, p: Progress): boolean {
  let m = LINE.exec(line);
  if (m) {
    p.execs = Number(m[1]);
    p.coverage = Number(m[3]);
    p.features = Number(m[4]);
    p.corpus = Number(m[5]);
    p.execPerSec = Number(m[6]);
    return true;
  }
  m = FORK.exec(line);
  if (m) {
    p.execs = Math.max(p.execs, Number(m[1]));
    p.coverage = Number(m[2]);
    p.features = Number(m[3]);
    p.corpus = Number(m[4]);
    p.execPerSec = Number(m[5]);
    return true;
  }
  m = /^stat::number_of_executed_units: (\d+)/.exec(line);
  if (m) p.execs = Math.max(p.execs, Number(m[1]));
  m = /^stat::average_exec_per_sec: (\d+)/.exec(line);
  if (m) p.execPerSec = Number(m[1]);
  return false;
}

/** The lines of a crash report worth showing: the assertion, the sanitizer's error and summary. */
export function summarize(output: string): string {
  const lines = output.split("\n");
  const keep = lines.filter((l) =>
    /FUZZ ASSERTION FAILED|^==\d+==ERROR|^SUMMARY:|runtime error:|deadly signal|ERROR: libFuzzer|out-of-memory|timeout after/.test(l),
  );
  return (keep.length ? keep : lines.filter((l) => l.trim()).slice(-3)).slice(0, 4).join("\n");
}

export const SANITIZER_ENV = {
  // UBSan findings abort (the build uses -fno-sanitize-recover) with a stack; ASan keeps libFuzzer's defaults.
  UBSAN_OPTIONS: "print_stacktrace=1:halt_on_error=1",
  ASAN_OPTIONS: "detect_leaks=1:allocator_may_return_null=1",
};

export interface RunOptions {
  seconds?: number;
  runs?: number;
  fork?: number;
  extra: string[];
  updateCorpus: boolean;
  onProgress?: (p: Progress) => void;
  minimizeSeconds?: number;
}

function listFiles(dir: string): Set<string> {
  return new Set(existsSync(dir) ? readdirSync(dir) : []);
}

export async function runLibFuzzer(target: string, bin: string, opts: RunOptions): Promise<FuzzResult> {
  const work = join(FUZZ_BUILD_DIR, "work", target);
  const artifacts = join(ARTIFACTS_DIR, target);
  const logs = join(FUZZ_BUILD_DIR, "logs");
  for (const d of [work, artifacts, logs]) mkdirSync(d, { recursive: true });
  const corpus = corpusDir(target);
  mkdirSync(corpus, { recursive: true });
  const before = listFiles(artifacts);
  const args = [`-artifact_prefix=${artifacts}/`, "-print_final_stats=1", ...opts.extra];
  if (opts.seconds) args.push(`-max_total_time=${Math.ceil(opts.seconds)}`);
  if (opts.runs !== undefined) args.push(`-runs=${opts.runs}`);
  if (opts.fork && opts.fork > 1) args.push(`-fork=${opts.fork}`);
  const cmd = [bin, ...args, work, corpus];
  const t0 = performance.now();
  const proc = Bun.spawn({ cmd, cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: { ...toolEnv(), ...SANITIZER_ENV } });
  const p: Progress = { execs: 0, execPerSec: 0, coverage: 0, features: 0, corpus: 0, seconds: 0 };
  let output = "";
  const written: string[] = [];
  const decoder = new TextDecoder();
  const consume = async (stream: ReadableStream<Uint8Array>) => {
    let pending = "";
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      output += text;
      if (output.length > 4_000_000) output = output.slice(-2_000_000);
      pending += text;
      const lines = pending.split("\n");
      pending = lines.pop()!;
      for (const l of lines) {
        const w = WRITTEN.exec(l);
        if (w) written.push(w[1]!);
        if (parseLine(l, p)) {
          p.seconds = (performance.now() - t0) / 1000;
          opts.onProgress?.(p);
        }
      }
    }
    if (pending) parseLine(pending, p);
  };
  await Promise.all([consume(proc.stdout), consume(proc.stderr)]);
  const code = await proc.exited;
  p.seconds = (performance.now() - t0) / 1000;
  const log = join(logs, `${target}.log`);
  writeFileSync(log, output);
  const result: FuzzResult = { target, engine: "libfuzzer", status: "pass", findings: [], ...p, log: relative(PACKAGE_ROOT, log) };
  // What libFuzzer said it wrote, and (fork mode names its files itself) new files of libFuzzer's naming;
  // other engines' files in the same folder are not this run's.
  const fresh = [...listFiles(artifacts)].filter((f) => !before.has(f) && /^(crash|leak|timeout|oom|slow-unit)-[0-9a-f]+$/.test(f));
  const files = [...new Set([...written.map((w) => (w.startsWith("/") ? w : join(PACKAGE_ROOT, w))), ...fresh.map((f) => join(artifacts, f))])].filter((f) => existsSync(f));
  if (code !== 0 || files.length) {
    result.status = "fail";
    const summary = summarize(output);
    if (!files.length) result.error = `libFuzzer exited with ${code}${summary ? `: ${summary.split("\n")[0]}` : ""}`;
    for (const f of files) {
      const finding: Finding = { file: relative(PACKAGE_ROOT, f), summary, reproduce: `aether fuzz ${target} --repro ${relative(PACKAGE_ROOT, f)}` };
      const min = await minimize(bin, f, opts.minimizeSeconds ?? 30);
      if (min) {
        finding.minimized = relative(PACKAGE_ROOT, min);
        finding.minimizedBytes = statSync(min).size;
        finding.reproduce = `aether fuzz ${target} --repro ${finding.minimized}`;
      }
      result.findings.push(finding);
    }
  }
  if (opts.updateCorpus) await mergeInto(bin, corpus, work);
  return result;
}

/** libFuzzer's crash minimization: the smallest input that still crashes, next to the original (.min). */
async function minimize(bin: string, file: string, seconds: number): Promise<string | undefined> {
  if (seconds <= 0) return undefined;
  const out = `${file}.min`;
  const p = Bun.spawn({
    cmd: [bin, "-minimize_crash=1", `-max_total_time=${seconds}`, `-exact_artifact_path=${out}`, file],
    cwd: PACKAGE_ROOT, stdout: "ignore", stderr: "ignore", env: { ...toolEnv(), ...SANITIZER_ENV },
  });
  await p.exited;
  return existsSync(out) ? out : undefined;
}

/** Add to the committed corpus the inputs of the work folder that reach new coverage (libFuzzer -merge=1). */
export async function mergeInto(bin: string, corpus: string, work: string): Promise<void> {
  const p = Bun.spawn({ cmd: [bin, "-merge=1", corpus, work], cwd: PACKAGE_ROOT, stdout: "ignore", stderr: "ignore", env: { ...toolEnv(), ...SANITIZER_ENV } });
  await p.exited;
}

/** Run one input through a target binary (libFuzzer or regression build) with the step-by-step account. */
export async function reproduce(bin: string, file: string, libfuzzer: boolean): Promise<{ code: number; stdout: string; stderr: string }> {
  const p = Bun.spawn({ cmd: libfuzzer ? [bin, "-runs=1", "-detect_leaks=0", file] : [bin, file], cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: { ...toolEnv(), ...SANITIZER_ENV, FUZZ_VERBOSE: "1" } });
  const [stdout, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  return { code, stdout, stderr };
}

/** Replay files or folders through a regression build; returns how many inputs ran, or the failure. */
export async function replay(bin: string, paths: string[]): Promise<{ ok: boolean; inputs: number; failed?: string; summary?: string; seconds: number }> {
  const t0 = performance.now();
  const p = Bun.spawn({ cmd: [bin, ...paths], cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: { ...toolEnv(), ...SANITIZER_ENV } });
  const [, stderr, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  const seconds = (performance.now() - t0) / 1000;
  const m = /replayed (\d+) inputs/.exec(stderr);
  if (code === 0 && m) return { ok: true, inputs: Number(m[1]), seconds };
  const running = [...stderr.matchAll(/^running (\S+)/gm)];
  const last = running.length ? running[running.length - 1]![1] : undefined;
  return { ok: false, inputs: Math.max(0, running.length - 1), failed: last ? relative(PACKAGE_ROOT, last) : undefined, summary: summarize(stderr), seconds };
}
