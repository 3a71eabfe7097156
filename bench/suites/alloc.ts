// alloc: the safe allocator against glibc malloc, measured in the same run.
//   pair/<size>/{safe,unchecked,glibc}  malloc+free pair, C loop (one FFI call, no FFI cost), every pair timed:
//                                       the mean without the slowest 0.01% (preemptions), and per-pair percentiles
//   threads/64B/{1,2}/{safe,glibc}      pairs per second with 2 threads against 1 (the ratio is the speed-up)
//   bun/64B/{safe,glibc}                one pair per call from Bun (bun:ffi), tinybench, batches of 64 pairs
import { benchAlloc, type AllocatorName } from "../../cli/native/bench.ts";
import { memory } from "../../cli/native/memory.ts";
import { glibcMalloc, inBun, inC, trimmed } from "../../cli/lib/bench/measure.ts";
import type { Suite, SuiteContext } from "../../cli/lib/bench/types.ts";

const NAMES: Record<AllocatorName, string> = { libc: "glibc", safe: "safe", unchecked: "unchecked" };
const LABELS: Record<AllocatorName, string> = {
  libc: "glibc malloc+free",
  safe: "aether_safe_malloc+aether_safe_free",
  unchecked: "aether_malloc+aether_free (unchecked)",
};

const SIZES = [16, 256, 4096];
const sizes = (quick: boolean) => (quick ? [16, 256] : SIZES);

export const allocSuite: Suite = {
  name: "alloc",
  title: "Safe allocator",
  description:
    "malloc+free pair latency of aether_safe_malloc/free and aether_malloc against glibc malloc for 16 B to 4 KiB, " +
    "as a C loop (no FFI cost) with per-pair percentiles; throughput with 2 threads against 1; and one pair per " +
    "call from Bun against glibc called through bun:ffi the same way.",
  estimate: (quick) => (quick ? 1.5 : 25),
  steps: (quick) => sizes(quick).length + 2,
  run(ctx) {
    memory.init();
    const pairs = ctx.quick ? 50_000 : 1_000_000;
    for (const size of (ctx.filtered ? SIZES : sizes(ctx.quick)).filter((n) => ctx.wants(`pair/${n}B/`))) {
      ctx.step(`pair ${size} B`);
      const kinds: AllocatorName[] = ["libc", "safe", "unchecked"];
      const m = inC(
        ctx.reps,
        Object.fromEntries(kinds.map((k) => [k, () => benchAlloc(k, size, pairs)])) as Record<AllocatorName, () => ReturnType<typeof benchAlloc>>,
        trimmed,
      );
      for (const k of kinds) {
        ctx.add({
          name: `pair/${size}B/${NAMES[k]}`,
          label: `${LABELS[k]}, ${size} B, C loop: mean per pair without the slowest 0.01%`,
          kind: "latency",
          unit: "ns",
          better: "lower",
          samples: m[k].samples,
          percentiles: m[k].percentiles,
          baseline: k === "libc" ? undefined : `pair/${size}B/glibc`,
          measured: "c",
          params: { size, pairs, threads: 1 },
        });
      }
    }

    if (ctx.wants("threads/")) threads(ctx);
    if (ctx.wants("bun/")) fromBun(ctx);
  },
};

function threads(ctx: SuiteContext): void {
  ctx.step("2 threads against 1");
  const tpairs = ctx.quick ? 50_000 : 1_000_000;
  const t = inC(
    ctx.reps,
    {
      "safe-1": () => benchAlloc("safe", 64, tpairs, 1),
      "safe-2": () => benchAlloc("safe", 64, tpairs, 2),
      "glibc-1": () => benchAlloc("libc", 64, tpairs, 1),
      "glibc-2": () => benchAlloc("libc", 64, tpairs, 2),
    },
    (r) => r.opsPerSec,
  );
  for (const k of ["safe", "glibc"] as const) {
    for (const n of [1, 2] as const) {
      ctx.add({
        name: `threads/64B/${n}/${k}`,
        label: `${k === "safe" ? LABELS.safe : LABELS.libc}, 64 B, ${n} thread${n > 1 ? "s" : ""}: pairs per second, all threads`,
        kind: "throughput",
        unit: "pairs/s",
        better: "higher",
        samples: t[`${k}-${n}`].samples,
        baseline: n === 2 ? `threads/64B/1/${k}` : undefined,
        measured: "c",
        params: { size: 64, pairs: tpairs, threads: n },
      });
    }
  }
}

function fromBun(ctx: SuiteContext): void {
  ctx.step("from Bun");
  const libc = glibcMalloc();
  try {
    const B = 64;
    const safeMalloc = memory.safeMalloc, safeFree = memory.safeFree;
    const { malloc, free } = libc.symbols;
    const b = inBun(
      ctx.reps,
      {
        safe: { batch: B, fn: () => { for (let i = 0; i < B; i++) safeFree(safeMalloc(64)); } },
        glibc: { batch: B, fn: () => { for (let i = 0; i < B; i++) free(malloc(64)); } },
      },
      ctx.quick ? 20 : 250,
    );
    for (const k of ["safe", "glibc"] as const) {
      ctx.add({
        name: `bun/64B/${k}`,
        label: `${k === "safe" ? "memory.safeMalloc+safeFree" : "glibc malloc+free through bun:ffi"}, 64 B, per pair from Bun (batches of ${B})`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: b[k].samples,
        percentiles: b[k].percentiles,
        baseline: k === "safe" ? "bun/64B/glibc" : undefined,
        measured: "bun",
        params: { size: 64, batch: B },
      });
    }
  } finally {
    libc.close();
  }
}
