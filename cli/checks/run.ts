// `aether run`'s self-check: a real program runs unchanged under the preload, and a program with a heap bug
// (the double-free fixture, compiled here with gcc) is caught with the right kind.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../native/ffi.ts";
import { runProgram, type RunOptions } from "../lib/run-program.ts";
import { which } from "../lib/tools.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const QUIET: RunOptions = { leaks: "off", abortOnError: false, failOnError: false, backtrace: false, json: true, stdio: "ignore" };

export const runCheck: CheckDef = {
  component: "aether run",
  id: "run",
  async run(): Promise<CheckResult> {
    const problems: string[] = [];
    const t0 = performance.now();
    const clean = await runProgram("sh", ["-c", "exit 3"], QUIET);
    const ms = performance.now() - t0;
    if (clean.code !== 3) problems.push(`sh -c 'exit 3' exited with ${clean.code} under the preload`);
    if (clean.report.totalErrors) problems.push(`sh reported ${clean.report.totalErrors} memory error(s)`);
    if (!clean.report.mainReported) problems.push("sh wrote no report: the preload did not load");
    if (!which("gcc")) {
      return {
        verdict: problems.length ? "fail" : "pass",
        figure: `clean program unchanged (${ms.toFixed(0)} ms); gcc not found, so no heap-bug program to catch`,
        problems,
      };
    }
    const dir = mkdtempSync(join(tmpdir(), "aether-check-run-"));
    try {
      const exe = join(dir, "double_free");
      const cc = Bun.spawnSync({ cmd: ["gcc", "-O0", join(PACKAGE_ROOT, "test", "fixtures", "double_free.c"), "-o", exe] });
      if (cc.exitCode !== 0) problems.push(`gcc could not build the double-free fixture`);
      else {
        const bad = await runProgram(exe, [], { ...QUIET, log: join(dir, "diag.log") });
        if (bad.report.errorsByKind["double-free"] !== 1)
          problems.push(`the double-free fixture was reported as ${JSON.stringify(bad.report.errorsByKind)}`);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `clean program unchanged (exit 3 kept, ${ms.toFixed(0)} ms), double free in a C program caught`,
      problems,
    };
  },
};
