import { Command, Option } from "clipanion";
import { existsSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { BUILD_ROOT, PACKAGE_ROOT } from "../native/ffi.ts";
import { AetherCommand, UsageError } from "../lib/command.ts";
import { color, printJson, table, verdictText } from "../lib/output.ts";
import { plannedNative, runAll, type SanitizerRun, type ScenarioResult } from "../lib/sanitize/run.ts";
import { apiPresent, fuzzScenarios, matches, NATIVE, suiteFiles, suiteId } from "../lib/sanitize/scenarios.ts";
import { SANITIZER, SANITIZERS, type SanitizerName } from "../lib/sanitize/sanitizers.ts";
import { loadSuppressions, SuppressionError } from "../lib/sanitize/suppressions.ts";

export class SanitizeCommand extends AetherCommand {
  static override paths = [["sanitize"]];
  static override usage = Command.Usage({
    description: "run everything under ASan, UBSan, TSan and MSan; exit 1 on any report",
    details: `
      For each sanitizer: builds the instrumented library (build/<variant>/, and checks that it calls the
      runtime's hooks), then runs (1) the native C drivers of test/native/ (unit scenarios of every component,
      the concurrent stress of every structure) and the fuzz corpora, linked directly against that library, with
      strict options (halt_on_error=1, detect_leaks=1, detect_stack_use_after_return=1, second_deadlock_stack=1;
      UBSan built with -fno-sanitize-recover=all) and smaller counts under TSan, and (2) the whole Bun test
      suite, file by file, with the sanitizer's runtime preloaded (LD_PRELOAD) and AETHER_VARIANT=<variant>, so
      every process the tests start loads the instrumented library too. MemorySanitizer runs the native drivers
      only: it needs every line of the process instrumented, and Bun is not.

      Reports from every process are collected from their log files, folded by kind and place (the first frame
      in this repository's code) and printed with the scenario that hit them; full reports stay in
      build/sanitize/<sanitizer>/logs/, each scenario's output in build/sanitize/<sanitizer>/output/.

      With no sanitizer named, runs every one this machine can (a missing compiler or runtime is said in one
      line, and skipped); a named one that cannot run is a failure. Stops after the first sanitizer that fails
      unless --keep-going. Suppressions, if ever needed, live in sanitizer-suppressions.txt, one per line, each
      with its reason.

      --driver FILE.c adds a C program (linked against the instrumented library, run without arguments; it
      passes when it exits 0 with no report); "asan:FILE.c" runs it under one sanitizer only. Scenario ids
      (see --list) select what runs with --only: "alloc", "alloc/unit", "fuzz", "extra", "suite/alloc".
    `,
    examples: [
      ["Everything this machine can run", "aether sanitize"],
      ["ASan and UBSan, every sanitizer even after a failure", "aether sanitize --asan --ubsan --keep-going"],
      ["The native drivers under TSan, as JSON", "aether sanitize --tsan --drivers-only --json"],
      ["Prove MSan catches a bug of yours", "aether sanitize --msan --only extra --driver msan:test/fixtures/sanitize/uninit_read.c"],
      ["List the scenarios", "aether sanitize --list"],
    ],
  });

  asan = Option.Boolean("--asan", false, { description: "AddressSanitizer (with LeakSanitizer for the native drivers)" });
  ubsan = Option.Boolean("--ubsan", false, { description: "UndefinedBehaviorSanitizer" });
  tsan = Option.Boolean("--tsan", false, { description: "ThreadSanitizer" });
  msan = Option.Boolean("--msan", false, { description: "MemorySanitizer (clang; native drivers only)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });
  keepGoing = Option.Boolean("--keep-going", false, { description: "run every sanitizer even after one failed" });
  driversOnly = Option.Boolean("--drivers-only", false, { description: "native drivers only, not the Bun suite" });
  quick = Option.Boolean("--quick", false, { description: "the quick native scenarios only (what aether check runs)" });
  driver = Option.Array("--driver", { description: "add a C driver: FILE.c, or asan|ubsan|tsan|msan:FILE.c for one sanitizer" });
  only = Option.Array("--only", { description: "run only scenarios with this id or id prefix (see --list)" });
  list = Option.Boolean("--list", false, { description: "list the scenarios and exit" });
  outDir = Option.String("--out", { description: "folder for builds of the drivers, logs and outputs (default build/sanitize)" });

  async execute(): Promise<number> {
    const named = SANITIZERS.filter((s) => this[s]);
    const sanitizers = named.length ? named : SANITIZERS;
    const drivers = (this.driver ?? []).map((d) => this.checkDriver(d));
    for (const d of drivers) {
      const only = /^(asan|ubsan|tsan|msan):/.exec(d)?.[1] as SanitizerName | undefined;
      if (only && !sanitizers.includes(only)) throw new UsageError(`--driver ${d}: ${only} is not part of this run (add --${only})`);
    }
    const opts = {
      sanitizers,
      explicit: named.length > 0,
      keepGoing: this.keepGoing,
      driversOnly: this.driversOnly,
      quick: this.quick,
      drivers,
      only: this.only,
      out: this.outDir ? resolve(this.outDir) : join(BUILD_ROOT, "sanitize"),
    };
    if (this.list) return this.printList(opts);
    if (this.only) this.checkOnly(opts);
    const inside = process.env.AETHER_SANITIZE_SUITE;
    if (inside && !this.driversOnly && !this.quick) {
      throw new UsageError(`this runs inside the ${inside} run of the test suite (AETHER_SANITIZE_SUITE): only --drivers-only or --quick may run here`);
    }
    try {
      loadSuppressions();
    } catch (e) {
      if (e instanceof SuppressionError) throw new UsageError(e.message);
      throw e;
    }

    const t0 = performance.now();
    const runs = runAll(
      { ...opts, progress: this.json ? undefined : (l) => this.err(color.dim(`  ${l}`)) },
      (s) => this.json || this.out(color.bold(`${SANITIZER[s].title} (${s})`)),
      (r) => this.json || this.printRun(r),
    );
    const failed = runs.filter((r) => r.verdict === "fail");
    // Nothing could run at all: that is not a pass (a CI without compilers must not go green).
    const nothing = runs.length > 0 && runs.every((r) => r.verdict === "skip");
    const seconds = (performance.now() - t0) / 1000;
    const notRun = sanitizers.filter((s) => !runs.some((r) => r.sanitizer === s));
    if (this.json) {
      printJson({ verdict: failed.length || nothing ? "fail" : "pass", seconds, sanitizers: runs, notRun, out: opts.out });
    } else {
      const ran = runs.filter((r) => r.verdict !== "skip").map((r) => r.sanitizer);
      const skipped = runs.filter((r) => r.verdict === "skip").map((r) => r.sanitizer);
      const parts = [
        failed.length
          ? color.red(`${failed.map((r) => r.sanitizer).join(", ")} failed`)
          : nothing
            ? color.red("no sanitizer can run on this machine")
            : color.green(`${ran.join(", ")} clean`),
        skipped.length ? `skipped: ${skipped.join(", ")}` : "",
        notRun.length ? `not run after the failure: ${notRun.join(", ")} (--keep-going runs them)` : "",
      ].filter(Boolean);
      this.out(`${parts.join("; ")} (${seconds.toFixed(0)} s); reports and outputs in ${opts.out.startsWith(`${process.cwd()}/`) ? relative(process.cwd(), opts.out) : opts.out}`);
    }
    return failed.length || nothing ? 1 : 0;
  }

  private checkDriver(spec: string): string {
    const m = /^(asan|ubsan|tsan|msan):(.+)$/.exec(spec);
    const file = m ? m[2]! : spec;
    if (/^[a-z]+:/.test(spec) && !m) throw new UsageError(`--driver ${spec}: the sanitizer before ':' must be asan, ubsan, tsan or msan`);
    if (!file.endsWith(".c")) throw new UsageError(`--driver ${spec}: expected a C file (FILE.c)`);
    const abs = isAbsolute(file) ? file : resolve(process.cwd(), file);
    if (!existsSync(abs)) throw new UsageError(`--driver ${spec}: ${file} does not exist`);
    return m ? `${m[1]}:${abs}` : abs;
  }

  private checkOnly(opts: { sanitizers: SanitizerName[]; quick: boolean; drivers: string[]; only?: string[]; driversOnly: boolean }): void {
    const ids = new Set<string>();
    for (const s of SANITIZERS) for (const { sc } of plannedNative(s, { ...opts, only: undefined })) ids.add(sc.id);
    for (const f of suiteFiles()) ids.add(suiteId(f));
    for (const p of opts.only ?? []) {
      if (![...ids].some((id) => matches(id, [p]))) throw new UsageError(`--only ${p} matches no scenario (see aether sanitize --list)`);
    }
  }

  private printList(opts: { sanitizers: SanitizerName[]; quick: boolean; drivers: string[]; only?: string[] }): number {
    const native = [...NATIVE.filter((sc) => !sc.requires || apiPresent(sc.requires)), ...fuzzScenarios()];
    const rows: string[][] = [["id", "component", "arguments (full / tsan / quick)"]];
    const extra = opts.drivers.length ? plannedNative("asan", { quick: false, drivers: opts.drivers, only: ["extra"] }) : [];
    for (const sc of [...native, ...extra.map((e) => e.sc)]) {
      if (!matches(sc.id, opts.only)) continue;
      const a = (x?: string[]) => (x ? x.join(" ") || "-" : "-");
      rows.push([sc.id, sc.component, `${a(sc.args)} / ${a(sc.tsanArgs ?? sc.args)} / ${sc.quickArgs ? a(sc.quickArgs) : "not quick"}`]);
    }
    for (const f of suiteFiles()) if (matches(suiteId(f), opts.only)) rows.push([suiteId(f), f, "bun test (not under msan)"]);
    if (this.json) printJson(rows.slice(1).map(([id, component, args]) => ({ id, component, args })));
    else this.out(table(rows));
    return 0;
  }

  private printRun(r: SanitizerRun): void {
    const rel = (p: string) => (p.startsWith(`${PACKAGE_ROOT}/`) ? relative(PACKAGE_ROOT, p) : p);
    if (r.verdict === "skip" || !r.library) {
      // skipped, or it could not start (a named sanitizer this machine cannot run, a build that failed)
      this.out(`  ${verdictText(r.verdict)}  ${r.reason}`);
      return;
    }
    if (r.library) this.out(`  library   ${rel(r.library)} (${r.hooks} ${SANITIZER[r.sanitizer].hookPrefix}* hooks, built in ${(r.buildSeconds ?? 0).toFixed(1)} s)`);
    const row = (x: ScenarioResult) => [
      `  ${verdictText(x.verdict)}`,
      x.kind === "native" ? `${x.id}${x.args.length ? ` ${x.args.join(" ")}` : ""}` : x.component,
      `${x.seconds.toFixed(1)} s`,
      x.reports ? color.red(`${x.reports} report(s)`) : x.detail,
    ];
    const rows = r.scenarios.map(row);
    if (rows.length) this.out(table(rows, [2]));
    for (const x of r.scenarios) for (const t of (x.failedTests ?? []).slice(0, 10)) this.out(`      ${color.red("-")} ${t}`);
    if (r.suite !== "ran") this.out(`  suite     ${r.suite}`);
    for (const f of r.findings) {
      this.out(`  ${color.red(f.kind)}  ${f.where}  [${f.scenarios.join(", ")}]${f.count > 1 ? ` (${f.count}x)` : ""}`);
      this.out(`      ${f.headline}`);
      this.out(`      full report: ${rel(f.log)}`);
    }
    const verdict = r.verdict === "pass" ? color.green("clean") : color.red(`FAILED: ${r.reason ?? ""}`);
    this.out(`  ${r.title}: ${verdict} (${r.seconds.toFixed(1)} s)`);
  }
}
