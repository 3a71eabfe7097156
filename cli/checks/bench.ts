// The performance gates' self-check: `aether bench --quick --gate` over the targets marked quick in
// bench/targets.json (the specification's absolute targets: allocation, cross-language calls, safety overhead),
// measuring only the figures they name and their baselines, alternated and taken as medians.
import { SUITES } from "../../bench/suites/index.ts";
import { formatValue } from "../lib/bench/formats.ts";
import { runSuites } from "../lib/bench/runner.ts";
import { DEFAULT_TARGETS, evaluate, loadTargets, suitesOf } from "../lib/bench/targets.ts";
import type { GateRow } from "../lib/bench/types.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const measured = (r: GateRow) => (r.measured === null ? "-" : r.unit === "x" ? `${r.measured.toFixed(3)}x` : formatValue(r.measured, r.unit));
const threshold = (r: GateRow) => (r.unit === "x" ? `${r.threshold}x` : formatValue(r.threshold, r.unit));

export const benchCheck: CheckDef = {
  component: "performance gates",
  id: "bench",
  async run(): Promise<CheckResult> {
    const file = loadTargets(DEFAULT_TARGETS, SUITES.map((s) => s.name));
    const quick = file.targets.filter((t) => t.quick);
    const needed = suitesOf(quick);
    const doc = await runSuites(
      SUITES.filter((s) => needed.includes(s.name)),
      { quick: true, only: quick.map((t) => t.figure) },
    );
    const gate = evaluate(doc, file, true);
    const ran = gate.rows.filter((r) => r.verdict !== "skip");
    const short = ran.map((r) => `${r.figure}${r.stat === "value" ? "" : ` ${r.stat}`} ${measured(r)}`).join(", ");
    return {
      verdict: gate.failed ? "fail" : "pass",
      figure: `${gate.passed}/${ran.length} quick targets met: ${short}`,
      problems: gate.rows
        .filter((r) => r.verdict === "fail")
        .map((r) => `${r.id}: ${r.figure}${r.stat === "value" ? "" : ` ${r.stat}`} is ${measured(r)}, target ${r.op} ${threshold(r)}`),
      data: { targets: file.path, seconds: doc.seconds, rows: gate.rows },
    };
  },
};
