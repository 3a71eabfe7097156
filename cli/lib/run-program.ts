// run-program.ts: `aether run -- <program>`: run any native program with libaether-preload.so as its malloc,
// pass stdin/stdout/stderr and the exit code through, then report what every process of the run found.
import { accessSync, constants, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { BUILD_ROOT, LibraryError } from "../native/ffi.ts";
import { UsageError } from "./command.ts";
import { color, formatBytes } from "./output.ts";
import { formatFrame, symbolize, type Frame, type RawFrame } from "./symbolize.ts";
import { which } from "./tools.ts";

export const PRELOAD_PATH = join(BUILD_ROOT, "release", "libaether-preload.so");

export interface RunOptions {
  leaks: "summary" | "full" | "off";
  abortOnError: boolean;
  failOnError: boolean;
  log?: string;
  quarantine?: number;
  redzone?: number;
  backtrace: boolean;
  json: boolean;
  report?: string;
  /** what the program's stdin/stdout/stderr are connected to (default: this process's) */
  stdio?: "inherit" | "ignore";
}

export interface RawEvent {
  seq: number;
  kind: string;
  address: string;
  size: number;
  detail: number;
  thread: number;
  allocStack: RawFrame[];
  freeStack: RawFrame[];
  whereStack: RawFrame[];
}

/** What one process of a run reports (the preload writes it as JSON at exit; script mode builds it). */
export interface RawReport {
  pid: number;
  ppid: number;
  exe: string;
  argv: string[];
  stats: Record<string, number>;
  errors: Record<string, number>;
  events: RawEvent[];
  leaks: { count: number; bytes: number; largest: { address: string; size: number; allocStack: RawFrame[] }[] };
}

export interface ProcessReport {
  pid: number;
  ppid: number;
  exe: string;
  argv: string[];
  main: boolean;
  stats: Record<string, number>;
  errors: Record<string, number>;
  events: {
    kind: string;
    address: string;
    size: number;
    detail: number;
    allocStack: Frame[];
    freeStack: Frame[];
    whereStack: Frame[];
  }[];
  leaks: { count: number; bytes: number; largest: { address: string; size: number; allocStack: Frame[] }[] };
}

export interface RunReport {
  program: string;
  args: string[];
  exitCode: number;
  signal: string | null;
  processes: ProcessReport[];
  totalErrors: number;
  errorsByKind: Record<string, number>;
  mainReported: boolean;
}

function resolveProgram(program: string): string {
  if (program.includes("/")) {
    const p = resolve(program);
    if (!existsSync(p)) throw new UsageError(`program not found: ${program}`);
    if (statSync(p).isDirectory()) throw new UsageError(`${program} is a directory, not a program`);
    try {
      accessSync(p, constants.X_OK);
    } catch {
      throw new UsageError(`${program} is not executable`);
    }
    return p;
  }
  const p = which(program);
  if (!p) throw new UsageError(`program not found on PATH: ${program}`);
  return p;
}

function readReports(dir: string): RawReport[] {
  const out: RawReport[] = [];
  for (const f of readdirSync(dir)) {
    if (!/^aether-report-\d+\.json$/.test(f)) continue;
    try {
      out.push(JSON.parse(readFileSync(join(dir, f), "utf8")) as RawReport);
    } catch {
      // a process killed while writing its report leaves half a file: it says nothing reliable
    }
  }
  return out.sort((a, b) => a.pid - b.pid);
}

/** The reports with every stack symbolized; main: the process whose pid is mainPid. */
export function symbolizeReports(raw: RawReport[], mainPid: number): ProcessReport[] {
  const stacks: RawFrame[][] = [];
  for (const r of raw) {
    for (const e of r.events) stacks.push(e.allocStack, e.freeStack, e.whereStack);
    for (const l of r.leaks.largest) stacks.push(l.allocStack);
  }
  const resolved = symbolize(stacks);
  let i = 0;
  const next = () => resolved[i++] ?? [];
  return raw.map((r) => ({
    pid: r.pid,
    ppid: r.ppid,
    exe: r.exe,
    argv: r.argv,
    main: r.pid === mainPid,
    stats: r.stats,
    errors: r.errors,
    events: r.events.map((e) => ({
      kind: e.kind,
      address: e.address,
      size: e.size,
      detail: e.detail,
      allocStack: next(),
      freeStack: next(),
      whereStack: next(),
    })),
    leaks: {
      count: r.leaks.count,
      bytes: r.leaks.bytes,
      largest: r.leaks.largest.map((l) => ({ address: l.address, size: l.size, allocStack: next() })),
    },
  }));
}

export async function runProgram(program: string, args: string[], opts: RunOptions): Promise<{ code: number; report: RunReport }> {
  if (!existsSync(PRELOAD_PATH))
    throw new LibraryError(`${PRELOAD_PATH} not found: run \`npm install\` (or \`npx aether build\`)`);
  const exe = resolveProgram(program);
  const dir = mkdtempSync(join(tmpdir(), "aether-run-"));
  try {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
    // A sanitizer runtime this process was started with (aether sanitize runs the CLI that way) must not follow
    // into the program: it would compete with the preload for malloc.
    const inherited = (env.LD_PRELOAD ?? "").split(/[: ]/).filter((p) => p && !/lib(a|t|ub|m)san\.so/.test(p));
    env.LD_PRELOAD = [PRELOAD_PATH, ...inherited].join(":");
    env.AETHER_RUN_REPORT_DIR = dir;
    env.AETHER_RUN_LEAKS_MAX = opts.leaks === "full" ? "1000" : opts.leaks === "summary" ? "10" : "0";
    if (opts.abortOnError) env.AETHER_ABORT_ON_ERROR = "1";
    if (opts.log) env.AETHER_LOG_FILE = resolve(opts.log);
    if (opts.quarantine !== undefined) env.AETHER_QUARANTINE_BYTES = String(opts.quarantine);
    if (opts.redzone !== undefined) env.AETHER_REDZONE = String(opts.redzone);
    if (opts.backtrace) env.AETHER_BACKTRACE = "1";

    const io = opts.stdio ?? "inherit";
    const child = Bun.spawn({ cmd: [exe, ...args], argv0: program, env, stdio: [io, io, io] });
    // The terminal's Ctrl-C reaches the program directly; this process waits to report, and passes on the
    // signals that were meant for it alone.
    const forward = (sig: NodeJS.Signals) => () => child.kill(sig);
    const handlers = (["SIGINT", "SIGTERM", "SIGHUP"] as NodeJS.Signals[]).map((s) => [s, forward(s)] as const);
    for (const [s, h] of handlers) process.on(s, h);
    const status = await child.exited;
    for (const [s, h] of handlers) process.off(s, h);
    const signal = child.signalCode ? String(child.signalCode) : null;
    const sigNum = signal ? (require("node:os").constants.signals[signal] ?? 0) : 0;
    const exitCode = signal ? 128 + sigNum : status;

    const processes = symbolizeReports(readReports(dir), child.pid);
    const errorsByKind: Record<string, number> = {};
    for (const p of processes)
      for (const [k, n] of Object.entries(p.errors)) errorsByKind[k] = (errorsByKind[k] ?? 0) + n;
    const totalErrors = Object.values(errorsByKind).reduce((a, b) => a + b, 0);
    const report: RunReport = {
      program,
      args,
      exitCode,
      signal,
      processes,
      totalErrors,
      errorsByKind,
      mainReported: processes.some((p) => p.main),
    };
    if (opts.report) writeFileSync(opts.report, `${JSON.stringify(report, null, 2)}\n`);
    const code = opts.failOnError && totalErrors > 0 ? 1 : exitCode;
    return { code, report };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function stackLines(title: string, frames: Frame[]): string[] {
  if (!frames.length) return [];
  return [`      ${title}:`, ...frames.slice(0, 12).map((f, i) => `        ${formatFrame(f, i)}`)];
}

/** The human report, written to stderr after the program. */
export function formatRunReport(r: RunReport, leaks: RunOptions["leaks"]): string {
  const out: string[] = [];
  const name = basename(r.program);
  const how = r.signal ? `was killed by ${r.signal}` : `exited with ${r.exitCode}`;
  const errs = Object.entries(r.errorsByKind)
    .filter(([, n]) => n > 0)
    .map(([k, n]) => `${k} ${n}`)
    .join(", ");
  out.push(
    `${color.bold("aether run:")} ${name} ${how}; ${r.processes.length} process(es) reported; ` +
      (r.totalErrors ? color.red(`${r.totalErrors} memory error(s): ${errs}`) : color.green("no memory errors")),
  );
  if (!r.mainReported)
    out.push(
      color.yellow(
        `  no report from ${name} itself: it left without exit() or _exit() (a signal, or a raw exit system call), or ignored LD_PRELOAD (a static or setuid binary?)`,
      ),
    );
  for (const p of r.processes) {
    const total = Object.values(p.errors).reduce((a, b) => a + b, 0);
    if (!total) continue;
    out.push(`  ${basename(p.exe)} [pid ${p.pid}]: ${total} error(s)`);
    for (const e of p.events) {
      out.push(`    ${color.red(e.kind)} at ${e.address}${e.size ? ` (block of ${e.size} bytes)` : ""}`);
      out.push(...stackLines("detected", e.whereStack), ...stackLines("allocated", e.allocStack), ...stackLines("freed", e.freeStack));
    }
  }
  if (leaks !== "off") {
    for (const p of r.processes) {
      if (!p.main && leaks === "summary") continue;
      if (!p.leaks.count) continue;
      out.push(
        `  leaks in ${basename(p.exe)} [pid ${p.pid}]: ${p.leaks.count} block(s), ${formatBytes(p.leaks.bytes)} still allocated at exit; largest first:`,
      );
      const show = leaks === "full" ? p.leaks.largest : p.leaks.largest.slice(0, 5);
      for (const l of show) {
        out.push(`    ${formatBytes(l.size)} at ${l.address}`);
        if (leaks === "full") out.push(...stackLines("allocated", l.allocStack));
      }
    }
  }
  return out.join("\n");
}
