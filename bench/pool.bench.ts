// pool.bench.ts: the aligned pool's alloc+free pair (zeroing and double-free detection on, as always)
// against glibc's malloc(64)+free, with one thread and with two, as C loops launched by one FFI call; and the
// same pool with its per-thread caches off (every pair on the shared CAS list) to show what the caches buy.
//
//   bun bench/pool.bench.ts [--reps 9] [--pairs 5000000] [--size 64] [--json]
//
// Subjects alternate within every repetition (rotating order); figures are medians with their min-max range
// and ratios of medians. glibc and the pool run the same passes (warm-up, an untimed throughput pass, then a
// pass timing every pair for the percentiles), in the same C loop (aether_bench_pool, modes 0 and 2).
import type { BenchResult } from "../cli/native/bench.ts";
import { benchPool } from "../cli/native/pool.ts";
import { cpuModel } from "../cli/native/system.ts";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}
const REPS = arg("--reps", 9);
const PAIRS = arg("--pairs", 5_000_000);
const SIZE = arg("--size", 64);
const JSON_OUT = process.argv.includes("--json");
const log = (s = "") => {
  if (!JSON_OUT) console.log(s);
};

interface Subject {
  name: string;
  run: (threads: number) => BenchResult;
}
const SUBJECTS: Subject[] = [
  { name: "aether pool", run: (t) => benchPool("cached", SIZE, PAIRS, t) },
  { name: `glibc malloc(${SIZE})+free`, run: (t) => benchPool("glibc", SIZE, PAIRS, t) },
  // ~10x slower, so a tenth of the pairs: the per-pair figure is what is compared
  { name: "pool, shared CAS list only", run: (t) => benchPool("shared", SIZE, Math.max(1, Math.floor(PAIRS / 10)), t) },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

log(`pool: ${cpuModel()}, ${navigator.hardwareConcurrency} CPUs; ${SIZE}-byte blocks, ${PAIRS.toLocaleString("en-US")} pairs per thread a run, ${REPS} repetitions, rotating order`);
log("ns per alloc+free pair as one thread sees it (median [min-max]); p50/p99 per pair from the timed pass");
const out: Record<string, unknown>[] = [];
for (const threads of [1, 2]) {
  const res = new Map<string, BenchResult[]>(SUBJECTS.map((s) => [s.name, []]));
  for (let rep = 0; rep < REPS; rep++)
    for (let i = 0; i < SUBJECTS.length; i++) {
      const s = SUBJECTS[(i + rep) % SUBJECTS.length]!;
      res.get(s.name)!.push(s.run(threads));
    }
  log();
  log(`${threads} thread${threads > 1 ? "s" : ""}:`);
  const rows = [...res].map(([name, rs]) => {
    const v = rs.map((r) => r.nsPerOp);
    return { name, threads, median: median(v), min: Math.min(...v), max: Math.max(...v), p50: median(rs.map((r) => r.p50Ns)), p99: median(rs.map((r) => r.p99Ns)) };
  });
  for (const r of rows) log(`  ${r.name.padEnd(28)} ${r.median.toFixed(2).padStart(8)} ns  [${r.min.toFixed(2)}-${r.max.toFixed(2)}]   p50 ${r.p50.toFixed(0)}  p99 ${r.p99.toFixed(0)}`);
  const pool = rows[0]!;
  const glibc = rows[1]!;
  const shared = rows[2]!;
  const ratio = pool.median / glibc.median;
  log(`  pool / glibc ${ratio.toFixed(2)}x (target <= 1.0x: ${ratio <= 1.0 ? "reached" : "MISSED"}); shared list only / pool ${(shared.median / pool.median).toFixed(1)}x`);
  out.push(...rows, { threads, poolOverGlibc: ratio, sharedOverPool: shared.median / pool.median });
}
if (JSON_OUT) console.log(JSON.stringify({ cpu: cpuModel(), reps: REPS, pairs: PAIRS, size: SIZE, results: out }, null, 2));
