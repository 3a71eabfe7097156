import { Command, Option } from "clipanion";
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { plugin } from "bun";
import * as t from "typanion";
import { AetherCommand, appendableFile, parseCount, UsageError } from "../lib/command.ts";
import { formatRunReport, runProgram, type RunOptions } from "../lib/run-program.ts";
import { applyScriptOptions, scriptReport, writeReport } from "../lib/run-script.ts";
import { memory } from "../native/memory.ts";

const API_PATH = resolve(import.meta.dir, "..", "native", "api.ts");
const SCRIPT = /\.(ts|js|mjs|mts|cjs)$/;

/** Let scripts outside this package `import ... from "aether-memory"`: rewrite that specifier, in files under
 * the script's folder, to this package's API (Bun's runtime plugins cannot resolve bare names). */
function provideApi(root: string): void {
  const escaped = root.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
  plugin({
    name: "aether-memory-api",
    setup(build) {
      build.onLoad({ filter: new RegExp(`^${escaped}/(?!.*node_modules/).*\\.(ts|mts|js|mjs)$`) }, async (args) => {
        const src = await Bun.file(args.path).text();
        const contents = src.replace(
          /(\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)(["'])aether-memory\2/g,
          (_m, lead: string) => `${lead}${JSON.stringify(API_PATH)}`,
        );
        const loader = /\.m?ts$/.test(args.path) ? "ts" : "js";
        return { contents, loader };
      });
    },
  });
}

export class RunCommand extends AetherCommand {
  static override paths = [["run"]];
  static override usage = Command.Usage({
    description: "run a native program (or a script) under the safe allocator and report what it found",
    details: `
      \`aether run [options] -- <program> [args...]\` runs any dynamically linked program with
      libaether-preload.so as its malloc: every heap allocation gets guards, a registry entry and the quarantine.
      stdin, stdout, stderr and the exit code pass through; diagnostics appear on the program's stderr as they
      happen (or in --log FILE), and when it exits a report follows on stderr: errors by kind with addresses (with
      --backtrace or AETHER_BACKTRACE=1, the allocating and freeing call stacks, symbolized) and the blocks still
      allocated at exit, largest first. Every process of the run (children of a shell, make, git) reports.
      At exit, and on SIGUSR2 (at the program's next allocation), every live block's guards are verified, so an
      overflow of a block that is never freed is still reported. The exit code is the program's own, or 1 with
      --fail-on-error when memory errors were found.

      Without \`--\`, a .ts/.js/.mjs path runs as a Bun script with the runtime loaded (it can
      \`import { memory } from "aether-memory"\`); the leak report of the safe allocator follows and the exit
      code is 1 if anything leaked or the script threw. Anything else runs as a program.
    `,
    examples: [
      ["Run a program", "aether run -- python3 script.py"],
      ["Stacks, a wider redzone, fail on any error", "aether run --backtrace --redzone 64 --fail-on-error -- ./myprog"],
      ["Every leak with its stack, report as JSON", "aether run --leaks full --backtrace --report run.json -- ./myprog"],
      ["The specification's example, as a Bun script", "aether run examples/leak-check.ts"],
    ],
  });

  leaks = Option.String("--leaks", "summary", {
    description: "summary (the program's largest blocks), full (every process, with stacks) or off",
    validator: t.isEnum(["summary", "full", "off"] as const),
  });
  abortOnError = Option.Boolean("--abort-on-error", false, { description: "abort the program at the first memory error" });
  failOnError = Option.Boolean("--fail-on-error", false, { description: "exit 1 if any memory error was found" });
  log = Option.String("--log", { description: "write the allocator's diagnostics to FILE instead of stderr" });
  quarantine = Option.String("--quarantine", { description: "freed bytes each thread holds back (default 256k)" });
  redzone = Option.String("--redzone", { description: "guard bytes on each side of a block, 8 to 4096 (default 8)" });
  backtrace = Option.Boolean("--backtrace", false, { description: "record and print allocation and free stacks" });
  json = Option.Boolean("--json", false, { description: "print the report as JSON (on stderr)" });
  report = Option.String("--report", { description: "also write the JSON report to FILE" });
  target = Option.String({ required: true, name: "program" });
  args = Option.Proxy();

  async execute(): Promise<number> {
    const raw = process.argv.slice(2);
    const dashdash = raw.indexOf("--");
    const targetIndex = raw.indexOf(this.target);
    const programMode = dashdash >= 0 && dashdash < targetIndex;
    const opts: RunOptions = {
      leaks: this.leaks as RunOptions["leaks"],
      abortOnError: this.abortOnError,
      failOnError: this.failOnError,
      log: this.log !== undefined ? appendableFile("--log", this.log) : undefined,
      quarantine: this.quarantine !== undefined ? parseCount("--quarantine", this.quarantine, 0, 2 ** 40) : undefined,
      redzone: this.redzone !== undefined ? parseCount("--redzone", this.redzone, 8, 4096) : undefined,
      backtrace: this.backtrace || process.env.AETHER_BACKTRACE === "1",
      json: this.json,
      report: this.report !== undefined ? appendableFile("--report", this.report) : undefined,
    };
    if (!programMode && SCRIPT.test(this.target)) return this.runScript(opts);
    const { code, report } = await runProgram(this.target, this.args, opts);
    if (this.json) this.err(JSON.stringify(report, null, 2));
    else this.err(formatRunReport(report, opts.leaks));
    return code;
  }

  private async runScript(opts: RunOptions): Promise<number> {
    const path = resolve(this.target);
    if (!existsSync(path)) throw new UsageError(`script not found: ${this.target}`);
    applyScriptOptions(opts);
    const seq0 = memory.lastErrorSeq();
    provideApi(dirname(path));
    process.argv = [process.argv[0]!, path, ...this.args];
    let threw = false;
    try {
      await import(path);
    } catch (e) {
      threw = true;
      this.err(`aether run: ${this.target} threw: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
    // The script's own exit code (process.exitCode) stands unless the run failed on our account.
    const own = Number(process.exitCode ?? 0) || 0;
    process.exitCode = 0;
    const report = scriptReport(this.target, this.args, threw ? 1 : own, seq0, opts.leaks);
    writeReport(opts.report, report);
    const leaks = report.processes[0]!.leaks.count;
    if (this.json) {
      this.err(JSON.stringify(report, null, 2));
    } else {
      // The specification's leak report (aether_check_leaks), then the errors' and (--leaks full) the leaks'
      // stacks when backtraces were recorded, then one summary line.
      if (opts.leaks !== "off") memory.checkLeaks();
      const details = formatRunReport(report, opts.leaks === "full" && opts.backtrace ? "full" : "off").split("\n").slice(1);
      if (opts.backtrace) for (const line of details) this.err(line);
      this.err(`aether run: ${this.target} finished: ${report.totalErrors} memory error(s), ${leaks} leak(s)`);
    }
    const failed = threw || (opts.leaks !== "off" && leaks > 0) || (opts.failOnError && report.totalErrors > 0);
    return failed ? 1 : own;
  }
}
