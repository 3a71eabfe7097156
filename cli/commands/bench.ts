import { accessSync, constants, existsSync, mkdirSync, statSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { Command, Option } from "clipanion";
import { findSuite, SUITES } from "../../bench/suites/index.ts";
import { AetherCommand, parseCount, UsageError } from "../lib/command.ts";
import { printJson } from "../lib/output.ts";
import { BaselineError, compare, loadBaseline } from "../lib/bench/compare.ts";
import { githubActionBenchmark, humanText } from "../lib/bench/formats.ts";
import { Progress } from "../lib/bench/progress.ts";
import { htmlReport } from "../lib/bench/report.ts";
import { runSuites } from "../lib/bench/runner.ts";
import { DEFAULT_TARGETS, evaluate, loadTargets, suitesOf, TargetsError, type TargetsFile } from "../lib/bench/targets.ts";
import type { BenchDocument, Suite } from "../lib/bench/types.ts";
// The last two are one tool's half of github-action-benchmark: the bare array the action's tool of that name reads.
const FORMATS = ["human", "json", "github-action-benchmark", "customSmallerIsBetter", "customBiggerIsBetter"] as const;
type Format = (typeof FORMATS)[number];

export class BenchCommand extends AetherCommand {
  static override paths = [["bench"]];
  static override usage = Command.Usage({
    description: "measure every component against its baselines; gate on latency targets; compare with a previous run",
    details: `
      Runs benchmark suites: all of them (${SUITES.map((s) => s.name).join(", ")}) unless some are named. Every
      figure is measured in the same run as its baseline (glibc malloc, a pure-JavaScript call, the scalar kernel,
      plain glibc for real programs), alternating subject and baseline over repetitions (7 in a full run, 3 with
      the quick option); a figure is the median with its range, a ratio the median of per-repetition ratios.
      Latencies come with per-operation percentiles: from C loops (one FFI call, every operation timed with the
      cycle counter into a histogram kept in C) or from Bun through tinybench. The environment (CPU model and
      flags, cores, kernel, compiler, library variant, Bun, git commit) is recorded with the result.

      With --gate [TARGETS], the targets of TARGETS (default bench/targets.json; with --quick, only those marked
      quick) are evaluated and printed (target, measured, threshold, verdict); the exit code is 1 if any is not
      met. Without named suites the gate runs only the suites its targets need, and with --quick only the figures
      its quick targets name (and their baselines). A malformed targets file, or a target naming a figure the run
      did not produce, is an error (exit 2).

      With --baseline FILE, the run is compared with a previous --json result; the exit code is 1 if any ratio to
      a baseline got worse by more than --max-regression percent (default 10).

      The format github-action-benchmark prints the JSON that the GitHub benchmark action reads:
      {"customSmallerIsBetter": [...], "customBiggerIsBetter": [...]}, each an array of {name, unit, value,
      range, extra}; give each array to the action's tool of that name (--format customSmallerIsBetter or
      customBiggerIsBetter prints just that array, the file the tool reads). A report (--report FILE.html) is one
      self-contained HTML file with the charts. On a terminal a progress line on stderr shows the suite, the case
      and the time left; on a pipe only the result is printed.
    `,
    examples: [
      ["Every suite, full run", "aether bench"],
      ["The allocator and the FFI, quickly, as JSON on stdout", "aether bench alloc ffi --quick --format json"],
      ["CI: the quick targets (what aether check runs)", "aether bench --quick --gate"],
      ["Every target, a JSON record and an HTML report", "aether bench --gate bench/targets.json --json bench.json --report bench.html"],
      ["Fail if any ratio is 10% worse than last time", "aether bench --baseline previous.json --max-regression 10"],
      ["For benchmark-action/github-action-benchmark", "aether bench --format github-action-benchmark > gab.json"],
      ["List the suites", "aether bench --list"],
    ],
  });

  suites = Option.Rest({ name: "suite" });
  quick = Option.Boolean("--quick", false, { description: "short runs (seconds), 3 repetitions: for CI gates and aether check" });
  json = Option.String("--json", { tolerateBoolean: true, description: "write the result as JSON to FILE (alone: print JSON, like --format json)" });
  format = Option.String("--format", { description: "stdout: human (default), json, github-action-benchmark, customSmallerIsBetter or customBiggerIsBetter" });
  gate = Option.String("--gate", { tolerateBoolean: true, description: "evaluate the targets in TARGETS (default bench/targets.json); exit 1 if any fails" });
  baseline = Option.String("--baseline", { description: "a previous --json result to compare with" });
  maxRegression = Option.String("--max-regression", { description: "with --baseline: the largest worsening of any ratio, in percent (default 10)" });
  report = Option.String("--report", { description: "write a self-contained HTML report with charts to FILE.html" });
  reps = Option.String("--reps", { description: "repetitions to alternate (default 7, or 3 with --quick)" });
  list = Option.Boolean("--list", false, { description: "list the suites and exit" });

  async execute(): Promise<number> {
    if (this.list) return this.listSuites();
    const { suiteNames, jsonFile, gateFile } = this.positionals();
    const format = this.parseFormat(jsonFile !== undefined);
    const reps = this.reps !== undefined ? parseCount("--reps", this.reps, 1, 1000) : undefined;
    if (this.maxRegression !== undefined && this.baseline === undefined) throw new UsageError("--max-regression needs --baseline FILE");
    const maxPct = this.maxRegression !== undefined ? parsePercent(this.maxRegression) : 10;
    if (this.report !== undefined && !/\.html?$/i.test(this.report)) throw new UsageError(`--report expects a file ending in .html, got '${this.report}'`);

    let targets: TargetsFile | undefined;
    let previous: BenchDocument | undefined;
    try {
      if (gateFile !== undefined) targets = loadTargets(gateFile, SUITES.map((s) => s.name));
      if (this.baseline !== undefined) previous = loadBaseline(this.baseline);
    } catch (e) {
      if (e instanceof TargetsError) return this.userError(e.message);
      throw e;
    }

    // Named suites run whole. Otherwise a gate runs the suites its targets need, and a quick gate only the
    // figures its quick targets name (with their baselines): what keeps `aether check` to a few seconds.
    let suites: Suite[] = SUITES;
    let only: string[] | undefined;
    if (suiteNames.length) suites = suiteNames.map((n) => findSuite(n)!);
    else if (targets) {
      const selected = targets.targets.filter((t) => !this.quick || t.quick);
      const needed = suitesOf(selected);
      suites = SUITES.filter((s) => needed.includes(s.name));
      if (this.quick) only = selected.map((t) => t.figure);
    }

    if (targets) {
      // A gate that evaluates nothing would pass silently: refuse it before anything runs.
      const running = new Set(suites.map((s) => s.name));
      const applies = targets.targets.filter((t) => (!this.quick || t.quick) && running.has(t.figure.split("/")[0]!));
      if (applies.length === 0)
        return this.userError(`${targets.path}: no${this.quick ? " quick" : ""} target applies to the suites run (${[...running].join(", ")}); the gate would check nothing`);
    }
    for (const [flag, path] of [["--json", jsonFile], ["--report", this.report]] as const) if (path !== undefined) checkWritable(flag, path);

    const progress = new Progress(suites, this.quick);
    const doc = await runSuites(suites, { quick: this.quick, reps, progress, only });
    try {
      if (targets) doc.gate = evaluate(doc, targets, this.quick);
    } catch (e) {
      if (e instanceof TargetsError) return this.userError(e.message);
      throw e;
    }
    if (previous) doc.comparison = compare(doc, previous, this.baseline!, maxPct);

    if (jsonFile !== undefined) writeOut(jsonFile, `${JSON.stringify(doc, null, 2)}\n`);
    if (this.report !== undefined) writeOut(this.report, htmlReport(doc));
    if (format === "json") printJson(doc);
    else if (format === "github-action-benchmark") printJson(githubActionBenchmark(doc));
    else if (format === "customSmallerIsBetter" || format === "customBiggerIsBetter") printJson(githubActionBenchmark(doc)[format]);
    else this.out(humanText(doc));
    return (doc.gate?.failed ?? 0) > 0 || (doc.comparison?.failed ?? 0) > 0 ? 1 : 0;
  }

  /** Suite names, and the values of `--json FILE` / `--gate FILE` written with a space: clipanion reads a
   * tolerant option's value only as `--json=FILE`, so a following word arrives among the suites. */
  private positionals(): { suiteNames: string[]; jsonFile?: string; gateFile?: string } {
    const argv = process.argv.slice(2);
    let jsonFile = typeof this.json === "string" ? this.json : undefined;
    let gateFile = typeof this.gate === "string" ? this.gate : undefined;
    const suiteNames: string[] = [];
    for (const p of this.suites) {
      if (findSuite(p)) {
        if (!suiteNames.includes(p)) suiteNames.push(p);
        continue;
      }
      const prev = argv[argv.indexOf(p) - 1];
      if (prev === "--json" && this.json === true && jsonFile === undefined) jsonFile = p;
      else if (prev === "--gate" && this.gate === true && gateFile === undefined) gateFile = p;
      else throw new UsageError(`unknown suite '${p}' (suites: ${SUITES.map((s) => s.name).join(", ")})`);
    }
    if (this.gate === true && gateFile === undefined) gateFile = DEFAULT_TARGETS;
    return { suiteNames, jsonFile, gateFile: gateFile !== undefined ? resolve(gateFile) : undefined };
  }

  /** --format, or json for a bare --json (one that names no file). */
  private parseFormat(jsonToFile: boolean): Format {
    if (this.format !== undefined && !(FORMATS as readonly string[]).includes(this.format))
      throw new UsageError(`--format expects human, json or github-action-benchmark (or one tool's array: customSmallerIsBetter, customBiggerIsBetter), got '${this.format}'`);
    const bare = this.json === true && !jsonToFile;
    if (bare && this.format !== undefined && this.format !== "json")
      throw new UsageError(`--json alone prints JSON, which conflicts with --format ${this.format} (write the JSON to a file: --json FILE)`);
    return (this.format as Format | undefined) ?? (bare ? "json" : "human");
  }

  private listSuites(): number {
    for (const s of SUITES) {
      this.out(`${s.name.padEnd(8)} ${s.title}`);
      this.out(`         ${s.description}`);
    }
    return 0;
  }

  private userError(message: string): number {
    this.err(`aether bench: ${message}`);
    return 2;
  }
}

function parsePercent(v: string): number {
  const n = Number(v.replace(/%$/, ""));
  if (!Number.isFinite(n) || n < 0 || n > 1e6) throw new UsageError(`--max-regression expects a percentage in [0, 1000000], got '${v}'`);
  return n;
}

/** Fail before the benchmarks run, not after, when an output path cannot be a file. */
function checkWritable(flag: string, path: string): void {
  const p = resolve(path);
  if (existsSync(p) && statSync(p).isDirectory()) throw new UsageError(`${flag} ${path} is a directory`);
  let dir = dirname(p);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) throw new UsageError(`${flag} ${path}: ${dir} is not a directory`);
  try {
    accessSync(existsSync(p) ? p : dir, constants.W_OK);
  } catch {
    throw new UsageError(`${flag} ${path}: not writable`);
  }
}

function writeOut(path: string, text: string): void {
  mkdirSync(dirname(resolve(path)), { recursive: true });
  writeFileSync(path, text);
}
