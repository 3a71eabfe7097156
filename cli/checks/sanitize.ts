// The sanitizers' self-check: `aether sanitize --asan --ubsan --quick` where gcc has those runtimes. The quick
// native scenarios (the allocator's unit and threaded scenarios, the SIMD kernels, the stack guard and layout
// engine, with small counts) run against the instrumented libraries; any report fails the check. The full
// run (the Bun suite, TSan, MSan, the fuzz corpora) is `aether sanitize`, in CI.
import { join } from "node:path";
import { BUILD_ROOT } from "../native/ffi.ts";
import { runAll } from "../lib/sanitize/run.ts";
import { type SanitizerName, toolchain } from "../lib/sanitize/sanitizers.ts";
import type { CheckDef, CheckResult } from "./types.ts";

export const sanitizeCheck: CheckDef = {
  component: "sanitizers",
  id: "sanitize",
  run(): CheckResult {
    const wanted: SanitizerName[] = ["asan", "ubsan"];
    const available = wanted.filter((s) => !("missing" in toolchain(s)));
    const missing = wanted.filter((s) => !available.includes(s));
    if (available.length === 0) {
      const why = toolchain("asan");
      return { verdict: "skip", figure: `no sanitizer runtime here: ${"missing" in why ? why.missing : ""}` };
    }
    const t0 = performance.now();
    const runs = runAll({
      sanitizers: available,
      explicit: false,
      keepGoing: true,
      driversOnly: true,
      quick: true,
      drivers: [],
      out: join(BUILD_ROOT, "sanitize-check"),
    });
    const seconds = (performance.now() - t0) / 1000;
    const problems: string[] = [];
    for (const r of runs) {
      if (r.verdict === "skip") problems.push(`${r.sanitizer}: ${r.reason}`);
      if (r.verdict !== "fail") continue;
      if (r.findings.length === 0 && r.reason) problems.push(`${r.sanitizer}: ${r.reason}`);
      for (const f of r.findings) problems.push(`${r.sanitizer}: ${f.kind} at ${f.where} [${f.scenarios.join(", ")}]: ${f.log}`);
      for (const x of r.scenarios) if (x.verdict === "fail" && x.reports === 0) problems.push(`${r.sanitizer}: ${x.id}: ${x.detail}`);
    }
    const ran = runs.filter((r) => r.verdict !== "skip");
    const scenarios = ran.reduce((n, r) => n + r.scenarios.length, 0);
    const hooks = ran.map((r) => `${r.sanitizer} ${r.hooks ?? 0}`).join(", ");
    const failed = runs.some((r) => r.verdict === "fail") || ran.length === 0;
    const figure = `${ran.map((r) => r.sanitizer).join(" + ")}: ${scenarios} quick native scenario runs ${failed ? "with problems" : "clean"} in ${seconds.toFixed(1)} s (runtime hooks: ${hooks})${missing.length ? `; ${missing.join(", ")} unavailable` : ""}`;
    return {
      verdict: failed ? "fail" : "pass",
      figure,
      problems,
      data: { seconds, sanitizers: runs.map((r) => ({ sanitizer: r.sanitizer, verdict: r.verdict, hooks: r.hooks, findings: r.findings.length, scenarios: r.scenarios.length })) },
    };
  },
};
