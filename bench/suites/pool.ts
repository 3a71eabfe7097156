// pool: the lock-free aligned block pool (per-thread caches over a tagged CAS free list), alloc+free pairs of
// 64-byte blocks with zeroing and double-free detection on, against glibc malloc(64)+free in the same loop, with
// one thread and with two; and the pool with its caches off (every pair on the shared CAS list).
import { benchPool } from "../../cli/native/pool.ts";
import { inC, trimmed } from "../../cli/lib/bench/measure.ts";
import type { Suite } from "../../cli/lib/bench/types.ts";

export const poolSuite: Suite = {
  name: "pool",
  title: "Lock-free aligned pool",
  description:
    "alloc+free pairs of 64-byte, 64-aligned blocks on one shared pool (zeroing and double-free detection on), " +
    "with one thread and two, against glibc malloc(64)+free in the same loop; and the pool without its " +
    "per-thread caches, every pair on the shared CAS list.",
  estimate: (quick) => (quick ? 1 : 25),
  steps: () => 2,
  run(ctx) {
    const pairs = ctx.quick ? 50_000 : 1_000_000;
    for (const threads of [1, 2]) {
      if (!ctx.wants(`pair/64B/${threads}t/`)) continue;
      ctx.step(`${threads} thread${threads > 1 ? "s" : ""}`);
      const m = inC(
        ctx.reps,
        {
          cached: () => benchPool("cached", 64, pairs, threads),
          shared: () => benchPool("shared", 64, pairs, threads),
          glibc: () => benchPool("glibc", 64, pairs, threads),
        },
        trimmed,
      );
      for (const k of ["cached", "shared", "glibc"] as const) {
        ctx.add({
          name: `pair/64B/${threads}t/${k}`,
          label: `${k === "cached" ? "pool alloc+free" : k === "shared" ? "pool alloc+free, per-thread caches off" : "glibc malloc(64)+free"}, ${threads} thread${threads > 1 ? "s" : ""}: per pair`,
          kind: "latency",
          unit: "ns",
          better: "lower",
          samples: m[k].samples,
          percentiles: m[k].percentiles,
          baseline: k === "glibc" ? undefined : `pair/64B/${threads}t/glibc`,
          measured: "c",
          params: { blockSize: 64, pairs, threads },
        });
      }
    }
  },
};
