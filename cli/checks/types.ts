// types.ts: the contract of a component's self-check in `aether check`.
import type { Verdict } from "../lib/output.ts";

export interface CheckResult {
  verdict: Verdict;
  /** one short line: the measured figure that shows the component works (and how well) */
  figure: string;
  /** what failed, one line each (shown under the component's line) */
  problems?: string[];
  /** machine-readable numbers for --json */
  data?: Record<string, unknown>;
}

export interface CheckDef {
  /** component name as printed, e.g. "safe allocator" */
  component: string;
  /** a short id for --only, e.g. "alloc" */
  id: string;
  run(): Promise<CheckResult> | CheckResult;
}
