// alloc.bench.ts: malloc+free pair latency of the safe allocator against glibc, measured in the same run.
//   bun bench/alloc.bench.ts [--reps 7] [--pairs 1000000] [--quick] [--json]
// 1. C loops launched by one FFI call (no FFI cost): ns per pair, median over alternating repetitions, and the
//    per-pair p50/p99 from the loop's own cycle-counter timing; ratios to glibc malloc.
// 2. Scaling: the same loop on 2 threads, throughput relative to 1 thread, for glibc and aether.
// 3. Per call from Bun with tinybench: aether_safe_*, aether_malloc/free and glibc's malloc/free, each called
//    through bun:ffi in batches of 64 pairs (p50 and p99 of the batch's mean pair).
import { Bench } from "tinybench";
import { benchAlloc, type AllocatorName } from "../cli/native/bench.ts";
import { memory } from "../cli/native/memory.ts";
import { glibcMalloc } from "../cli/lib/bench/measure.ts";
import { alternate, arg, fmt, jsonOut, quick, ratio } from "./lib.ts";

const reps = arg("--reps", quick ? 3 : 7);
const pairs = arg("--pairs", quick ? 100_000 : 1_000_000);
const sizes = [16, 256, 4096];
const kinds: AllocatorName[] = ["libc", "safe", "unchecked"];
memory.init();

const out: Record<string, unknown> = { reps, pairs };
const log = (s: string) => jsonOut || console.log(s);

// ---- 1. C loops
log(`C loop, ns per malloc+free pair (median [min-max] of ${reps} alternating runs of ${pairs} pairs)`);
log("size    glibc            aether_safe       aether_malloc     safe/glibc         p50/p99 safe     p50/p99 glibc");
const cLoops: Record<string, unknown> = {};
for (const size of sizes) {
  const pct: Record<string, { p50: number; p99: number }> = {};
  const cases = Object.fromEntries(
    kinds.map((k) => [
      k,
      () => {
        const r = benchAlloc(k, size, pairs);
        pct[k] = { p50: r.p50Ns, p99: r.p99Ns };
        return r.nsPerOp;
      },
    ]),
  ) as Record<AllocatorName, () => number>;
  const s = alternate(reps, cases);
  const r = ratio(s.safe, s.libc);
  cLoops[size] = { glibc: s.libc, safe: s.safe, unchecked: s.unchecked, safeOverGlibc: r, percentiles: pct };
  log(
    `${String(size).padEnd(8)}${fmt(s.libc).padEnd(17)}${fmt(s.safe).padEnd(18)}${fmt(s.unchecked).padEnd(18)}` +
      `${fmt(r, 2, "x").padEnd(19)}${`${pct.safe!.p50.toFixed(0)}/${pct.safe!.p99.toFixed(0)} ns`.padEnd(17)}` +
      `${pct.libc!.p50.toFixed(0)}/${pct.libc!.p99.toFixed(0)} ns`,
  );
}
out.cLoops = cLoops;

// ---- 2. two threads against one
log(`\nScaling, 64 B pairs: throughput with 2 threads / throughput with 1 thread (median of ${reps})`);
const scaling: Record<string, unknown> = {};
for (const k of ["libc", "safe"] as AllocatorName[]) {
  const s = alternate(reps, {
    one: () => benchAlloc(k, 64, pairs, 1).opsPerSec,
    two: () => benchAlloc(k, 64, pairs, 2).opsPerSec,
  });
  const sc = ratio(s.two, s.one);
  scaling[k] = { oneThread: s.one, twoThreads: s.two, speedup: sc };
  log(`${k.padEnd(8)}1 thread ${(s.one.median / 1e6).toFixed(1)} M pairs/s, 2 threads ${(s.two.median / 1e6).toFixed(1)} M pairs/s: ${fmt(sc, 2, "x")}`);
}
out.scaling = scaling;

// ---- 3. per call from Bun
const libc = glibcMalloc().symbols;
const BATCH = 64;
const bench = new Bench({ time: quick ? 200 : 1000, warmup: true });
for (const size of sizes) {
  bench.add(`glibc ${size}`, () => {
    for (let i = 0; i < BATCH; i++) libc.free(libc.malloc(size));
  });
  bench.add(`unchecked ${size}`, () => {
    for (let i = 0; i < BATCH; i++) memory.free(memory.malloc(size));
  });
  bench.add(`safe ${size}`, () => {
    for (let i = 0; i < BATCH; i++) memory.safeFree(memory.safeMalloc(size));
  });
}
await bench.run();
// One pair through bun:ffi takes tens of nanoseconds, below what a timer read around it resolves, so tinybench
// times batches of BATCH pairs: p50/p99 are percentiles of the batch's mean pair, not of single pairs (the C
// loop's histogram above has those).
log(`\nFrom Bun (tinybench, batches of ${BATCH} pairs through bun:ffi), ns per pair: percentiles of batch means`);
log("case            p50       p99");
const fromBun: Record<string, unknown> = {};
for (const t of bench.tasks) {
  const res = t.result as { latency?: { p50: number; p99: number } };
  if (!res.latency) continue;
  const p50 = (res.latency.p50 * 1e6) / BATCH;
  const p99 = (res.latency.p99 * 1e6) / BATCH;
  fromBun[t.name] = { p50, p99, per: `batch of ${BATCH} pairs` };
  log(`${t.name.padEnd(16)}${p50.toFixed(1).padEnd(10)}${p99.toFixed(1)}`);
}
for (const size of sizes) {
  const a = fromBun[`safe ${size}`] as { p50: number } | undefined;
  const b = fromBun[`glibc ${size}`] as { p50: number } | undefined;
  const u = fromBun[`unchecked ${size}`] as { p50: number } | undefined;
  if (a && b) log(`safe/glibc from Bun, ${size} B: ${(a.p50 / b.p50).toFixed(2)}x${u ? `; aether_malloc/glibc ${(u.p50 / b.p50).toFixed(2)}x` : ""}`);
}
out.fromBun = fromBun;
if (jsonOut) console.log(JSON.stringify(out, null, 2));
