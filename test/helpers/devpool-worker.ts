// A Worker of test/devpool-workers.test.ts: it loads libaether itself (bun:ffi dlopen in this thread), attaches
// to the manager the test created, and works in its own tenant while attacking the other Workers' handles.
import { DevicePools } from "../../cli/native/devpool.ts";
import { AetherError } from "../../cli/native/ffi.ts";

declare const self: Worker;

self.onmessage = (e: MessageEvent) => {
  const { address, index, workers, iterations, published } = e.data as {
    address: number;
    index: number;
    workers: number;
    iterations: number;
    published: SharedArrayBuffer;
  };
  const board = new BigUint64Array(published); // each Worker publishes one live handle here
  const pools = DevicePools.attach(address);
  const ctx = pools.context(`tenant-${index}`, "worker", index % 2 ? "secret" : "public");
  let seed = 0x9e3779b9 ^ (index * 7919);
  const rand = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) % n);
  const out = { allocs: 0, corrupted: 0, denied: 0, unexpected: [] as string[] };
  const pattern = index + 1;
  const attempt = (fn: () => unknown) => {
    try {
      fn();
      out.unexpected.push("an attack on another tenant's handle succeeded");
    } catch (err) {
      if (err instanceof AetherError && err.code === "AETHER_ERR_ACCESS_DENIED") out.denied++;
      else out.unexpected.push(err instanceof AetherError ? err.code : String(err));
    }
  };
  for (let i = 0; i < iterations; i++) {
    const size = 1 + rand(64 * 1024);
    const h = ctx.alloc(size);
    out.allocs++;
    ctx.fill(h, 0, pattern, size);
    Atomics.store(board, index, h);
    // attack a neighbour's current handle: read, write, fill, free, size
    const victim = Atomics.load(board, (index + 1 + rand(workers - 1)) % workers);
    if (victim !== 0n) {
      attempt(() => ctx.read(victim, 0, 1));
      attempt(() => ctx.write(victim, 0, new Uint8Array([0xff])));
      attempt(() => ctx.fill(victim, 0, 0xff, 1));
      attempt(() => ctx.free(victim));
      attempt(() => ctx.size(victim));
    }
    const back = ctx.read(h, 0, size);
    if (!back.every((b) => b === pattern)) out.corrupted++;
    Atomics.store(board, index, 0n);
    ctx.free(h);
  }
  self.postMessage(out);
};
