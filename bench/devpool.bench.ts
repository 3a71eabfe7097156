// devpool.bench.ts: the device pools against a raw backend allocation per request, in the same run.
//   bun bench/devpool.bench.ts [--reps 7] [--pairs 1000000] [--quick] [--json]
// Every figure is taken with the audit ring on and a quota set (large enough never to refuse): what a tenant
// pays. Subject and baseline alternate within each repetition; medians are printed with [min-max].
// 1. alloc+free pair latency in C (one FFI call runs the loop, each pair timed with the cycle counter): p50, p99
//    and ns/pair for 256 B, 64 KiB and 1 MiB, against the backend's own allocation per request (host: mmap +
//    munmap); then 256 B with a hash-chained audit file too, where the file writer sets the pace.
// 2. The same pair through the FFI from Bun (each pair timed with Bun.nanoseconds, the timer's own cost taken
//    off), against mmap + munmap called through bun:ffi the same way; tinybench (batches of 64 pairs) as a check.
// 3. One million allocations live at once in one pool: per-operation latency to allocate them all and to free
//    them in a shuffled order, and what the pool reserved for them.
// 4. The random trace (log-uniform sizes 256 B to 1 MiB; fill to the peak, free random blocks down to 90% of it,
//    refill, over and over): peak reserved / peak live, fragmentation, compactions, latency; several seeds.
import { dlopen, FFIType } from "bun:ffi";
import { Bench } from "tinybench";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTrace, GEN_DEFAULTS } from "../cli/lib/tracegen.ts";
import { native } from "../cli/native/ffi.ts";
import { benchDevpool, benchDevpoolLive, DevicePools, replayTrace, Trace, type DeviceContext } from "../cli/native/devpool.ts";

// ---- the shared benchmark habits (alternate, summarize, ratio), as in the other benchmarks
interface Summary {
  median: number;
  min: number;
  max: number;
  samples: number[];
}
function summarize(xs: number[]): Summary {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, min: s[0]!, max: s[s.length - 1]!, samples: xs };
}
/** Each case once per repetition, in a rotating order, so a slow phase of the shared machine hits all alike. */
function alternate<K extends string>(reps: number, cases: Record<K, () => number>): Record<K, Summary> {
  const keys = Object.keys(cases) as K[];
  const samples = Object.fromEntries(keys.map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let r = 0; r < reps; r++) for (const k of keys.map((_, i) => keys[(i + r) % keys.length]!)) samples[k].push(cases[k]());
  return Object.fromEntries(keys.map((k) => [k, summarize(samples[k])])) as Record<K, Summary>;
}
const ratio = (a: Summary, b: Summary) => summarize(a.samples.map((x, i) => x / b.samples[i]!));
const fmt = (s: Summary, digits = 0, unit = "") => `${s.median.toFixed(digits)}${unit} [${s.min.toFixed(digits)}-${s.max.toFixed(digits)}]`;
const arg = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
};
const quick = process.argv.includes("--quick");
const jsonOut = process.argv.includes("--json");
const log = (s = "") => jsonOut || console.log(s);

const reps = arg("--reps", quick ? 3 : 7);
const pairs = arg("--pairs", quick ? 200_000 : 1_000_000);
const out: Record<string, unknown> = { reps, pairs, machine: "shared, 2 vCPUs: timings are noisy" };

const pools = DevicePools.create({ backend: "default", ignoreEnvAudit: true });
const tenant = "bench";
pools.setQuota(tenant, { bytes: 2 ** 40, count: 2 ** 30 });
const ctx = pools.context(tenant, "bun", "public");
log(`device pools on the ${pools.backend} backend; audit ring on, quota on (${tenant}: 1 TiB, 2^30 allocations)\n`);
out.backend = pools.backend;

// ---- 1. C loops
log(`1. alloc+free pair in C, ns (median [min-max] of ${reps} alternating runs; ${pairs} pairs each, every pair timed)`);
log("size      pool p50       pool p99       pool ns/pair    raw p50            raw p99            raw/pool (p50)");
const cLoops: Record<string, unknown> = {};
for (const size of [256, 64 << 10, 1 << 20]) {
  const p50: Record<string, number[]> = { pool: [], raw: [] };
  const p99: Record<string, number[]> = { pool: [], raw: [] };
  const s = alternate(reps, {
    pool: () => {
      const r = benchDevpool(ctx, "pool", size, pairs);
      p50.pool!.push(r.p50Ns);
      p99.pool!.push(r.p99Ns);
      return r.nsPerOp;
    },
    raw: () => {
      const r = benchDevpool(ctx, "raw", size, Math.max(1000, pairs / 50));
      p50.raw!.push(r.p50Ns);
      p99.raw!.push(r.p99Ns);
      return r.nsPerOp;
    },
  });
  const pp50 = summarize(p50.pool!), pp99 = summarize(p99.pool!), rp50 = summarize(p50.raw!), rp99 = summarize(p99.raw!);
  cLoops[size] = { poolP50: pp50, poolP99: pp99, poolNsPerPair: s.pool, rawP50: rp50, rawP99: rp99, rawNsPerPair: s.raw,
    rawOverPoolP50: ratio(rp50, pp50) };
  log(`${String(size).padEnd(10)}${fmt(pp50).padEnd(15)}${fmt(pp99).padEnd(15)}${fmt(s.pool).padEnd(16)}${fmt(rp50).padEnd(19)}` +
    `${fmt(rp99).padEnd(19)}${fmt(ratio(rp50, pp50), 0, "x")}`);
}
out.cLoops = cLoops;

{
  const dir = mkdtempSync(join(tmpdir(), "aether-bench-audit-"));
  const file = join(dir, "audit.jsonl");
  const n = quick ? 50_000 : 200_000;
  const fp50: number[] = [], fp99: number[] = [], rate: number[] = [];
  for (let r = 0; r < Math.min(reps, 3); r++) {
    pools.setAuditLog(file);
    const b = benchDevpool(ctx, "pool", 256, n);
    pools.flushAudit();
    pools.setAuditLog(null);
    fp50.push(b.p50Ns);
    fp99.push(b.p99Ns);
    rate.push(2e9 / b.nsPerOp);
  }
  const bytes = statSync(file).size;
  rmSync(dir, { recursive: true, force: true });
  out.auditFile = { p50: summarize(fp50), p99: summarize(fp99), recordsPerSec: summarize(rate), bytes };
  log(`    256 B with a hash-chained audit file too: p50 ${fmt(summarize(fp50))} ns, p99 ${fmt(summarize(fp99))} ns; ` +
    `the writer sustains ${fmt(summarize(rate.map((x) => x / 1e3)), 0)} k records/s (SHA-256 each), so a loop faster than that waits for it`);
}

// ---- 2. through the FFI
log(`\n2. alloc+free pair through the FFI from Bun, 256 B (median [min-max] of ${reps} alternating runs)`);
const libc = dlopen("libc.so.6", {
  mmap: { args: [FFIType.ptr, FFIType.u64, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.ptr },
  munmap: { args: [FFIType.ptr, FFIType.u64], returns: FFIType.i32 },
}).symbols;
const PROT_RW = 3, MAP_PRIVATE_ANON = 0x22;
const n = native();
const handle = new BigUint64Array(1);
const dp = pools.ptr;
const id = ctx.id;
function poolPair(): void {
  n.aether_devpool_alloc(dp, id, 256n, 0, handle);
  n.aether_devpool_free(dp, id, handle[0]!);
}
function wrapperPair(c: DeviceContext): void {
  c.free(c.alloc(256));
}
function rawPair(): void {
  const p = libc.mmap(null, 4096n, PROT_RW, MAP_PRIVATE_ANON, -1, 0n);
  libc.munmap(p, 4096n);
}
/** Per-pair percentiles from timing each pair with Bun.nanoseconds, minus the median cost of an empty region. */
function timed(fn: () => void, count: number): { p50: number; p99: number; mean: number } {
  for (let i = 0; i < 2000; i++) fn();
  const empty = new Float64Array(2001);
  for (let i = 0; i < empty.length; i++) {
    const t0 = Bun.nanoseconds();
    empty[i] = Bun.nanoseconds() - t0;
  }
  empty.sort();
  const over = empty[1000]!;
  const xs = new Float64Array(count);
  const start = Bun.nanoseconds();
  for (let i = 0; i < count; i++) {
    const t0 = Bun.nanoseconds();
    fn();
    xs[i] = Math.max(0, Bun.nanoseconds() - t0 - over);
  }
  const mean = (Bun.nanoseconds() - start) / count;
  xs.sort();
  return { p50: xs[Math.floor(count * 0.5)]!, p99: xs[Math.floor(count * 0.99)]!, mean };
}
{
  const count = quick ? 50_000 : 200_000;
  const res: Record<string, { p50: number[]; p99: number[] }> = { raw: { p50: [], p99: [] }, symbols: { p50: [], p99: [] }, wrapper: { p50: [], p99: [] } };
  alternate(reps, {
    symbols: () => {
      const r = timed(poolPair, count);
      res.symbols!.p50.push(r.p50);
      res.symbols!.p99.push(r.p99);
      return r.mean;
    },
    wrapper: () => {
      const r = timed(() => wrapperPair(ctx), count);
      res.wrapper!.p50.push(r.p50);
      res.wrapper!.p99.push(r.p99);
      return r.mean;
    },
    raw: () => {
      const r = timed(rawPair, Math.max(2000, count / 20));
      res.raw!.p50.push(r.p50);
      res.raw!.p99.push(r.p99);
      return r.mean;
    },
  });
  const ffi: Record<string, unknown> = {};
  for (const [k, label] of [["symbols", "pool, raw symbols"], ["wrapper", "pool, typed wrapper"], ["raw", "mmap+munmap via FFI"]] as const) {
    const p50 = summarize(res[k]!.p50), p99 = summarize(res[k]!.p99);
    ffi[k] = { p50, p99 };
    log(`    ${label.padEnd(22)} p50 ${fmt(p50).padEnd(16)} ns  p99 ${fmt(p99).padEnd(18)} ns`);
  }
  const bench = new Bench({ time: quick ? 300 : 1000 });
  bench.add("pool pair x64 (typed wrapper)", () => {
    for (let i = 0; i < 64; i++) wrapperPair(ctx);
  });
  bench.add("mmap+munmap x64 via FFI", () => {
    for (let i = 0; i < 64; i++) rawPair();
  });
  await bench.run();
  const tb: Record<string, unknown> = {};
  for (const t of bench.tasks) {
    const lat = t.result?.state === "completed" ? t.result.latency : undefined;
    if (!lat) continue;
    tb[t.name] = { p50Ns: (lat.p50 * 1e6) / 64, p99Ns: (lat.p99 * 1e6) / 64 };
    log(`    tinybench ${t.name.padEnd(32)} per pair: p50 ${((lat.p50 * 1e6) / 64).toFixed(0)} ns, p99 of 64-pair batches ${((lat.p99 * 1e6) / 64).toFixed(0)} ns`);
  }
  out.ffi = { ...ffi, tinybench: tb };
}

// ---- 3. one million live
log(`\n3. one million 256 B allocations live in one pool (median [min-max] of ${Math.min(reps, 3)} runs)`);
{
  const a50: number[] = [], a99: number[] = [], f50: number[] = [], f99: number[] = [], aops: number[] = [], fops: number[] = [];
  let reserved = 0;
  for (let r = 0; r < Math.min(reps, 3); r++) {
    const c = pools.context(tenant, `live${r}`, "public");
    const x = benchDevpoolLive(c, 256, 1_000_000);
    a50.push(x.alloc.p50Ns);
    a99.push(x.alloc.p99Ns);
    f50.push(x.free.p50Ns);
    f99.push(x.free.p99Ns);
    aops.push(x.alloc.nsPerOp);
    fops.push(x.free.nsPerOp);
    reserved = c.stats().peakReservedBytes;
    c.trim();
  }
  out.million = { allocP50: summarize(a50), allocP99: summarize(a99), allocNsPerOp: summarize(aops), freeP50: summarize(f50),
    freeP99: summarize(f99), freeNsPerOp: summarize(fops), peakReservedBytes: reserved, liveBytes: 256e6 };
  log(`    alloc: p50 ${fmt(summarize(a50))} ns, p99 ${fmt(summarize(a99))} ns, ${fmt(summarize(aops))} ns/op`);
  log(`    free (shuffled): p50 ${fmt(summarize(f50))} ns, p99 ${fmt(summarize(f99))} ns, ${fmt(summarize(fops))} ns/op`);
  log(`    reserved ${(reserved / 2 ** 20).toFixed(1)} MiB for 244.1 MiB live (${(reserved / 256e6).toFixed(3)}x)`);
}

// ---- 4. random trace
const seeds = quick ? [1, 2] : [1, 2, 3, 4, 5];
log(`\n4. random trace: ${GEN_DEFAULTS.ops} ops, sizes 256 B..1 MiB log-uniform, peak ${GEN_DEFAULTS.peak >> 20} MiB, refills from 90%; seeds ${seeds.join(", ")}`);
{
  const rows: Record<string, unknown>[] = [];
  for (const seed of seeds) {
    const gen = generateTrace({ ...GEN_DEFAULTS, pattern: "random", seed });
    const trace = Trace.parse(gen.text);
    const c = pools.context(tenant, `trace${seed}`, "public");
    const r = replayTrace(c, trace, 50);
    trace.free();
    const st = c.stats();
    rows.push({ seed, ratio: r.ratio, peakLive: r.peakLiveBytes, peakReserved: r.peakReservedBytes, fragMax: r.fragmentationMax,
      fragMean: r.fragmentationMean, fragAtPeak: r.fragmentationAtPeak, compactions: st.compactions, movedBytes: st.movedBytes,
      allocP50: r.alloc.p50Ns, allocP99: r.alloc.p99Ns, freeP50: r.free.p50Ns, freeP99: r.free.p99Ns });
    log(`    seed ${seed}: peak reserved/peak live ${r.ratio.toFixed(3)}x (overhead ${(100 * (1 - 1 / r.ratio)).toFixed(1)}%); ` +
      `fragmentation max ${r.fragmentationMax.toFixed(2)} mean ${r.fragmentationMean.toFixed(2)}; ${st.compactions} compactions moved ` +
      `${(st.movedBytes / 2 ** 20).toFixed(0)} MiB; alloc p50/p99 ${r.alloc.p50Ns.toFixed(0)}/${r.alloc.p99Ns.toFixed(0)} ns, ` +
      `free ${r.free.p50Ns.toFixed(0)}/${r.free.p99Ns.toFixed(0)} ns`);
  }
  const ratios = summarize(rows.map((x) => x.ratio as number));
  log(`    ratio over seeds: ${fmt(ratios, 3, "x")}`);
  out.randomTrace = { ratio: ratios, runs: rows };
}

pools.destroy();
if (jsonOut) console.log(JSON.stringify(out, (_, v) => (v && typeof v === "object" && "samples" in v ? { median: v.median, min: v.min, max: v.max } : v), 2));
