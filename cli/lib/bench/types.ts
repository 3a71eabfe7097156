// types.ts: the one result schema every `aether bench` suite writes, and the contract of a suite.
//
// A figure is one measured number: a median over repetitions that alternate the subject with its baseline, its
// range, the per-repetition values, and, when it names a baseline measured in the same run, the ratio to it
// (the median of per-repetition ratios, which survives a machine whose speed drifts). Latencies carry their
// per-operation percentiles. `aether bench --json` writes a BenchDocument; --baseline reads one back.
import type { Percentiles } from "../../native/histogram.ts";

export const SCHEMA = "aether-bench/1";

export type Better = "lower" | "higher";
/** latency: per-operation time with percentiles; throughput: work per second; time: wall time of a run. */
export type FigureKind = "latency" | "throughput" | "time";
/** c: a loop timed in C (one FFI call, no FFI cost); bun: from JavaScript (tinybench); process: a child process. */
export type Where = "c" | "bun" | "process";

export interface BaselineRef {
  /** the baseline figure's full name */
  name: string;
  /** its median */
  value: number;
  /** subject / baseline: the median of per-repetition ratios, and their range */
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}

export interface Figure {
  /** stable id, "<suite>/<case>/...", what targets and baselines name */
  name: string;
  suite: string;
  /** what was measured, in words */
  label: string;
  kind: FigureKind;
  unit: string;
  better: Better;
  /** median over repetitions, and its range */
  value: number;
  min: number;
  max: number;
  reps: number;
  /** the value of each repetition, in the order they ran */
  samples: number[];
  baseline?: BaselineRef;
  /** per operation, in ns: for each quantile, the median over repetitions */
  percentiles?: Percentiles;
  measured: Where;
  /** what the case was run with (size, threads, batch, implementation...) */
  params?: Record<string, string | number | boolean>;
}

export interface Skipped {
  /** a full figure name, or a pattern the suite would have produced ("queues/boost/*") */
  name: string;
  reason: string;
}

export interface SuiteResult {
  name: string;
  title: string;
  seconds: number;
  reps: number;
  figures: Figure[];
  skipped: Skipped[];
  notes: string[];
}

export interface Environment {
  cpu: { model: string; flags: string[]; features: Record<string, boolean>; cores: number; online: number; mhz?: number };
  memory: { totalBytes: number };
  kernel: { release: string; version: string; machine: string };
  os: string;
  compiler: string;
  library: { path: string; variant: string; version: string; flags: string };
  simd: string;
  bun: { version: string; revision: string };
  git: { commit: string | null; dirty: boolean | null; branch: string | null };
  loadAverage: number[];
  nsPerTick: number;
  hostname?: string;
}

export interface GateRow {
  id: string;
  figure: string;
  /** what was compared: "value", a percentile ("p99"), or "ratio" */
  stat: string;
  op: "<=" | ">=";
  threshold: number;
  unit: string;
  measured: number | null;
  verdict: "pass" | "fail" | "skip";
  reason?: string;
  source?: string;
}

export interface GateResult {
  file: string;
  quick: boolean;
  rows: GateRow[];
  failed: number;
  passed: number;
  skipped: number;
}

export interface ComparisonRow {
  figure: string;
  /** ratio to its baseline (or the value itself, for a figure with no baseline) before and now */
  previous: number;
  current: number;
  /** how much worse, in percent, in the figure's own direction (negative: better) */
  regressionPct: number;
  compared: "ratio" | "value";
  verdict: "pass" | "fail" | "info";
}

export interface Comparison {
  file: string;
  maxRegressionPct: number;
  rows: ComparisonRow[];
  failed: number;
  added: string[];
  removed: string[];
  warnings: string[];
}

export interface BenchDocument {
  schema: typeof SCHEMA;
  tool: { name: "aether"; version: string };
  started: string;
  seconds: number;
  quick: boolean;
  environment: Environment;
  suites: SuiteResult[];
  gate?: GateResult;
  comparison?: Comparison;
}

// ------------------------------------------------------------------------------------ suites ---

/** What a suite gets to run with and to record into. */
export interface SuiteContext {
  quick: boolean;
  /** repetitions to alternate (at least 7 in a full run) */
  reps: number;
  /** false for a case group (a prefix of figure names, "pair/256B/") that the run does not need: a run limited
   * to some figures (the quick gate) measures only those, with their baselines; otherwise always true */
  wants(prefix: string): boolean;
  /** true when the run is limited to some figures (then a suite picks its cases from its full list by wants) */
  filtered: boolean;
  /** starting a case: for the progress display (done counts the suite's steps finished so far) */
  step(label: string, done?: number): void;
  /** record a figure; its name is relative to the suite ("pair/16B/safe") */
  add(f: FigureInput): void;
  /** a case that could not run here, and why */
  skip(name: string, reason: string): void;
  note(text: string): void;
}

export interface FigureInput {
  name: string;
  label: string;
  kind: FigureKind;
  unit: string;
  better: Better;
  /** one value per repetition */
  samples: number[];
  /** a figure of the same suite (relative name) this one is compared with */
  baseline?: string;
  percentiles?: Percentiles;
  measured: Where;
  params?: Record<string, string | number | boolean>;
}

export interface Suite {
  name: string;
  title: string;
  /** one paragraph: what it measures and against what */
  description: string;
  /** rough seconds it takes (for the time-left estimate) */
  estimate(quick: boolean): number;
  /** how many step() calls it makes (for the progress display) */
  steps(quick: boolean): number;
  run(ctx: SuiteContext): Promise<void> | void;
}
