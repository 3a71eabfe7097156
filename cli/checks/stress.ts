// The lock-free structures' self-check: a short verified stress run of each (native threads), one run from
// Bun Workers through the FFI, and the pool's error diagnostics, all in a few seconds.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { memory } from "../native/memory.ts";
import { Pool } from "../native/pool.ts";
import { Queue } from "../native/queues.ts";
import { runStress, type StressReport, type StressRunOptions } from "../native/stress.ts";
import { formatRate } from "../lib/output.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const RUNS: Omit<StressRunOptions, "seed">[] = [
  { target: "spsc", producers: 1, consumers: 1, ops: 0, capacity: 1024, elemSize: 8, inject: "none", durationS: 0.3, workers: 0 },
  { target: "mpmc", producers: 2, consumers: 2, ops: 0, capacity: 1024, elemSize: 24, inject: "none", durationS: 0.3, workers: 0 },
  { target: "pool", producers: 4, consumers: 0, ops: 0, capacity: 0, elemSize: 64, inject: "none", durationS: 0.3, workers: 0 },
  { target: "alloc", producers: 4, consumers: 0, ops: 0, capacity: 0, elemSize: 4096, inject: "none", durationS: 0.3, workers: 0 },
  { target: "mpmc", producers: 1, consumers: 1, ops: 0, capacity: 1024, elemSize: 8, inject: "none", durationS: 0.3, workers: 2 },
];

/** Capacity refusals, wrap-around and the pool's four error kinds, reported and refused. */
function functional(problems: string[]): void {
  for (const [cap, es] of [[100, 8], [4, 8], [2 ** 25, 8], [1024, 0], [1024, 4097]] as const) {
    try {
      Queue.create("mpmc", cap, es).destroy();
      problems.push(`mpmc_create(${cap}, ${es}) was accepted`);
    } catch {
      /* refused, as it must be */
    }
  }
  const q = Queue.create("spsc", 8, 8);
  q.debugSetIndex(2n ** 64n - 3n);
  for (let i = 0; i < 8; i++) if (!q.tryPushU64(i)) problems.push(`spsc: push ${i} of 8 refused near the 2^64 wrap`);
  if (q.tryPushU64(99)) problems.push("spsc: a ninth item went into a full queue of 8");
  for (let i = 0; i < 8; i++) if (q.tryPopU64() !== BigInt(i)) problems.push(`spsc: item ${i} came out wrong across the 2^64 wrap`);
  q.destroy();

  const dir = mkdtempSync(join(tmpdir(), "aether-check-"));
  const log = join(dir, "pool.log");
  const pool = Pool.create({ blockSize: 100, alignment: 64, initialBlocks: 8, maxBlocks: 8 }); // stride 128
  const other = Pool.create({ blockSize: 48 });
  try {
    memory.setOption("log_file", log);
    const a = pool.alloc() as unknown as number;
    const b = other.alloc() as unknown as number;
    pool.free(a);
    // double, foreign (another pool), interior (64-aligned, mid-block), misaligned
    const codes = [pool.tryFree(a), pool.tryFree(b), pool.tryFree(a + 64), pool.tryFree(a + 8)];
    const want = [-14, -13, -13, -5];
    if (codes.some((c, i) => c !== want[i])) problems.push(`pool: refused frees returned ${codes.join(", ")}, expected ${want.join(", ")}`);
    const blocks = Array.from({ length: 8 }, () => pool.tryAlloc());
    if (blocks.some((p) => p === null)) problems.push("pool: could not allocate all 8 blocks after the refused frees");
    if (pool.tryAlloc() !== null) problems.push("pool: a ninth block came out of a pool of max 8");
    for (const p of blocks) if (p) pool.free(p);
    other.free(b);
    memory.setOption("log_file", "");
    const lines = readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("AETHER POOL ERROR: "));
    if (lines.length !== 4) problems.push(`pool: ${lines.length} diagnostics for 4 refused frees`);
  } finally {
    memory.setOption("log_file", "");
    pool.destroy();
    other.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

export const stressCheck: CheckDef = {
  component: "lock-free stress",
  id: "stress",
  async run(): Promise<CheckResult> {
    const problems: string[] = [];
    functional(problems);
    const reports: StressReport[] = [];
    for (const r of RUNS) {
      const rep = await runStress({ ...r, seed: 12345 });
      reports.push(rep);
      if (rep.violation) problems.push(`${rep.target}${rep.mode === "workers" ? " (workers)" : ""}: ${rep.violation}`);
    }
    const rate = (r: StressReport) => `${r.target}${r.mode === "workers" ? "/workers" : ""} ${formatRate(r.opsPerSec)}`;
    const violations = reports.reduce((a, r) => a + r.violations, 0);
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${reports.map(rate).join(", ")}; ${violations} violations`,
      problems,
      data: { runs: reports },
    };
  },
};
