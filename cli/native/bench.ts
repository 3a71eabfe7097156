// bench.ts: timed loops that run in C (one FFI call each), so figures carry no FFI cost.
import { check, native } from "./ffi.ts";

export interface BenchResult {
  ops: number;
  elapsedNs: number;
  nsPerOp: number;
  opsPerSec: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  maxNs: number;
  samples: number;
}

/** aether_bench_result: u64 ops, u64 elapsed, then seven doubles, then u64 samples. */
export function readBenchResult(buf: ArrayBuffer): BenchResult {
  const v = new DataView(buf);
  const f = (i: number) => v.getFloat64(16 + 8 * i, true);
  return {
    ops: Number(v.getBigUint64(0, true)),
    elapsedNs: Number(v.getBigUint64(8, true)),
    nsPerOp: f(0),
    opsPerSec: f(1),
    p50Ns: f(2),
    p90Ns: f(3),
    p99Ns: f(4),
    p999Ns: f(5),
    maxNs: f(6),
    samples: Number(v.getBigUint64(72, true)),
  };
}
export const BENCH_RESULT_BYTES = 80;

export const ALLOCATORS = { libc: 0, safe: 1, unchecked: 2 } as const;
export type AllocatorName = keyof typeof ALLOCATORS;

/** threads threads each run pairs of malloc(size)+free with the named allocator. */
export function benchAlloc(allocator: AllocatorName, size: number, pairs: number, threads = 1): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(
    native().aether_bench_alloc(ALLOCATORS[allocator], size, BigInt(pairs), threads, new Uint8Array(buf)),
    "aether_bench_alloc",
  );
  return readBenchResult(buf);
}
