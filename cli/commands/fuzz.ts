import { existsSync, statSync } from "node:fs";
import { basename, dirname, relative, resolve } from "node:path";
import { Command, Option } from "clipanion";
import { AetherCommand, parseCount, parseSeconds, UsageError } from "../lib/command.ts";
import { color, colorEnabled, printJson, table, verdictText } from "../lib/output.ts";
import { binaryPath, buildTargets, compilerFor, FuzzBuildError, gccSanitizers, type BuildConfig, type Sanitizer } from "../lib/fuzz/build.ts";
import { replayBuiltin, reproduceBuiltin, runBuiltin } from "../lib/fuzz/builtin/engine.ts";
import { BUILTIN_TARGETS } from "../lib/fuzz/builtin/index.ts";
import { bundleJazzerTarget, jazzerStatus, replayUnderNode, runJazzer } from "../lib/fuzz/jazzer.ts";
import { replay, reproduce, runLibFuzzer, type FuzzResult, type Progress } from "../lib/fuzz/libfuzzer.ts";
import { corpusDir, corpusFiles, cTargets, jazzerTargets } from "../lib/fuzz/targets.ts";
import { PACKAGE_ROOT } from "../native/ffi.ts";

type Engine = "libfuzzer" | "jazzer" | "builtin";
const ENGINES: Engine[] = ["libfuzzer", "jazzer", "builtin"];

function fmtInt(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e4 ? `${(n / 1e3).toFixed(1)}k` : String(n);
}

export class FuzzCommand extends AetherCommand {
  static override paths = [["fuzz"]];
  static override usage = Command.Usage({
    description: "coverage-guided fuzzing of every component, and replay of the committed corpora",
    details: `
      Targets live in fuzz/: one C file per component (the safe allocator, the SIMD kernels, and each
      component and parser as it lands), each running operation programs decoded from the input against a
      model; fuzz/corpus/<target>/ holds its committed seed corpus and minimized reproducers. \`--list\` shows
      them with the engines that can run each.

      Engines: \`libfuzzer\` (the default where clang with libFuzzer is installed) builds the targets with
      -fsanitize=fuzzer,address,undefined (\`--asan\` or \`--ubsan\` keeps one) into build/fuzz/, runs them
      with the committed corpus (new inputs go to build/fuzz/work/<target>/; \`--update-corpus\` merges those
      that reach new coverage into the committed corpus), streams progress (execs, exec/s, coverage, corpus),
      saves crashes under fuzz/artifacts/<target>/, minimizes them and prints the command that reproduces
      each. \`builtin\` needs no clang: seeded random and mutated programs sent through the FFI in a child
      process against the same models, with failing programs shrunk to a minimal case. \`jazzer\` runs the
      Jazzer.js targets (fuzz/jazzer/) for the CLI's TypeScript parsers under Node, when @jazzer.js/core is
      installed and its addon loads.

      \`--regression\` replays every committed corpus without libFuzzer (gcc and fuzz/regression_driver.c; the
      builtin and Jazzer targets' corpora through Bun and Node), as CI does. \`--repro FILE\` runs one input and
      prints each operation and the outcome. Without --time or --runs each target fuzzes for 30 seconds.
      Exits 1 if anything was found.
    `,
    examples: [
      ["List the targets", "aether fuzz --list"],
      ["Fuzz every C target for 10 minutes each, two at a time", "aether fuzz --time 600 --jobs 2"],
      ["Fuzz the allocator with ASan only", "aether fuzz alloc --time 60 --asan"],
      ["No clang here: the Bun-side engine", "aether fuzz alloc --engine builtin --runs 2000"],
      ["Replay every committed corpus (what CI runs)", "aether fuzz --regression"],
      ["Reproduce a finding", "aether fuzz alloc --repro fuzz/artifacts/alloc/crash-0123abcd"],
    ],
  });

  targets = Option.Rest({ name: "target" });
  time = Option.String("--time", { description: "seconds per target (default 30 unless --runs is given)" });
  runs = Option.String("--runs", { description: "inputs per target" });
  jobs = Option.String("--jobs", "1", { description: "targets fuzzed at once; with one target, libFuzzer's -fork=N" });
  engine = Option.String("--engine", { description: "libfuzzer (default where clang is installed), jazzer or builtin" });
  asan = Option.Boolean("--asan", false, { description: "AddressSanitizer only (default: address and undefined)" });
  ubsan = Option.Boolean("--ubsan", false, { description: "UndefinedBehaviorSanitizer only" });
  repro = Option.String("--repro", { description: "run one input through the target and print what happened" });
  regression = Option.Boolean("--regression", false, { description: "replay the committed corpora without libFuzzer" });
  list = Option.Boolean("--list", false, { description: "list the targets" });
  updateCorpus = Option.Boolean("--update-corpus", false, { description: "merge new coverage into fuzz/corpus/<target>/" });
  seed = Option.String("--seed", { description: "builtin engine: the generator's seed (default: random, printed)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  private sanitizers(): Sanitizer[] {
    if (this.asan && this.ubsan) return ["address", "undefined"];
    if (this.asan) return ["address"];
    if (this.ubsan) return ["undefined"];
    return ["address", "undefined"];
  }

  private allNames(): string[] {
    return [...new Set([...cTargets().map((t) => t.name), ...BUILTIN_TARGETS.map((t) => t.name), ...jazzerTargets().map((t) => t.name)])];
  }

  private checkNames(names: string[], known: string[], engine: string): void {
    for (const n of names) {
      if (known.includes(n)) continue;
      const all = this.allNames();
      if (all.includes(n)) throw new UsageError(`target '${n}' has no ${engine} version (${engine} targets: ${known.join(", ")})`);
      throw new UsageError(`unknown fuzz target '${n}' (targets: ${all.join(", ")})`);
    }
  }

  private progressPrinter(): (target: string, p: Progress) => void {
    const last = new Map<string, number>();
    return (target, p) => {
      if (this.json) return;
      // The builtin engine has no coverage to report, only executions.
      const cov = p.coverage || p.features ? `  cov ${p.coverage}  ft ${p.features}  corpus ${p.corpus}` : "";
      const line = `${target.padEnd(14)} #${fmtInt(p.execs).padStart(7)}  ${String(p.execPerSec).padStart(6)} exec/s${cov}  ${p.seconds.toFixed(0)}s`;
      if (colorEnabled) {
        this.context.stdout.write(`\r\x1b[2K${line}`);
        return;
      }
      const now = performance.now();
      if (now - (last.get(target) ?? 0) < 10_000) return;
      last.set(target, now);
      this.out(line);
    };
  }

  async execute(): Promise<number> {
    const engine = (this.engine ?? (("cc" in compilerFor("libfuzzer")) ? "libfuzzer" : undefined)) as Engine | undefined;
    if (this.engine && !ENGINES.includes(this.engine as Engine)) throw new UsageError(`--engine expects libfuzzer, jazzer or builtin, got '${this.engine}'`);
    const seconds = this.time !== undefined ? parseSeconds("--time", this.time, 7 * 86400) : undefined;
    const runs = this.runs !== undefined ? parseCount("--runs", this.runs, 0) : undefined;
    const jobs = parseCount("--jobs", this.jobs, 1, 64);
    for (const n of this.targets) if (!this.allNames().includes(n)) throw new UsageError(`unknown fuzz target '${n}' (targets: ${this.allNames().join(", ")})`);
    if (this.list) return this.doList();
    if (this.repro) return this.doRepro(engine);
    if (this.regression) return this.doRegression();
    if (engine === undefined) {
      const why = (compilerFor("libfuzzer") as { missing: string }).missing;
      this.err(`aether fuzz: ${why}; meanwhile: --engine builtin (no clang needed) or --regression`);
      return 1;
    }
    const budget = seconds === undefined && runs === undefined ? 30 : seconds;
    const onProgress = this.progressPrinter();
    let results: FuzzResult[];
    if (engine === "libfuzzer") {
      const all = cTargets();
      const names = this.targets.length ? this.targets : all.map((t) => t.name);
      this.checkNames(names, all.map((t) => t.name), "libfuzzer");
      const targets = all.filter((t) => names.includes(t.name));
      const config: BuildConfig = { engine: "libfuzzer", sanitizers: this.sanitizers() };
      const bins = await this.build(config, targets, jobs);
      if (!bins) return 1;
      const fork = targets.length === 1 && jobs > 1 ? jobs : undefined;
      results = await this.parallel(targets, fork ? 1 : jobs, (t) =>
        runLibFuzzer(t.name, bins.get(t.name)!, { seconds: budget, runs, fork, extra: t.options, updateCorpus: this.updateCorpus, onProgress: (p) => onProgress(t.name, p) }),
      );
    } else if (engine === "builtin") {
      const names = this.targets.length ? this.targets : BUILTIN_TARGETS.map((t) => t.name);
      this.checkNames(names, BUILTIN_TARGETS.map((t) => t.name), "builtin");
      const seed = this.seed !== undefined ? parseCount("--seed", this.seed, 0, 0xffffffff) : (Math.random() * 2 ** 32) >>> 0;
      if (!this.json) this.out(color.dim(`builtin engine, seed ${seed} (replay with --seed ${seed})`));
      const targets = BUILTIN_TARGETS.filter((t) => names.includes(t.name));
      results = await this.parallel(targets, jobs, (t) =>
        runBuiltin(t, { seconds: budget, runs, seed, onProgress: (p) => onProgress(t.name, p), log: (l) => !this.json && this.out(color.dim(l)) }),
      );
    } else {
      // Names first: a target without a Jazzer version is a usage error whether or not Jazzer.js loads here.
      const all = jazzerTargets();
      const names = this.targets.length ? this.targets : all.map((t) => t.name);
      this.checkNames(names, all.map((t) => t.name), "jazzer");
      const st = jazzerStatus();
      if (!st.ok) {
        this.err(`aether fuzz: ${st.reason}`);
        return 1;
      }
      results = await this.parallel(all.filter((t) => names.includes(t.name)), jobs, async (t) =>
        runJazzer(t.name, await bundleJazzerTarget(t.source, t.name), st, { seconds: budget, runs, onProgress: (p) => onProgress(t.name, p) }),
      );
    }
    if (colorEnabled && !this.json) this.context.stdout.write("\r\x1b[2K");
    return this.report(results);
  }

  private async parallel<T>(items: T[], jobs: number, fn: (x: T) => Promise<FuzzResult>): Promise<FuzzResult[]> {
    const out: FuzzResult[] = new Array(items.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.max(1, Math.min(jobs, items.length)) }, async () => {
        while (next < items.length) {
          const i = next++;
          out[i] = await fn(items[i]!);
          if (!this.json && colorEnabled) this.context.stdout.write("\r\x1b[2K");
          if (!this.json) this.out(this.resultLine(out[i]!));
        }
      }),
    );
    return out;
  }

  private async build(config: BuildConfig, targets: ReturnType<typeof cTargets>, jobs: number): Promise<Map<string, string> | undefined> {
    try {
      return await buildTargets(config, targets, { jobs: Math.max(2, jobs), log: (l) => !this.json && this.out(color.dim(l)) });
    } catch (e) {
      if (e instanceof FuzzBuildError) {
        this.err(`aether fuzz: ${e.message}`);
        return undefined;
      }
      throw e;
    }
  }

  private resultLine(r: FuzzResult): string {
    const head = `${r.target.padEnd(14)} ${verdictText(r.status === "pass" ? "pass" : "fail")}  ${fmtInt(r.execs)} execs in ${r.seconds.toFixed(0)} s (${r.execPerSec} exec/s)` +
      (r.engine !== "builtin" ? `, cov ${r.coverage}, ft ${r.features}, corpus ${r.corpus}` : "");
    const lines = [head];
    if (r.error) lines.push(`    ${color.red("-")} ${r.error}`);
    for (const f of r.findings) {
      lines.push(`    ${color.red("-")} ${f.summary.split("\n")[0]}`);
      lines.push(`      saved ${f.file}${f.minimized ? `, minimized ${f.minimized} (${f.minimizedBytes} bytes)` : ""}`);
      lines.push(`      reproduce: ${f.reproduce}`);
    }
    return lines.join("\n");
  }

  private report(results: FuzzResult[]): number {
    const failed = results.filter((r) => r.status !== "pass");
    if (this.json) printJson({ verdict: failed.length ? "fail" : "pass", results });
    else this.out(failed.length ? color.red(`${failed.length} target(s) found something`) : color.green(`${results.length} target(s), nothing found`));
    return failed.length ? 1 : 0;
  }

  private doList(): number {
    const c = cTargets(), b = BUILTIN_TARGETS, j = jazzerTargets();
    const rows = this.allNames().map((name) => {
      const engines = [c.some((t) => t.name === name) && "libfuzzer", b.some((t) => t.name === name) && "builtin", j.some((t) => t.name === name) && "jazzer"].filter(Boolean) as string[];
      const description = c.find((t) => t.name === name)?.description ?? b.find((t) => t.name === name)?.description ?? j.find((t) => t.name === name)?.description ?? "";
      return { name, engines, corpus: corpusFiles(name).length, description };
    });
    if (this.json) {
      printJson({ targets: rows });
      return 0;
    }
    this.out(table([["target", "engines", "corpus", "what it checks"].map((h) => color.dim(h)), ...rows.map((r) => [r.name, r.engines.join(","), String(r.corpus), r.description.length > 100 ? `${r.description.slice(0, 97)}...` : r.description])], [2]));
    return 0;
  }

  /** The target an input belongs to: named, or the folder it sits in (fuzz/corpus/<t>/, fuzz/artifacts/<t>/). */
  private reproTarget(file: string): string {
    if (this.targets.length > 1) throw new UsageError("--repro takes one target");
    if (this.targets.length === 1) return this.targets[0]!;
    const guess = basename(dirname(resolve(file)));
    if (this.allNames().includes(guess)) return guess;
    throw new UsageError(`name the target of ${file} (aether fuzz <target> --repro FILE)`);
  }

  private async doRepro(engine: Engine | undefined): Promise<number> {
    const file = resolve(this.repro!);
    if (!existsSync(file)) throw new UsageError(`--repro: no such file: ${this.repro}`);
    if (!statSync(file).isFile()) throw new UsageError(`--repro takes one input file, and ${this.repro} is not a file (a corpus folder replays with --regression)`);
    const name = this.reproTarget(this.repro!);
    const c = cTargets().find((t) => t.name === name);
    const b = BUILTIN_TARGETS.find((t) => t.name === name);
    const j = jazzerTargets().find((t) => t.name === name);
    let chosen: string = this.engine ?? (c ? (engine === "libfuzzer" ? "libfuzzer" : "regression") : b ? "builtin" : "jazzer");
    let code: number, stdout: string, stderr: string;
    if (chosen === "builtin") {
      if (!b) throw new UsageError(`target '${name}' has no builtin version`);
      ({ code, stdout, stderr } = await reproduceBuiltin(b, file));
    } else if (chosen === "jazzer") {
      if (!j) throw new UsageError(`target '${name}' has no jazzer version`);
      const r = replayUnderNode(await bundleJazzerTarget(j.source, name), [file]);
      ({ code, stdout, stderr } = r);
      chosen = "node (the jazzer target without Jazzer.js)";
    } else {
      if (!c) throw new UsageError(`target '${name}' has no C version`);
      const config: BuildConfig = chosen === "libfuzzer" ? { engine: "libfuzzer", sanitizers: this.sanitizers() } : { engine: "regression", sanitizers: gccSanitizers() };
      const bins = await this.build(config, [c], 2);
      if (!bins) return 1;
      ({ code, stdout, stderr } = await reproduce(bins.get(name)!, file, chosen === "libfuzzer"));
    }
    const errLines = stderr.split("\n").filter((l) => l.trim() && !/^(running |INFO:|Running: |Executed |\*\*\*|MERGE|replayed )/.test(l));
    if (this.json) {
      printJson({ target: name, engine: chosen, file: relative(PACKAGE_ROOT, file), outcome: code === 0 ? "ok" : "failed", exitCode: code, steps: stdout.split("\n").filter(Boolean), diagnostics: errLines });
      return code === 0 ? 0 : 1;
    }
    this.out(color.dim(`${name} (${chosen}): ${relative(PACKAGE_ROOT, file)}`));
    if (stdout.trim()) this.out(stdout.trimEnd());
    if (code === 0) {
      this.out(`${color.green("ok")}: the input ran to the end and every check held`);
      return 0;
    }
    for (const l of errLines.slice(0, 40)) this.out(l);
    this.out(`${color.red("failed")}: exit ${code}`);
    return 1;
  }

  private async doRegression(): Promise<number> {
    const names = this.targets;
    const c = cTargets().filter((t) => !names.length || names.includes(t.name));
    const b = BUILTIN_TARGETS.filter((t) => !c.some((x) => x.name === t.name) && (!names.length || names.includes(t.name)));
    const j = jazzerTargets().filter((t) => !names.length || names.includes(t.name));
    if (names.length) this.checkNames(names, [...c, ...b, ...j].map((t) => t.name), "regression");
    const rows: { target: string; via: string; inputs: number; ok: boolean; failed?: string; summary?: string; seconds: number }[] = [];
    const sans = this.asan || this.ubsan ? this.sanitizers() : gccSanitizers();
    const config: BuildConfig = { engine: "regression", sanitizers: sans };
    if (c.length) {
      const bins = await this.build(config, c, 2);
      if (!bins) return 1;
      for (const t of c) {
        const files = corpusFiles(t.name);
        if (!files.length) {
          rows.push({ target: t.name, via: "gcc", inputs: 0, ok: false, summary: `no committed corpus in ${relative(PACKAGE_ROOT, corpusDir(t.name))}`, seconds: 0 });
          continue;
        }
        const r = await replay(bins.get(t.name)!, [corpusDir(t.name)]);
        rows.push({ target: t.name, via: `gcc${sans.length ? ` (${sans.join(", ")})` : ""}`, ...r });
      }
    }
    for (const t of b) {
      const t0 = performance.now();
      const files = corpusFiles(t.name);
      const r = await replayBuiltin(t, files);
      rows.push({ target: t.name, via: "bun (builtin)", ...r, ok: r.ok && files.length > 0, summary: files.length ? r.summary : `no committed corpus in ${relative(PACKAGE_ROOT, corpusDir(t.name))}`, seconds: (performance.now() - t0) / 1000 });
    }
    for (const t of j) {
      const t0 = performance.now();
      const files = corpusFiles(t.name);
      const r = replayUnderNode(await bundleJazzerTarget(t.source, t.name), files);
      const m = /replayed (\d+) inputs/.exec(r.stderr);
      const running = [...r.stderr.matchAll(/^running (\S+)/gm)];
      rows.push({
        target: `${t.name}`, via: "node (jazzer target)", inputs: m ? Number(m[1]) : Math.max(0, running.length - 1), ok: r.code === 0 && !!m && files.length > 0,
        failed: r.code !== 0 && running.length ? relative(PACKAGE_ROOT, running[running.length - 1]![1]!) : undefined,
        summary: r.code !== 0 ? r.stderr.split("\n").filter((l) => l && !l.startsWith("running")).slice(0, 2).join(" | ") : undefined,
        seconds: (performance.now() - t0) / 1000,
      });
    }
    const failed = rows.filter((r) => !r.ok);
    if (this.json) {
      printJson({ verdict: failed.length ? "fail" : "pass", results: rows });
      return failed.length ? 1 : 0;
    }
    for (const r of rows) {
      this.out(`${r.target.padEnd(14)} ${verdictText(r.ok ? "pass" : "fail")}  ${r.inputs} input(s) replayed via ${r.via} in ${r.seconds.toFixed(1)} s`);
      if (!r.ok) {
        if (r.failed) this.out(`    ${color.red("-")} ${r.failed}: ${r.summary?.split("\n")[0] ?? ""}`);
        else this.out(`    ${color.red("-")} ${r.summary ?? "failed"}`);
        if (r.failed) this.out(`      reproduce: aether fuzz ${r.target} --repro ${r.failed}`);
      }
    }
    this.out(failed.length ? color.red(`${failed.length} corpus replay(s) failed`) : color.green(`${rows.length} corpora replayed, every input passed`));
    return failed.length ? 1 : 0;
  }
}

