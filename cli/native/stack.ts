// stack.ts: the runtime stack guard, typed. Bounds are the calling thread's real stack (pthread_getattr_np), so
// from Bun they are those of the thread running the JavaScript: the main thread, or a Worker's own thread.
import { JSCallback } from "bun:ffi";
import { AetherError, check, native } from "./ffi.ts";

/** AETHER_STACK_SAFETY_MARGIN: what a probe keeps in reserve beyond the bytes asked for. */
export const STACK_SAFETY_MARGIN = 16384;
/** AETHER_STACK_TEST_FRAME: bytes each level of recurseTest holds. */
export const STACK_TEST_FRAME = 4096;
/** The line a failed probe writes to the diagnostics sink, in the specification's words. */
export const STACK_OVERFLOW_MESSAGE = "FATAL ERROR: Stack overflow detected";

export interface StackInfo {
  /** lowest usable address of this thread's stack (above its guard) */
  low: bigint;
  /** one past the highest address */
  high: bigint;
  size: number;
  used: number;
  remaining: number;
  guard: number;
  margin: number;
  /** probes that failed so far in this process */
  overflows: number;
  /** true on the process's main thread (bounds from RLIMIT_STACK) */
  isMain: boolean;
}

export interface RecurseResult {
  /** levels entered before the recursion stopped (or depth, if it completed) */
  reached: number;
  /** null when all levels ran; the probe's AetherError (AETHER_ERR_STACK_OVERFLOW) when it stopped them */
  error: AetherError | null;
}

export const stack = {
  /** Bytes of stack left below the caller on this thread (0 when unknown). */
  remaining(): number {
    return Number(native().aether_stack_remaining());
  },
  info(): StackInfo {
    const b = new BigUint64Array(9);
    check(native().aether_stack_get_info(b), "aether_stack_get_info");
    const n = (i: number) => Number(b[i]);
    return {
      low: b[0]!,
      high: b[1]!,
      size: n(2),
      used: n(3),
      remaining: n(4),
      guard: n(5),
      margin: n(6),
      overflows: n(7),
      isMain: (b[8]! & 0xffffffffn) === 1n,
    };
  },
  /** Throws AetherError (AETHER_ERR_STACK_OVERFLOW) when bytes plus the safety margin do not fit, after the
   * library has printed "FATAL ERROR: Stack overflow detected". */
  probe(bytes: number): void {
    check(native().aether_stack_probe(bytes), "aether_stack_probe");
  },
  /** Like probe, but answers with a boolean (the report is still printed on failure). */
  tryProbe(bytes: number): boolean {
    return native().aether_stack_probe(bytes) === 0;
  },
  /** Probe bytes, then run fn (through a C callback) and return its result; throws without calling fn when the
   * probe fails. fn must return an integer (int32). */
  call(bytes: number, fn: () => number): number {
    const cb = new JSCallback(() => fn() | 0, { args: ["ptr"], returns: "i32" });
    try {
      const result = new Int32Array(1);
      check(native().aether_stack_call(bytes, cb.ptr, null, result), "aether_stack_call");
      return result[0]!;
    } finally {
      cb.close();
    }
  },
  /** The library's deliberately deep recursion: depth levels of 4 KiB, each probing first. Stops gracefully
   * (error set, reached < depth) when the thread's stack would not hold the next level. */
  recurseTest(depth: number): RecurseResult {
    const reached = new BigUint64Array(1);
    const status = native().aether_stack_recurse_test(BigInt(depth), reached);
    let error: AetherError | null = null;
    try {
      check(status, "aether_stack_recurse_test");
    } catch (e) {
      error = e as AetherError;
    }
    return { reached: Number(reached[0]), error };
  },
};
