// run.ts: one sanitizer run, end to end. Build the instrumented library (and prove it is instrumented: it must
// import the runtime's hooks), compile and run every native scenario against it with strict options, run the
// Bun suite file by file with the runtime preloaded, then collect every report from the log files.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { BUILD_ROOT, PACKAGE_ROOT } from "../../native/ffi.ts";
import { parseElf } from "../../native/layout.ts";
import { BuildError, buildVariant } from "../build.ts";
import { readSymbols, SHT } from "../elf.ts";
import { toolEnv } from "../tools.ts";
import { collectReports, dedupe, type Finding, type Report } from "./reports.ts";
import { apiPresent, extraScenario, fuzzScenarios, matches, NATIVE, type NativeScenario, suiteFiles, suiteId } from "./scenarios.ts";
import {
  formatOptions,
  nativeOptions,
  probe,
  SANITIZER,
  type SanitizerName,
  suiteOptions,
  toolchain,
  type Toolchain,
  variantLibrary,
} from "./sanitizers.ts";
import { loadSuppressions, suppressionFile } from "./suppressions.ts";

export interface SanitizeOptions {
  /** sanitizers to run, in order */
  sanitizers: SanitizerName[];
  /** the user named them: one that cannot run here is a failure, not a skip */
  explicit: boolean;
  keepGoing: boolean;
  /** native drivers only (no Bun suite) */
  driversOnly: boolean;
  /** the quick set (aether check): native scenarios with quickArgs only, no suite, no fuzz corpora */
  quick: boolean;
  /** --driver specs ([SAN:]FILE.c) */
  drivers: string[];
  /** --only patterns on scenario ids */
  only?: string[];
  /** where builds, logs and outputs go (build/sanitize) */
  out: string;
  /** per-test timeout for the suite, ms */
  testTimeoutMs?: number;
  progress?: (line: string) => void;
}

export interface ScenarioResult {
  id: string;
  kind: "native" | "suite";
  component: string;
  args: string[];
  /** skip: the scenario cannot run under this sanitizer (detail says why) */
  verdict: "pass" | "fail" | "skip";
  /** the driver's own verdict line, the suite file's counts, or what went wrong */
  detail: string;
  seconds: number;
  exit: number | null;
  reports: number;
  /** suite files: the tests that failed */
  failedTests?: string[];
  /** stdout and stderr of the run */
  output: string;
}

export interface SanitizerRun {
  sanitizer: SanitizerName;
  title: string;
  verdict: "pass" | "fail" | "skip";
  /** why it was skipped or could not run, one line */
  reason?: string;
  library?: string;
  /** runtime hooks the instrumented library imports (proof that it is instrumented) */
  hooks?: number;
  buildSeconds?: number;
  /** "ran", or why the Bun suite did not run under this sanitizer */
  suite: string;
  scenarios: ScenarioResult[];
  findings: Finding[];
  seconds: number;
  dir: string;
}

const flat = (id: string) => id.replace(/[^A-Za-z0-9_-]+/g, ".");
const secondsSince = (t0: number) => (performance.now() - t0) / 1000;

/** How many undefined dynamic symbols of lib start with prefix: the calls its instrumented code makes into
 * the sanitizer runtime. A variant built without the sanitizer has none. */
export function countHooks(lib: string, prefix: string): number {
  const data = new Uint8Array(readFileSync(lib));
  const elf = parseElf(data);
  const dynsym = elf.sections.find((s) => s.type === SHT.DYNSYM);
  if (!dynsym) return 0;
  return readSymbols(data, elf, dynsym).filter((s) => s.shndx === 0 && s.name.startsWith(prefix)).length;
}

/** Every file a compile depends on, for the cache key: the sources and the headers they may include. */
function dependencies(sc: NativeScenario): string[] {
  const headers = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".h")).map((f) => join(dir, f)) : []);
  return [
    ...sc.sources.map((s) => join(PACKAGE_ROOT, s)),
    ...headers(join(PACKAGE_ROOT, "csrc", "include")),
    ...headers(join(PACKAGE_ROOT, "test", "native")),
    ...(sc.include ?? []).flatMap((d) => headers(join(PACKAGE_ROOT, d))),
  ];
}

/** Compile a scenario's driver (cached on the command and the contents of everything it depends on). */
function compile(s: SanitizerName, tc: Toolchain, sc: NativeScenario, binDir: string): { exe: string } | { error: string } {
  const lib = variantLibrary(s);
  const exe = join(binDir, flat(sc.id));
  const missing = sc.sources.find((f) => !existsSync(join(PACKAGE_ROOT, f)));
  if (missing) return { error: `${missing} does not exist` };
  const cmd = [
    tc.cc, "-std=c11", "-D_GNU_SOURCE", "-O1", "-g", ...SANITIZER[s].cflags, "-Wall", "-Wextra", ...(sc.werror ? ["-Werror"] : []),
    `-I${join(PACKAGE_ROOT, "csrc", "include")}`, `-I${join(PACKAGE_ROOT, "test", "native")}`,
    ...(sc.include ?? []).map((d) => `-I${join(PACKAGE_ROOT, d)}`),
    ...sc.sources.map((f) => join(PACKAGE_ROOT, f)),
    `-L${lib.dir}`, `-l${lib.name}`, `-Wl,-rpath,${lib.dir}`, "-lpthread", "-ldl", "-lm", "-o", exe,
  ];
  const hasher = new Bun.CryptoHasher("sha256");
  hasher.update(cmd.join("\0"));
  for (const f of dependencies(sc)) if (existsSync(f)) hasher.update(readFileSync(f));
  const key = hasher.digest("hex");
  if (existsSync(exe) && existsSync(`${exe}.key`) && readFileSync(`${exe}.key`, "utf8") === key) return { exe };
  // Built under a temporary name and renamed into place, executable first and key second: another sanitize run
  // sharing the cache (the test suite starts some) never runs a half-written file or trusts a stale key.
  const tmp = `${exe}.${process.pid}.tmp`;
  const r = Bun.spawnSync({ cmd: [...cmd.slice(0, -1), tmp], cwd: PACKAGE_ROOT, env: toolEnv(), stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) {
    rmSync(tmp, { force: true });
    const err = r.stderr.toString().split("\n").find((l) => /error/.test(l)) ?? r.stderr.toString().split("\n")[0] ?? "";
    return { error: `${tc.cc} failed: ${err.trim()}` };
  }
  renameSync(tmp, exe);
  writeFileSync(`${tmp}.key`, key);
  renameSync(`${tmp}.key`, `${exe}.key`);
  return { exe };
}

/** The environment of a native driver: nothing inherited from a sanitizer run this process may be part of. */
function nativeEnv(s: SanitizerName, tc: Toolchain, logPrefix: string, supp: Supp): Record<string, string> {
  const env = toolEnv();
  for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS", "LSAN_OPTIONS", "AETHER_VARIANT", "AETHER_LIB", "AETHER_SANITIZE_SUITE"])
    delete env[k];
  for (const k of Object.keys(env)) if (k.startsWith("AETHER_") && k !== "AETHER_DEBUG") delete env[k];
  env[SANITIZER[s].optionsVar] = formatOptions(nativeOptions(s, logPrefix, supp.own));
  if (supp.lsan) env.LSAN_OPTIONS = formatOptions({ suppressions: supp.lsan });
  if (tc.symbolizer) env[`${s.toUpperCase()}_SYMBOLIZER_PATH`] = tc.symbolizer;
  return env;
}

function runNative(s: SanitizerName, tc: Toolchain, sc: NativeScenario, args: string[], exe: string, dirs: RunDirs, supp: Supp): ScenarioResult {
  const logPrefix = join(dirs.logs, flat(sc.id));
  const t0 = performance.now();
  const r = Bun.spawnSync({
    cmd: [exe, ...args],
    cwd: PACKAGE_ROOT,
    env: nativeEnv(s, tc, logPrefix, supp),
    stdout: "pipe",
    stderr: "pipe",
    timeout: sc.timeoutS * 1000,
    killSignal: "SIGKILL",
  });
  const seconds = secondsSince(t0);
  const stdout = r.stdout.toString();
  const stderr = r.stderr.toString();
  const output = join(dirs.output, `${flat(sc.id)}.txt`);
  writeFileSync(output, `$ ${relative(PACKAGE_ROOT, exe)} ${args.join(" ")}\n--- stdout\n${stdout}--- stderr\n${stderr}`);
  const timedOut = r.exitCode === null && seconds >= sc.timeoutS - 1;
  let detail: string;
  let ok: boolean;
  const okLine = stdout.split("\n").find((l) => l.startsWith("ok"));
  const failLine = stdout.split("\n").find((l) => l.startsWith("FAIL")) ?? stdout.split("\n").find((l) => l.startsWith("FAILED"));
  if (timedOut) {
    ok = false;
    detail = `timed out after ${sc.timeoutS} s`;
  } else if (sc.verdict === "ok-line") {
    ok = r.exitCode === 0 && okLine !== undefined;
    detail = ok ? okLine! : failLine ?? `exit ${r.exitCode ?? r.signalCode}`;
  } else if (sc.verdict === "replayed") {
    const replayed = stderr.split("\n").find((l) => l.startsWith("replayed "));
    ok = r.exitCode === 0 && replayed !== undefined;
    detail = ok ? replayed! : `exit ${r.exitCode ?? r.signalCode} at ${stderr.split("\n").filter((l) => l.startsWith("running ")).pop() ?? "start"}`;
  } else {
    ok = r.exitCode === 0;
    detail = ok ? "exit 0" : `exit ${r.exitCode ?? r.signalCode}`;
  }
  return { id: sc.id, kind: "native", component: sc.component, args, verdict: ok ? "pass" : "fail", detail, seconds, exit: r.exitCode, reports: 0, output };
}

function runSuiteFile(s: SanitizerName, tc: Toolchain, file: string, dirs: RunDirs, timeoutMs: number, supp: Supp): ScenarioResult {
  const id = suiteId(file);
  const logPrefix = join(dirs.logs, flat(id));
  const env = toolEnv();
  for (const k of ["ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "MSAN_OPTIONS", "LSAN_OPTIONS", "AETHER_LIB"]) delete env[k];
  env.LD_PRELOAD = [tc.runtime!, ...(env.LD_PRELOAD ? [env.LD_PRELOAD] : [])].join(":");
  env.AETHER_VARIANT = SANITIZER[s].variant;
  env[SANITIZER[s].optionsVar] = formatOptions(suiteOptions(s, logPrefix, supp.own));
  env.AETHER_SANITIZE_SUITE = s; // aether sanitize refuses to run the suite again from inside it
  env.NO_COLOR = "1";
  env.FORCE_COLOR = "0";
  const t0 = performance.now();
  const fileTimeoutS = 600; // a hang in native code (which no per-test timer can interrupt) costs at most this
  const r = Bun.spawnSync({
    cmd: [process.execPath, "test", file, "--timeout", String(timeoutMs)],
    cwd: PACKAGE_ROOT,
    env,
    stdout: "pipe",
    stderr: "pipe",
    timeout: fileTimeoutS * 1000,
    killSignal: "SIGKILL",
  });
  const seconds = secondsSince(t0);
  const text = `${r.stdout.toString()}\n${r.stderr.toString()}`;
  const output = join(dirs.output, `${flat(id)}.txt`);
  writeFileSync(output, `$ AETHER_VARIANT=${s} LD_PRELOAD=${tc.runtime} ${SANITIZER[s].optionsVar}=... bun test ${file} --timeout ${timeoutMs}\n${text}`);
  const count = (word: string) => Number(new RegExp(`^\\s*(\\d+) ${word}$`, "m").exec(text)?.[1] ?? 0);
  const pass = count("pass");
  const fail = count("fail");
  const skip = count("skip"); // tests that cannot run under this sanitizer say so themselves (test.skipIf)
  const failedTests = [...new Set(text.split("\n").filter((l) => l.startsWith("(fail) ")).map((l) => l.slice(7).replace(/\s*\[[\d.]+m?s\]$/, "")))];
  const ok = r.exitCode === 0 && fail === 0 && pass + skip > 0;
  let detail = `${pass} pass, ${fail} fail${skip ? `, ${skip} skip` : ""}`;
  if (r.exitCode === null) detail += seconds >= fileTimeoutS - 1 ? `, killed after ${fileTimeoutS} s` : `, killed by ${r.signalCode}`;
  else if (!ok && fail === 0) detail += `, exit ${r.exitCode}`;
  return { id, kind: "suite", component: file, args: [], verdict: ok ? "pass" : "fail", detail, seconds, exit: r.exitCode, reports: 0, failedTests, output };
}

type Supp = { own?: string; lsan?: string };

interface RunDirs {
  root: string;
  bin: string;
  logs: string;
  output: string;
}

/** The native scenarios this run includes for s, with the arguments it gives each. */
export function plannedNative(s: SanitizerName, opts: Pick<SanitizeOptions, "quick" | "drivers" | "only">): { sc: NativeScenario; args: string[] }[] {
  const all = [...NATIVE, ...(opts.quick ? [] : fuzzScenarios()), ...opts.drivers.map((d) => extraScenario(d))];
  const out: { sc: NativeScenario; args: string[] }[] = [];
  for (const sc of all) {
    if (sc.only && !sc.only.includes(s)) continue;
    if (sc.requires && !apiPresent(sc.requires)) continue; // that component is not in this tree yet
    if (!matches(sc.id, opts.only)) continue;
    if (opts.quick && !sc.quickArgs && sc.component !== "--driver") continue;
    const args = opts.quick && sc.quickArgs ? sc.quickArgs : s === "tsan" && sc.tsanArgs ? sc.tsanArgs : sc.args;
    out.push({ sc, args });
  }
  return out;
}

export function runSanitizer(s: SanitizerName, opts: SanitizeOptions): SanitizerRun {
  const def = SANITIZER[s];
  const t0 = performance.now();
  const progress = opts.progress ?? (() => {});
  const dir = join(opts.out, s);
  const run: SanitizerRun = { sanitizer: s, title: def.title, verdict: "pass", suite: "not run", scenarios: [], findings: [], seconds: 0, dir };
  const finish = (verdict: SanitizerRun["verdict"], reason?: string): SanitizerRun => {
    run.verdict = verdict;
    if (reason) run.reason = reason;
    run.seconds = secondsSince(t0);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "summary.json"), `${JSON.stringify(run, null, 2)}\n`);
    return run;
  };

  const tc = toolchain(s);
  if ("missing" in tc) return finish(opts.explicit ? "fail" : "skip", tc.missing);
  const broken = probe(s, tc);
  if (broken) return finish(opts.explicit ? "fail" : "skip", broken);

  // Compiled drivers are cached in build/sanitize/<sanitizer>/bin whatever --out says (keyed on their contents).
  const dirs: RunDirs = { root: dir, bin: join(BUILD_ROOT, "sanitize", s, "bin"), logs: join(dir, "logs"), output: join(dir, "output") };
  rmSync(dirs.logs, { recursive: true, force: true });
  rmSync(dirs.output, { recursive: true, force: true });
  for (const d of [dirs.bin, dirs.logs, dirs.output]) mkdirSync(d, { recursive: true });

  progress(`${s}: building the ${def.variant} library`);
  const tb = performance.now();
  try {
    run.library = buildVariant({ variant: def.variant, quiet: true });
  } catch (e) {
    return finish("fail", e instanceof BuildError ? e.message.split("\n")[0] : String(e));
  }
  run.buildSeconds = secondsSince(tb);
  run.hooks = countHooks(run.library, def.hookPrefix);
  if (run.hooks === 0) return finish("fail", `${relative(PACKAGE_ROOT, run.library)} calls no ${def.hookPrefix}* hook: it is not instrumented`);

  const supp = suppressionFile(s, loadSuppressions(), dir);
  const reports: { report: Report; scenario: string }[] = [];

  for (const { sc, args } of plannedNative(s, opts)) {
    const cannot = sc.cannot?.[s];
    if (cannot) {
      run.scenarios.push({ id: sc.id, kind: "native", component: sc.component, args, verdict: "skip", detail: `not under ${s}: ${cannot}`, seconds: 0, exit: null, reports: 0, output: "" });
      progress(`${s}: skip ${sc.id}: ${cannot}`);
      continue;
    }
    const compiled = compile(s, tc, sc, dirs.bin);
    if ("error" in compiled) {
      run.scenarios.push({ id: sc.id, kind: "native", component: sc.component, args, verdict: "fail", detail: compiled.error, seconds: 0, exit: null, reports: 0, output: "" });
      progress(`${s}: ${sc.id}: ${compiled.error}`);
      continue;
    }
    const res = runNative(s, tc, sc, args, compiled.exe, dirs, supp);
    const out = existsSync(res.output) ? readFileSync(res.output, "utf8") : "";
    const found = collectReports(join(dirs.logs, flat(sc.id)), [{ text: out, source: res.output }]);
    res.reports = found.length;
    if (found.length) res.verdict = "fail";
    for (const report of found) reports.push({ report, scenario: `native ${sc.id}` });
    run.scenarios.push(res);
    progress(`${s}: ${res.verdict === "pass" ? "pass" : "FAIL"} ${sc.id} ${args.join(" ")} (${res.seconds.toFixed(1)} s): ${found.length ? `${found.length} report(s), first: ${found[0]!.kind}` : res.detail}`);
  }

  if (opts.quick || opts.driversOnly) run.suite = opts.quick ? "not run (quick)" : "not run (--drivers-only)";
  else if (!def.bunRuntime || !tc.runtime) run.suite = def.noSuite ?? "not run";
  else {
    const files = suiteFiles().filter((f) => matches(suiteId(f), opts.only));
    run.suite = files.length ? "ran" : "not run (no file matches --only)";
    for (const file of files) {
      progress(`${s}: bun test ${file}`);
      const res = runSuiteFile(s, tc, file, dirs, opts.testTimeoutMs ?? 300_000, supp);
      const found = collectReports(join(dirs.logs, flat(res.id)));
      res.reports = found.length;
      if (found.length) res.verdict = "fail";
      for (const report of found) reports.push({ report, scenario: `suite ${file}` });
      run.scenarios.push(res);
      progress(`${s}: ${res.verdict === "pass" ? "pass" : "FAIL"} ${file} (${res.seconds.toFixed(1)} s): ${res.detail}${found.length ? `, ${found.length} report(s)` : ""}`);
    }
  }

  run.findings = dedupe(reports);
  const failed = run.scenarios.filter((r) => r.verdict === "fail").length;
  if (run.findings.length || failed) {
    const what = [run.findings.length ? `${run.findings.length} distinct report(s)` : "", failed ? `${failed} scenario(s) failed` : ""].filter(Boolean).join(", ");
    return finish("fail", what);
  }
  return finish("pass");
}

/** Run the sanitizers in order; stop after the first that fails unless keepGoing. onDone sees each run as it
 * ends. Writes <out>/summary.json. */
export function runAll(opts: SanitizeOptions, onStart?: (s: SanitizerName) => void, onDone?: (r: SanitizerRun) => void): SanitizerRun[] {
  const runs: SanitizerRun[] = [];
  for (const s of opts.sanitizers) {
    onStart?.(s);
    const r = runSanitizer(s, opts);
    runs.push(r);
    onDone?.(r);
    if (r.verdict === "fail" && !opts.keepGoing) break;
  }
  mkdirSync(opts.out, { recursive: true });
  writeFileSync(join(opts.out, "summary.json"), `${JSON.stringify(runs, null, 2)}\n`);
  return runs;
}
