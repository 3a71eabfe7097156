// measure.ts: how a suite measures. Every helper alternates the cases of one comparison within each repetition
// (in an order that rotates between repetitions, so a slow phase of a shared machine falls on all of them
// alike) and returns, per case, one value per repetition plus the per-operation percentiles.
//   inC:   a C loop launched by one FFI call; its percentiles come from the latency histogram it leaves in C.
//   inBun: calls from JavaScript timed by tinybench, in batches; percentiles over the batch means.
import { dlopen, FFIType } from "bun:ffi";
import { Bench } from "tinybench";
import type { BenchResult } from "../../native/bench.ts";
import { Histogram, QUANTILES, type Percentiles } from "../../native/histogram.ts";

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Linear-interpolated quantile of sorted values. */
export function quantileSorted(s: readonly number[], q: number): number {
  if (s.length === 0) return NaN;
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos), hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

/** The mean of the sorted values ranked between the qlo and qhi quantiles (0.25, 0.75: the interquartile mean,
 * which a preempted batch cannot move, unlike the mean, and which is not stuck on the timer's ticks, unlike the
 * median). */
export function meanBetweenSorted(s: readonly number[], qlo: number, qhi: number): number {
  if (s.length === 0) return NaN;
  const lo = Math.floor(s.length * qlo), hi = Math.max(lo + 1, Math.ceil(s.length * qhi));
  let sum = 0;
  for (let i = lo; i < hi; i++) sum += s[i]!;
  return sum / (hi - lo);
}

/** For each quantile, the median over repetitions. */
export function medianPercentiles(per: readonly Percentiles[]): Percentiles | undefined {
  if (per.length === 0) return undefined;
  return Object.fromEntries(QUANTILES.map(([name]) => [name, median(per.map((p) => p[name]))])) as Percentiles;
}

/** Rotate keys by r: repetition r runs keys[r % n] first. */
export function rotation<K>(keys: readonly K[], r: number): K[] {
  return keys.map((_, i) => keys[(i + r) % keys.length]!);
}

export interface Measured {
  samples: number[];
  percentiles?: Percentiles;
  results: BenchResult[];
}
const fresh = (): Measured & { per: Percentiles[] } => ({ samples: [], results: [], per: [] });

/** ns per operation of the loop's untimed pass (loops that have one: alloc, calls). */
export const perOp = (r: BenchResult): number => r.nsPerOp;
/** The mean of the timed operations without the slowest 0.01%: every operation's cost, slow paths included,
 * except the few that the OS preempted (one 4 ms preemption would add 200 ns to every operation of a 20,000-op
 * pass). For loops whose operations cost more than the clock's granularity (malloc+free pairs). */
export const trimmed = (_r: BenchResult, h: Histogram): number => h.meanBetween(0, 0.9999);
/** The interquartile mean of the timed operations: for loops that time every call (the SIMD kernels), where
 * the mean would carry the clock's own cost and the median the clock's granularity. */
export const typical = (_r: BenchResult, h: Histogram): number => h.meanBetween(0.25, 0.75);

/**
 * reps repetitions of every C loop, alternated. value picks the number kept per repetition (default: perOp),
 * from the loop's result and the histogram of its timed pass; the percentiles are the loop's own.
 */
export function inC<K extends string>(
  reps: number,
  cases: Record<K, () => BenchResult>,
  value: (r: BenchResult, h: Histogram) => number = perOp,
  onRep?: (r: number) => void,
): Record<K, Measured> {
  const keys = Object.keys(cases) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, fresh()])) as Record<K, Measured & { per: Percentiles[] }>;
  const h = new Histogram();
  try {
    for (let r = 0; r < reps; r++) {
      onRep?.(r);
      for (const k of rotation(keys, r)) {
        const res = cases[k]();
        h.reset().addLast();
        out[k].results.push(res);
        out[k].samples.push(value(res, h));
        if (res.samples > 0) out[k].per.push(h.percentiles());
      }
    }
  } finally {
    h.destroy();
  }
  for (const k of keys) {
    out[k].percentiles = medianPercentiles(out[k].per);
    delete (out[k] as Partial<typeof out[K]>).per;
  }
  return out;
}

export interface BunCase {
  /** one batch: `batch` calls */
  fn: () => void;
  batch: number;
}

/**
 * reps repetitions of tinybench runs of every case, alternated. Each sample is one batch of calls, timed with
 * the timer's own cost subtracted (but for batches of 1); a repetition's value is the interquartile mean of the batches per call, its
 * percentiles those of the batch means per call (a batch of 1 gives true per-call percentiles, with the timer's
 * resolution).
 */
export function inBun<K extends string>(
  reps: number,
  cases: Record<K, BunCase>,
  timeMs: number,
  opts: { iterations?: number; onRep?: (r: number) => void } = {},
): Record<K, Measured> {
  const keys = Object.keys(cases) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, fresh()])) as Record<K, Measured & { per: Percentiles[] }>;
  // A batch's timing loses the timer's own cost; a single call keeps it (subtracting an estimate of the same size
  // as the call would leave mostly zeros), so single-call figures are upper bounds.
  const single = keys.map((k) => cases[k].batch === 1);
  if (single.some((x) => x !== single[0])) throw new Error("inBun: mix batches of 1 with larger batches in separate calls");
  for (let r = 0; r < reps; r++) {
    opts.onRep?.(r);
    const bench = new Bench({
      time: timeMs,
      iterations: opts.iterations ?? 64,
      warmupTime: Math.min(50, timeMs / 2),
      retainSamples: true,
      subtractTimerOverhead: !single[0],
    });
    for (const k of rotation(keys, r)) bench.add(k, cases[k].fn);
    bench.runSync();
    for (const task of bench.tasks) {
      const k = task.name as K;
      const res = task.result as { latency?: { samples?: number[]; mean: number } } | undefined;
      const lat = res?.latency;
      if (!lat?.samples?.length) throw new Error(`tinybench produced no samples for ${k}: ${JSON.stringify(task.result).slice(0, 200)}`);
      const perCall = 1e6 / cases[k].batch; // ms per batch -> ns per call
      const sorted = lat.samples; // tinybench keeps them sorted
      out[k].samples.push(meanBetweenSorted(sorted, 0.25, 0.75) * perCall);
      out[k].per.push(
        Object.fromEntries(QUANTILES.map(([name, q]) => [name, quantileSorted(sorted, q) * perCall])) as Percentiles,
      );
    }
  }
  for (const k of keys) {
    out[k].percentiles = medianPercentiles(out[k].per);
    delete (out[k] as Partial<typeof out[K]>).per;
  }
  return out;
}

/** Repetitions measured one at a time (to alternate a C loop with a Bun measurement, say) as one Measured. */
export function joinReps(list: readonly Measured[]): Measured {
  const per = list.map((m) => m.percentiles).filter((p): p is Percentiles => p !== undefined);
  return { samples: list.flatMap((m) => m.samples), results: list.flatMap((m) => m.results), percentiles: medianPercentiles(per) };
}

/** reps repetitions of plain measurements (wall times, rates), alternated. */
export function alternate<K extends string>(reps: number, cases: Record<K, () => number>, onRep?: (r: number) => void): Record<K, number[]> {
  const keys = Object.keys(cases) as K[];
  const out = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < reps; r++) {
    onRep?.(r);
    for (const k of rotation(keys, r)) out[k].push(cases[k]());
  }
  return out;
}

/** glibc's malloc and free called through bun:ffi: the baseline of every per-call allocation figure from Bun
 * (the caller closes it). */
export function glibcMalloc() {
  return dlopen("libc.so.6", {
    malloc: { args: [FFIType.u64], returns: FFIType.ptr },
    free: { args: [FFIType.ptr], returns: FFIType.void },
  });
}
