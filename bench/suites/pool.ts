// pool: the lock-free aligned block pool (per-thread caches over a tagged CAS free list), alloc+free pairs of
// 64-byte blocks with zeroing and double-free detection on, against glibc malloc(64)+free in the same loop, with
// one thread and with two; and the pool with its caches off (every pair on the shared CAS list).
import { benchPool, Pool } from "../../cli/native/pool.ts";
import { glibcMalloc, inBun, inC, trimmed } from "../../cli/lib/bench/measure.ts";
import type { Suite, SuiteContext } from "../../cli/lib/bench/types.ts";

export const poolSuite: Suite = {
  name: "pool",
  title: "Lock-free aligned pool",
  description:
    "alloc+free pairs of 64-byte, 64-aligned blocks on one shared pool (zeroing and double-free detection on), " +
    "with one thread and two, against glibc malloc(64)+free in the same loop; and the pool without its " +
    "per-thread caches, every pair on the shared CAS list; and one pair per call from Bun through the typed " +
    "wrapper against glibc called through bun:ffi the same way.",
  estimate: (quick) => (quick ? 1.5 : 28),
  steps: () => 3,
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
    if (ctx.wants("bun/64B/")) fromBun(ctx);
  },
};

/** One alloc+free pair per call from JavaScript: what the pool costs a Bun caller, FFI included. */
function fromBun(ctx: SuiteContext): void {
  ctx.step("from Bun");
  const libc = glibcMalloc();
  const pool = Pool.create({ blockSize: 64, initialBlocks: 256 });
  try {
    const B = 64;
    const { malloc, free } = libc.symbols;
    const m = inBun(
      ctx.reps,
      {
        pool: { batch: B, fn: () => { for (let i = 0; i < B; i++) pool.free(pool.alloc()); } },
        glibc: { batch: B, fn: () => { for (let i = 0; i < B; i++) free(malloc(64)); } },
      },
      ctx.quick ? 20 : 250,
    );
    for (const k of ["pool", "glibc"] as const) {
      ctx.add({
        name: `bun/64B/${k}`,
        label: `${k === "pool" ? "Pool.alloc+free (64 B blocks)" : "glibc malloc(64)+free through bun:ffi"}, per pair from Bun (batches of ${B})`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: m[k].samples,
        percentiles: m[k].percentiles,
        baseline: k === "pool" ? "bun/64B/glibc" : undefined,
        measured: "bun",
        params: { blockSize: 64, batch: B },
      });
    }
  } finally {
    pool.destroy();
    libc.close();
  }
}
