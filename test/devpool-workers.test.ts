// Isolation between tenants under concurrent use: several Bun Workers (each loads libaether itself) share one
// manager, each in its own tenant, allocating, filling and checking its own memory while it attacks the others'
// live handles. Every attack must be denied, no byte may change, and nothing may leak.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { DevicePools } from "../cli/native/devpool.ts";
import { NO_WORKERS_UNDER_TSAN } from "./helpers/run.ts";

const WORKERS = 4;
const ITERATIONS = 1500;

// Skipped under TSan only, where Bun's Workers deadlock by themselves (see NO_WORKERS_UNDER_TSAN); the native
// driver devpool/threads runs the same shared-manager concurrency under TSan.
test.skipIf(NO_WORKERS_UNDER_TSAN)(`${WORKERS} Workers, ${ITERATIONS} allocations each, attacking each other's handles`, async () => {
  const pools = DevicePools.create({ backend: "host", ignoreEnvAudit: true, auditRing: 1 << 18 });
  try {
    const published = new SharedArrayBuffer(8 * WORKERS);
    const results = await Promise.all(
      Array.from({ length: WORKERS }, (_, index) => {
        const w = new Worker(join(import.meta.dir, "helpers", "devpool-worker.ts"));
        return new Promise<{ allocs: number; corrupted: number; denied: number; unexpected: string[] }>((resolve, reject) => {
          w.onmessage = (e) => {
            resolve(e.data);
            w.terminate();
          };
          w.onerror = (e) => reject(new Error(e.message));
          w.postMessage({ address: pools.address, index, workers: WORKERS, iterations: ITERATIONS, published });
        });
      }),
    );
    let denied = 0;
    for (const r of results) {
      expect(r.unexpected).toEqual([]);
      expect(r.corrupted).toBe(0);
      expect(r.allocs).toBe(ITERATIONS);
      denied += r.denied;
    }
    expect(denied).toBeGreaterThan(WORKERS * 100); // the attacks did happen, concurrently
    const st = pools.stats();
    expect(st.contexts).toBe(WORKERS);
    expect(st.allocs).toBe(WORKERS * ITERATIONS);
    expect(st.frees).toBe(WORKERS * ITERATIONS);
    expect(st.denials).toBe(denied);
    expect(pools.checkLeaks().total).toBe(0);
    const denialsInRing = pools.audit(0, 1 << 18).filter((r) => r.result === "AETHER_ERR_ACCESS_DENIED").length;
    expect(denialsInRing).toBe(denied);
  } finally {
    pools.destroy();
  }
}, 120_000);
