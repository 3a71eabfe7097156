// helper-worker.ts: the body of a builtin target's helper thread (see helper.ts). It waits in Atomics.wait
// for a command, carries it out through the typed wrappers on an object the calling thread made (attached by
// address), and says it is done. Commands:
//   poolFree  (pool, blockSize, block)          aether_pool_free from this thread: the block lands in its cache
//   poolFlush (pool, blockSize)                 aether_pool_flush_cache for this thread's cache
//   burst     (queue, mpmc, capacity, elemSize, producer, count)
//             push count items tagged producer:sequence in their first 8 bytes, retrying while the queue is
//             full (fuzz/queue.c's burst_producer); stops early when asked; the result is how many went in
import { AetherError } from "../../../native/ffi.ts";
import { Pool } from "../../../native/pool.ts";
import { Queue } from "../../../native/queues.ts";
import { ARGS, ARGS_AT, CMD, ERR_AT, ERR_BYTES, RESULT_THREW, SLOT } from "./helper.ts";

declare const self: Worker;

self.onmessage = (ev: MessageEvent<{ control: SharedArrayBuffer; lib: string }>) => {
  process.env.AETHER_LIB = ev.data.lib;
  const sab = ev.data.control;
  const ctl = new Int32Array(sab, 0, 8);
  const args = new Float64Array(sab, ARGS_AT, ARGS);
  const err = new Uint8Array(sab, ERR_AT, ERR_BYTES);
  Atomics.store(ctl, SLOT.ready, 1);
  Atomics.notify(ctl, SLOT.ready);
  for (;;) {
    Atomics.wait(ctl, SLOT.cmd, 0);
    const cmd = Atomics.load(ctl, SLOT.cmd);
    if (cmd === 0) continue;
    let result: number;
    try {
      result = run(cmd, args, ctl);
    } catch (e) {
      const bytes = new TextEncoder().encode(e instanceof Error ? `${e.name}: ${e.message}` : String(e)).subarray(0, ERR_BYTES);
      err.set(bytes);
      Atomics.store(ctl, SLOT.errLen, bytes.length);
      result = RESULT_THREW;
    }
    Atomics.store(ctl, SLOT.result, result);
    Atomics.store(ctl, SLOT.cmd, 0);
    Atomics.store(ctl, SLOT.done, 1);
    Atomics.notify(ctl, SLOT.done);
  }
};

function status(fn: () => void): number {
  try {
    fn();
    return 0;
  } catch (e) {
    if (e instanceof AetherError) return e.status;
    throw e;
  }
}

function run(cmd: number, a: Float64Array, ctl: Int32Array): number {
  switch (cmd) {
    case CMD.poolFree:
      return Pool.attach(a[0]!, a[1]!).tryFree(a[2]!);
    case CMD.poolFlush:
      return status(() => Pool.attach(a[0]!, a[1]!).flushCache());
    case CMD.burst: {
      const q = Queue.attach(a[1] ? "mpmc" : "spsc", a[0]!, a[2]!, a[3]!);
      const producer = a[4]!;
      const count = a[5]!;
      const item = new Uint8Array(q.elemSize);
      const tag = new DataView(item.buffer);
      for (let i = 0; i < count; i++) {
        tag.setUint32(0, i, true);
        tag.setUint32(4, producer, true);
        while (!q.tryPush(item)) {
          if (Atomics.load(ctl, SLOT.stop)) return i;
          Atomics.wait(ctl, SLOT.spin, 0, 0.02); // ~sched_yield: let the consumer run
        }
      }
      return count;
    }
    default:
      throw new Error(`unknown command ${cmd}`);
  }
}
