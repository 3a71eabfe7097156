// lib.ts: what every benchmark shares: alternating repetitions, medians with their range, and printing.
// Benchmarks measure and report; they never assert a speed (tests check correctness only).

export interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number[];
}

export function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { median, min: s[0]!, max: s[s.length - 1]!, samples: xs };
}

/** Run every case once per repetition, in a rotating order, so a slow phase of the machine hits them all
 * alike; returns each case's samples. */
export function alternate<K extends string>(reps: number, cases: Record<K, () => number>): Record<K, Summary> {
  const keys = Object.keys(cases) as K[];
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < reps; r++) {
    const order = keys.map((_, i) => keys[(i + r) % keys.length]!);
    for (const k of order) samples[k].push(cases[k]());
  }
  return Object.fromEntries(keys.map((k) => [k, summarize(samples[k])])) as Record<K, Summary>;
}

/** Median of per-repetition ratios a[i]/b[i]: robust when the machine's speed drifts between repetitions. */
export function ratio(a: Summary, b: Summary): Summary {
  return summarize(a.samples.map((x, i) => x / b.samples[i]!));
}

export function fmt(s: Summary, digits = 1, unit = ""): string {
  return `${s.median.toFixed(digits)}${unit} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]`;
}

export function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

export const quick = process.argv.includes("--quick");
export const jsonOut = process.argv.includes("--json");
