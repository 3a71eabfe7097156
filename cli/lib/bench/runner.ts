// runner.ts: runs suites and turns what they recorded into the common schema: medians, ranges, and each
// figure's ratio to the baseline it names (the median of per-repetition ratios when both were measured in
// the same alternating repetitions).
import pkg from "../../../package.json" with { type: "json" };
import { environment } from "./environment.ts";
import { median } from "./measure.ts";
import { Progress } from "./progress.ts";
import { SCHEMA, type BenchDocument, type Figure, type FigureInput, type Skipped, type Suite, type SuiteResult } from "./types.ts";

export interface RunOptions {
  quick: boolean;
  /** override the suites' repetitions */
  reps?: number;
  progress?: Progress;
  /** measure only these figures (full names) and what they are compared with */
  only?: string[];
}

/** Repetitions a suite alternates: at least 7 in a full run (medians of 7 survive 3 disturbed ones), 3 quick. */
export function defaultReps(quick: boolean): number {
  return quick ? 3 : 7;
}

export function finalize(suite: string, inputs: FigureInput[]): Figure[] {
  const byName = new Map<string, FigureInput>();
  for (const f of inputs) {
    if (byName.has(f.name)) throw new Error(`suite ${suite} recorded ${f.name} twice`);
    byName.set(f.name, f);
  }
  return inputs.map((f) => {
    const samples = f.samples.filter((x) => Number.isFinite(x));
    if (samples.length === 0) throw new Error(`suite ${suite}: ${f.name} has no finite sample`);
    const fig: Figure = {
      name: `${suite}/${f.name}`,
      suite,
      label: f.label,
      kind: f.kind,
      unit: f.unit,
      better: f.better,
      value: median(samples),
      min: Math.min(...samples),
      max: Math.max(...samples),
      reps: samples.length,
      samples: f.samples,
      measured: f.measured,
    };
    if (f.percentiles) fig.percentiles = f.percentiles;
    if (f.params) fig.params = f.params;
    if (f.baseline !== undefined) {
      const b = byName.get(f.baseline);
      if (!b) throw new Error(`suite ${suite}: ${f.name} names baseline ${f.baseline}, which it did not record`);
      const paired = b.samples.length === f.samples.length;
      const ratios = paired ? f.samples.map((x, i) => x / b.samples[i]!).filter((x) => Number.isFinite(x) && x > 0) : [];
      const bm = median(b.samples.filter((x) => Number.isFinite(x)));
      const r = ratios.length ? ratios : [fig.value / bm].filter((x) => Number.isFinite(x) && x > 0);
      // A baseline too fast for the clock (zero) gives no ratio; the figure stands alone then.
      if (r.length) fig.baseline = { name: `${suite}/${f.baseline}`, value: bm, ratio: median(r), ratioMin: Math.min(...r), ratioMax: Math.max(...r) };
    }
    return fig;
  });
}

export async function runSuite(s: Suite, opts: RunOptions): Promise<SuiteResult> {
  const inputs: FigureInput[] = [];
  const skipped: Skipped[] = [];
  const notes: string[] = [];
  const reps = opts.reps ?? defaultReps(opts.quick);
  const t0 = performance.now();
  const only = opts.only?.filter((n) => n.startsWith(`${s.name}/`)).map((n) => n.slice(s.name.length + 1));
  await s.run({
    quick: opts.quick,
    reps,
    filtered: only !== undefined,
    wants: (prefix) => only === undefined || only.some((n) => n.startsWith(prefix) || prefix.startsWith(`${n}/`)),
    step: (label, done) => opts.progress?.step(label, done),
    add: (f) => inputs.push(f),
    skip: (name, reason) => skipped.push({ name: name.includes("/") && name.startsWith(`${s.name}/`) ? name : `${s.name}/${name}`, reason }),
    note: (text) => notes.push(text),
  });
  return {
    name: s.name,
    title: s.title,
    seconds: Math.round((performance.now() - t0) / 10) / 100,
    reps,
    figures: finalize(s.name, inputs),
    skipped,
    notes,
  };
}

export async function runSuites(suites: Suite[], opts: RunOptions): Promise<BenchDocument> {
  const started = new Date();
  const t0 = performance.now();
  const env = environment();
  const results: SuiteResult[] = [];
  for (const [i, s] of suites.entries()) {
    opts.progress?.startSuite(i);
    results.push(await runSuite(s, opts));
  }
  opts.progress?.clear();
  return {
    schema: SCHEMA,
    tool: { name: "aether", version: pkg.version },
    started: started.toISOString(),
    seconds: Math.round((performance.now() - t0) / 10) / 100,
    quick: opts.quick,
    environment: env,
    suites: results,
  };
}

/** Every figure of a document, by full name. */
export function figureIndex(doc: { suites: SuiteResult[] }): Map<string, Figure> {
  const m = new Map<string, Figure>();
  for (const s of doc.suites) for (const f of s.figures) m.set(f.name, f);
  return m;
}
