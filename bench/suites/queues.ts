// queues: the lock-free SPSC and MPMC queues, one thread producing on CPU 0 and one consuming on CPU 1 (C loops,
// one FFI call each), against a mutex-protected ring with the same interface, in the same run.
//   throughput/<kind>           u64 items per second through a queue of capacity 65,536
//   roundtrip/<kind>            a u64 sent through one queue and echoed back through another: ns per round trip
//   roundtrip/pingpong          one cache line written in turn by the two threads: the physical floor
//   bun/<kind>-batch            push_n + pop_n of 256 u64 items per call from Bun: ns per item
import { Queue, benchQueue, type QueueBenchKind } from "../../cli/native/queues.ts";
import { inBun, inC } from "../../cli/lib/bench/measure.ts";
import type { Suite } from "../../cli/lib/bench/types.ts";

const CAPACITY = 65_536;

export const queuesSuite: Suite = {
  name: "queues",
  title: "Lock-free queues",
  description:
    "SPSC and MPMC queues between two pinned threads: throughput and round-trip latency, against a mutex-protected " +
    "ring with the same interface and the one-cache-line ping-pong (the floor of any round trip), all in C; and " +
    "the per-item cost of the batch API from Bun.",
  estimate: (quick) => (quick ? 2 : 40),
  steps: () => 3,
  run(ctx) {
    const items = ctx.quick ? 200_000 : 5_000_000;
    if (ctx.wants("throughput/")) {
      ctx.step("throughput");
      const kinds: QueueBenchKind[] = ["spsc", "mpmc", "mutex", "spsc-batch", "mpmc-batch"];
      const m = inC(ctx.reps, Object.fromEntries(kinds.map((k) => [k, () => benchQueue(k, CAPACITY, items, false)])) as Record<QueueBenchKind, () => ReturnType<typeof benchQueue>>, (r) => r.opsPerSec);
      for (const k of kinds) {
        ctx.add({
          name: `throughput/${k}`,
          label: `${k} queue, capacity ${CAPACITY}, one producer (CPU 0) and one consumer (CPU 1): items per second`,
          kind: "throughput",
          unit: "items/s",
          better: "higher",
          samples: m[k].samples,
          baseline: k === "mutex" ? undefined : "throughput/mutex",
          measured: "c",
          params: { capacity: CAPACITY, items },
        });
      }
    }
    if (ctx.wants("roundtrip/")) {
      ctx.step("round trip");
      const rt = ctx.quick ? 20_000 : 500_000;
      const kinds: QueueBenchKind[] = ["spsc", "mpmc", "mutex", "pingpong"];
      const m = inC(ctx.reps, Object.fromEntries(kinds.map((k) => [k, () => benchQueue(k, CAPACITY, rt, true)])) as Record<QueueBenchKind, () => ReturnType<typeof benchQueue>>);
      for (const k of kinds) {
        ctx.add({
          name: `roundtrip/${k}`,
          label: k === "pingpong" ? "one cache line written in turn by two threads on two CPUs: the floor of a round trip" : `${k} queue, a u64 there and back between two pinned threads`,
          kind: "latency",
          unit: "ns",
          better: "lower",
          samples: m[k].samples,
          percentiles: m[k].percentiles,
          baseline: k === "pingpong" ? undefined : "roundtrip/pingpong",
          measured: "c",
          params: { capacity: CAPACITY, roundTrips: rt },
        });
      }
    }
    if (ctx.wants("bun/")) {
      ctx.step("batches from Bun");
      const B = 256;
      const buf = new BigUint64Array(B);
      const spsc = Queue.spsc(CAPACITY), mpmc = Queue.mpmc(CAPACITY);
      try {
        const batch = (q: Queue) => () => {
          q.pushN(buf, B);
          q.popN(buf, B);
        };
        const m = inBun(ctx.reps, { "spsc-batch": { batch: B, fn: batch(spsc) }, "mpmc-batch": { batch: B, fn: batch(mpmc) } }, ctx.quick ? 20 : 200);
        for (const k of ["spsc-batch", "mpmc-batch"] as const) {
          ctx.add({
            name: `bun/${k}`,
            label: `${k.split("-")[0]} pushN + popN of ${B} u64 items per call from Bun: per item`,
            kind: "latency",
            unit: "ns",
            better: "lower",
            samples: m[k].samples,
            percentiles: m[k].percentiles,
            measured: "bun",
            params: { batch: B },
          });
        }
      } finally {
        spsc.destroy();
        mpmc.destroy();
      }
    }
  },
};
