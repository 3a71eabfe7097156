// layout.bench.ts: overlap detection over n disjoint regions in shuffled order, the sort-and-sweep of
// aether_layout_overlaps (O(n log n)) against the all-pairs scan of the specification's first version (O(n^2)),
// both timed in C (aether_bench_layout_overlaps, one FFI call per batch). Subject and baseline alternate, 7
// rounds each; medians with their range, and the ratio. Run: ./node_modules/.bin/bun bench/layout.bench.ts
import { BENCH_RESULT_BYTES, readBenchResult } from "../cli/native/bench.ts";
import { check, native } from "../cli/native/ffi.ts";

const ROUNDS = 7;
const SIZES = [256, 1024, 4096, 16384];

function once(n: number, method: 0 | 1): number {
  // Enough repetitions for ~20 ms of work per batch, at least 3.
  const reps = Math.max(3, Math.min(2000, Math.round((method === 0 ? 2e7 : 4e8) / (method === 0 ? n * Math.log2(n) * 20 : n * n))));
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(native().aether_bench_layout_overlaps(BigInt(n), method, reps, new Uint8Array(buf)), "aether_bench_layout_overlaps");
  return readBenchResult(buf).p50Ns;
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
const fmt = (ns: number) => (ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : `${(ns / 1e3).toFixed(1)} us`);

console.log(`overlap detection, n disjoint regions in shuffled order, ${ROUNDS} alternating rounds (median per detection [min-max])`);
console.log("n".padStart(6), "sweep O(n log n)".padEnd(34), "all pairs O(n^2)".padEnd(34), "all pairs / sweep");
for (const n of SIZES) {
  const sweep: number[] = [];
  const pairs: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    sweep.push(once(n, 0));
    pairs.push(once(n, 1));
  }
  const cell = (v: number[]) => `${fmt(median(v))} [${fmt(Math.min(...v))}-${fmt(Math.max(...v))}]`.padEnd(34);
  console.log(String(n).padStart(6), cell(sweep), cell(pairs), `${(median(pairs) / median(sweep)).toFixed(1)}x`);
}
