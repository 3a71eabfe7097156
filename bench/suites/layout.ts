// layout: overlap detection of the memory-layout engine.
//   overlaps/<n>/sweep       aether_layout_overlaps on n disjoint regions in shuffled order: sort and sweep,
//                            O(n log n); per detection, timed in C
//   overlaps/<n>/all-pairs   the O(n^2) all-pairs scan of the specification's first version, the baseline
import { benchLayoutOverlaps } from "../../cli/native/bench-calls.ts";
import { inC, typical } from "../../cli/lib/bench/measure.ts";
import type { Suite } from "../../cli/lib/bench/types.ts";

const SIZES = [256, 1024, 4096, 16384];
const sizes = (quick: boolean) => (quick ? [256, 1024] : SIZES);

/** Detections per call: about 20 ms of work (at least 3), scaled down for a quick run. */
function reps(n: number, method: "sweep" | "all-pairs", quick: boolean): number {
  const costNs = method === "sweep" ? n * Math.log2(n) * 20 : n * n;
  return Math.max(3, Math.min(2000, Math.round((quick ? 4e6 : 2e7) / costNs)));
}

export const layoutSuite: Suite = {
  name: "layout",
  title: "Memory-layout overlap detection",
  description:
    "Overlap detection over n disjoint regions in shuffled order: the engine's sort-and-sweep (O(n log n)) against " +
    "the all-pairs scan of the specification's first version (O(n^2)), both timed in C per detection.",
  estimate: (quick) => (quick ? 0.5 : 20),
  steps: (quick) => sizes(quick).length,
  run(ctx) {
    for (const n of (ctx.filtered ? SIZES : sizes(ctx.quick)).filter((x) => ctx.wants(`overlaps/${x}/`))) {
      ctx.step(`${n} regions`);
      const m = inC(
        ctx.reps,
        {
          sweep: () => benchLayoutOverlaps(n, "sweep", reps(n, "sweep", ctx.quick)),
          "all-pairs": () => benchLayoutOverlaps(n, "all-pairs", reps(n, "all-pairs", ctx.quick)),
        },
        typical,
      );
      for (const k of ["sweep", "all-pairs"] as const) {
        ctx.add({
          name: `overlaps/${n}/${k}`,
          label: `overlap detection over ${n} regions, ${k === "sweep" ? "sort and sweep, O(n log n)" : "all pairs, O(n^2) (the specification's first version)"}: typical detection`,
          kind: "latency",
          unit: "ns",
          better: "lower",
          samples: m[k].samples,
          percentiles: m[k].percentiles,
          baseline: k === "sweep" ? `overlaps/${n}/all-pairs` : undefined,
          measured: "c",
          params: { regions: n, detections: reps(n, k, ctx.quick) },
        });
      }
    }
  },
};
