// bench-calls.ts: the cost of a call. The FFI targets (C functions that do next to nothing, so calling them from
// Bun measures the bindings), the same calls timed from C (the native floor), and the SIMD kernels timed
// through their validated public entry points (against aether_bench_qstate, which runs them directly).
import { check, native } from "./ffi.ts";
import { BENCH_RESULT_BYTES, readBenchResult, type BenchResult } from "./bench.ts";
import { QKERNELS, type QKernel, type QState } from "./qstate.ts";

export const CALL_KINDS = { nop: 0, args: 1, u64: 2, fill: 3 } as const;
export type CallKind = keyof typeof CALL_KINDS;

/** reps calls of one FFI target from C through a function pointer, each timed. */
export function benchCall(kind: CallKind, reps: number): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(native().aether_bench_call(CALL_KINDS[kind], BigInt(reps), new Uint8Array(buf)), "aether_bench_call");
  return readBenchResult(buf);
}

/** Like QState.bench, but each call goes through the public function (aether_qstate_normalize...), with every
 * precondition checked. */
export function benchQStateApi(
  s: QState,
  kernel: QKernel,
  reps: number,
  args: { other?: QState; target?: number; control?: number } = {},
): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(
    native().aether_bench_qstate_api(QKERNELS.indexOf(kernel), s.handle, args.other?.handle ?? null, args.target ?? 0, args.control ?? 0, BigInt(reps), new Uint8Array(buf)),
    "aether_bench_qstate_api",
  );
  return readBenchResult(buf);
}

/** The FFI targets themselves, as bun:ffi exposes them (what `aether bench ffi` calls from Bun). */
export function ffiTargets() {
  const n = native();
  return {
    nop: n.aether_bench_nop,
    args: n.aether_bench_args,
    u64: n.aether_bench_u64,
    fill: n.aether_bench_fill,
  };
}

/** Overlap detection over n random regions, timed in C: method "sweep" (aether_layout_overlaps, O(n log n)) or
 * "all-pairs" (the specification's first version, O(n^2)); reps detections, each timed. */
export function benchLayoutOverlaps(n: number, method: "sweep" | "all-pairs", reps: number): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(native().aether_bench_layout_overlaps(BigInt(n), method === "sweep" ? 0 : 1, reps, new Uint8Array(buf)), "aether_bench_layout_overlaps");
  return readBenchResult(buf);
}
