// The safe allocator under concurrency: native threads (a C program linked against libaether, cross-thread
// frees, contents verified) and Bun Workers (each dlopens the library; blocks allocated in one Worker are
// verified and freed in another).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { benchAlloc } from "../cli/native/bench.ts";
import { memory } from "../cli/native/memory.ts";
import { buildNative } from "./helpers/native.ts";
import { NO_WORKERS_UNDER_TSAN, runCmd } from "./helpers/run.ts";

describe("native threads", () => {
  test.each([2, 4, 8])("%i threads with cross-thread frees: contents intact, no errors, no leaks", (threads) => {
    const exe = buildNative("alloc_threads.c");
    const r = runCmd([exe, String(threads), "20000"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^ok \d+ \d+\n$/);
    const [, allocs, cross] = r.stdout.trim().split(" ").map(Number);
    expect(allocs).toBe(threads * 20000);
    expect(cross).toBeGreaterThan(threads * 1000);
    expect(r.code).toBe(0);
  });

  test("the C pair loop on several threads leaves nothing behind", () => {
    memory.init();
    const before = memory.stats();
    const r = benchAlloc("safe", 100, 50_000, 4);
    expect(r.ops).toBe(200_000);
    const after = memory.stats();
    expect(after.liveCount).toBe(before.liveCount);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(Object.values(after.errors)).toEqual(Object.values(before.errors));
    // the bench threads exited: their quarantines were drained on exit
    expect(after.quarantineBytes).toBeLessThanOrEqual(before.quarantineBytes + 300_000);
  });
});

describe("Bun Workers", () => {
  // Skipped under TSan only, where Bun's Workers deadlock by themselves (see NO_WORKERS_UNDER_TSAN).
  test.skipIf(NO_WORKERS_UNDER_TSAN)("4 Workers allocate, hand half their blocks to a neighbour, which verifies and frees them", async () => {
    memory.init();
    const live0 = memory.liveBlocks(0).total;
    const seq0 = memory.lastErrorSeq();
    const n = 4;
    const workers = Array.from({ length: n }, () => new Worker(join(import.meta.dir, "workers", "alloc-worker.ts")));
    const ask = (w: Worker, msg: unknown) =>
      new Promise<any>((resolve, reject) => {
        w.onmessage = (e) => resolve(e.data);
        w.onerror = (e) => reject(new Error(e.message));
        w.postMessage(msg);
      });
    try {
      for (let round = 0; round < 3; round++) {
        const batches = await Promise.all(workers.map((w, id) => ask(w, { op: "alloc", count: 2000, id: id + round * n })));
        const results = await Promise.all(
          workers.map((w, id) => ask(w, { op: "verify-free", blocks: batches[(id + 1) % n].ptrs })),
        );
        expect(results.map((r) => r.bad)).toEqual([0, 0, 0, 0]);
      }
    } finally {
      for (const w of workers) w.terminate();
    }
    expect(memory.errors(seq0)).toEqual([]);
    expect(memory.liveBlocks(0).total).toBe(live0);
  });
});
