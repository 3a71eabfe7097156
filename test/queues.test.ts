// The SPSC and MPMC queues through the FFI, as users call them: argument refusals, FIFO, full and empty, the
// 2^32 and 2^64 index wraps, batch edge cases, then concurrent runs with native threads and with Bun Workers.
import { describe, expect, test } from "bun:test";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { totalmem } from "node:os";
import { join } from "node:path";
import { AetherError, native } from "../cli/native/ffi.ts";
import { Queue, type QueueKind } from "../cli/native/queues.ts";
import { runStress } from "../cli/native/stress.ts";
import { NO_WORKERS_UNDER_TSAN, ROOT } from "./helpers/run.ts";

const KINDS: QueueKind[] = ["spsc", "mpmc"];

function refused(fn: () => unknown): AetherError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(AetherError);
    return e as AetherError;
  }
  throw new Error("expected an AetherError");
}

/** n items of elemSize bytes, item i filled with a pattern of i. */
function items(n: number, elemSize: number, from = 0): Uint8Array {
  const b = new Uint8Array(n * elemSize);
  for (let i = 0; i < n; i++) for (let k = 0; k < elemSize; k++) b[i * elemSize + k] = (from + i + 7 * k) & 255;
  return b;
}

describe.each(KINDS)("%s: creation", (kind) => {
  test.each([100, 1000, 3, 0, 2 ** 24 + 1, 12])("capacity %d (not a power of two) is refused, not rounded", (cap) => {
    const e = refused(() => Queue.create(kind, cap, 8));
    expect(e.code).toBe("AETHER_ERR_NOT_POWER_OF_TWO");
    expect(e.status).toBe(-3);
    expect(e.message).toContain(`capacity ${cap}`);
  });

  test.each([1, 2, 4, 2 ** 25, 2 ** 30])("capacity %d (a power of two outside [8, 2^24]) is out of range", (cap) => {
    const e = refused(() => Queue.create(kind, cap, 8));
    expect(e.code).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(e.message).toContain("[8, 2^24]");
  });

  test.each([0, 4097, 100000])("elem_size %d is out of range", (es) => {
    const e = refused(() => Queue.create(kind, 64, es));
    expect(e.code).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(e.message).toContain("elem_size");
  });

  test.each([8.5, -8, NaN, Infinity])("capacity %d (not a whole number) is refused naming the value, once", (cap) => {
    const e = refused(() => Queue.create(kind, cap, 8));
    expect(e.code).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(e.message).toBe(`aether_${kind}_create: capacity ${cap} is not a whole number >= 0`);
  });

  test.if(totalmem() < 2 ** 24 * 4096)("a queue larger than physical memory is refused, not mapped and left to the OOM killer", () => {
    const e = refused(() => Queue.create(kind, 2 ** 24, 4096));
    expect(e.code).toBe("AETHER_ERR_OUT_OF_MEMORY");
    expect(e.message).toContain("more than this machine's memory");
  });

  test("C's refusal reaches the caller with the function named once", () => {
    const e = refused(() => Queue.create(kind, 100, 8));
    expect(e.message.match(new RegExp(`aether_${kind}_create`, "g"))).toHaveLength(1);
  });

  test("tryPushU64 refuses what is not an unsigned 64-bit integer instead of wrapping it", () => {
    const q = Queue.create(kind, 8, 8);
    for (const bad of [-1, 1.5, NaN, -1n, 1n << 64n]) expect(() => q.tryPushU64(bad)).toThrow(RangeError);
    expect(q.size()).toBe(0);
    expect(q.tryPushU64((1n << 64n) - 1n)).toBe(true);
    expect(q.tryPopU64()).toBe((1n << 64n) - 1n);
    q.destroy();
  });

  test("the limits themselves are accepted: 8, 2^24, 1 byte, 4096 bytes", () => {
    for (const [cap, es] of [[8, 1], [8, 4096], [2 ** 24, 1]] as const) {
      const q = Queue.create(kind, cap, es);
      expect(q.capacity).toBe(cap);
      expect(q.elemSize).toBe(es);
      expect(q.size()).toBe(0);
      q.destroy();
    }
  });

  test("the C API reports a NULL queue or buffer instead of crashing", () => {
    const n = native();
    const buf = new Uint8Array(8);
    const f = kind === "spsc" ? { push: n.aether_spsc_try_push, popN: n.aether_spsc_pop_n } : { push: n.aether_mpmc_try_push, popN: n.aether_mpmc_pop_n };
    expect(f.push(null, buf)).toBe(false);
    expect(n.aether_last_status()).toBe(-1);
    expect(String(n.aether_last_error())).toContain("NULL");
    const q = Queue.create(kind, 8, 8);
    expect(f.popN(q.handle as never, null, 4)).toBe(0);
    expect(n.aether_last_status()).toBe(-1);
    q.destroy();
  });

  test("a destroyed queue is refused by the wrapper", () => {
    const q = Queue.create(kind, 8, 8);
    q.destroy();
    q.destroy(); // idempotent
    expect(refused(() => q.tryPushU64(1)).code).toBe("AETHER_ERR_NOT_INITIALIZED");
  });
});

describe.each(KINDS)("%s: single-threaded invariants", (kind) => {
  test("FIFO, full at capacity, empty after", () => {
    const q = Queue.create(kind, 16, 8);
    for (let i = 0; i < 16; i++) expect(q.tryPushU64(1000 + i)).toBe(true);
    expect(q.size()).toBe(16);
    expect(q.tryPushU64(9999)).toBe(false); // full: refused, nothing overwritten
    expect(q.size()).toBe(16);
    for (let i = 0; i < 16; i++) expect(q.tryPopU64()).toBe(BigInt(1000 + i));
    expect(q.tryPopU64()).toBeNull();
    expect(q.size()).toBe(0);
    q.destroy();
  });

  test("items of odd sizes are copied whole (1, 3, 24, 100, 4096 bytes)", () => {
    for (const es of [1, 3, 24, 100, 4096]) {
      const q = Queue.create(kind, 8, es);
      const src = items(8, es);
      for (let i = 0; i < 8; i++) expect(q.tryPush(src.subarray(i * es, (i + 1) * es))).toBe(true);
      expect(q.tryPush(src.subarray(0, es))).toBe(false);
      const out = new Uint8Array(es);
      for (let i = 0; i < 8; i++) {
        expect(q.tryPop(out)).toBe(out);
        expect([...out]).toEqual([...src.subarray(i * es, (i + 1) * es)]);
      }
      expect(q.tryPop(out)).toBeNull();
      q.destroy();
    }
  });

  test("steady state over many laps of the ring keeps order", () => {
    const q = Queue.create(kind, 8, 8);
    let next = 0;
    let expectNext = 0;
    for (let lap = 0; lap < 2000; lap++) {
      const k = 1 + (lap % 8);
      for (let i = 0; i < k; i++) expect(q.tryPushU64(next++)).toBe(true);
      for (let i = 0; i < k; i++) expect(q.tryPopU64()).toBe(BigInt(expectNext++));
    }
    q.destroy();
  });

  test("u64 fast paths are for 8-byte items only", () => {
    const q = Queue.create(kind, 8, 16);
    expect(() => q.tryPushU64(1)).toThrow(RangeError);
    // the C function refuses too (false and a message), rather than copying 8 of 16 bytes
    const n = native();
    const push = kind === "spsc" ? n.aether_spsc_try_push_u64 : n.aether_mpmc_try_push_u64;
    expect(push(q.handle as never, 5n)).toBe(false);
    expect(n.aether_last_status()).toBe(-1);
    expect(String(n.aether_last_error())).toContain("16 bytes, not 8");
    expect(q.size()).toBe(0);
    q.destroy();
  });

  test("u64 values keep all 64 bits", () => {
    const q = Queue.create(kind, 8, 8);
    for (const v of [0n, 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      expect(q.tryPushU64(v)).toBe(true);
      expect(q.tryPopU64()).toBe(v);
    }
    q.destroy();
  });
});

describe.each(KINDS)("%s: index wrap-around", (kind) => {
  for (const [name, start] of [["2^32", 2n ** 32n - 5n], ["2^64", 2n ** 64n - 5n]] as const) {
    test(`crossing ${name}: order, full and empty stay right`, () => {
      const q = Queue.create(kind, 8, 8);
      q.debugSetIndex(start);
      expect(q.debugIndices()).toEqual({ head: start, tail: start });
      let pushed = 0;
      let popped = 0;
      // fill, check full, drain, several times across the wrap
      for (let round = 0; round < 4; round++) {
        for (let i = 0; i < 8; i++) expect(q.tryPushU64(pushed++)).toBe(true);
        expect(q.tryPushU64(-1n & 0xffffffffffffffffn)).toBe(false);
        expect(q.size()).toBe(8);
        for (let i = 0; i < 8; i++) expect(q.tryPopU64()).toBe(BigInt(popped++));
        expect(q.tryPopU64()).toBeNull();
        expect(q.size()).toBe(0);
      }
      const { head, tail } = q.debugIndices();
      expect(head).toBe(BigInt.asUintN(64, start + 32n));
      expect(tail).toBe(head);
      if (name === "2^64") expect(head < start).toBe(true); // it really wrapped to small numbers
      else expect(head > 2n ** 32n).toBe(true); // and nothing truncated it to 32 bits
      q.destroy();
    });

    test(`crossing ${name} with batches of 1..8 items`, () => {
      const q = Queue.create(kind, 8, 8);
      q.debugSetIndex(start);
      const buf = new BigUint64Array(8);
      const out = new BigUint64Array(8);
      let next = 0n;
      let want = 0n;
      for (let k = 1; k <= 8; k++) {
        for (let i = 0; i < k; i++) buf[i] = next++;
        expect(q.pushN(buf, k)).toBe(k);
        expect(q.popN(out, 8)).toBe(k);
        for (let i = 0; i < k; i++) expect(out[i]).toBe(want++);
      }
      q.destroy();
    });
  }

  test("debugSetIndex refuses a queue that holds items", () => {
    const q = Queue.create(kind, 8, 8);
    q.tryPushU64(1);
    expect(refused(() => q.debugSetIndex(5)).code).toBe("AETHER_ERR_BUSY");
    q.destroy();
  });
});

describe.each(KINDS)("%s: batch edge cases", (kind) => {
  test("0 items, more than capacity, partial room, more than available", () => {
    const q = Queue.create(kind, 16, 8);
    const buf = new BigUint64Array(40).map((_, i) => BigInt(i));
    expect(q.pushN(buf, 0)).toBe(0);
    expect(q.pushN(buf)).toBe(16); // 40 offered, 16 fit
    expect(q.pushN(buf, 5)).toBe(0); // full
    const out = new BigUint64Array(40);
    expect(q.popN(out, 0)).toBe(0);
    expect(q.popN(out, 6)).toBe(6);
    expect([...out.subarray(0, 6)]).toEqual([0n, 1n, 2n, 3n, 4n, 5n]);
    expect(q.pushN(buf.subarray(16), 10)).toBe(6); // room for 6 only
    expect(q.popN(out)).toBe(16); // 40 asked, 16 there
    expect([...out.subarray(0, 16)]).toEqual([6n, 7n, 8n, 9n, 10n, 11n, 12n, 13n, 14n, 15n, 16n, 17n, 18n, 19n, 20n, 21n]);
    expect(q.popN(out)).toBe(0);
    q.destroy();
  });

  test("a batch that straddles the end of the ring comes out in order (odd item size)", () => {
    const es = 3;
    const q = Queue.create(kind, 8, es);
    const src = items(8, es, 100);
    const out = new Uint8Array(8 * es);
    for (let shift = 0; shift < 8; shift++) {
      // move the ring's start by `shift`, then a batch of 8 wraps around its end
      for (let i = 0; i < shift; i++) {
        q.tryPush(src.subarray(0, es));
        q.tryPop();
      }
      expect(q.pushN(src)).toBe(8);
      expect(q.popN(out)).toBe(8);
      expect([...out]).toEqual([...src]);
    }
    q.destroy();
  });

  test("buffers shorter than the count are refused before C touches them", () => {
    const q = Queue.create(kind, 16, 8);
    expect(() => q.pushN(new Uint8Array(15), 2)).toThrow(RangeError);
    expect(() => q.popN(new Uint8Array(8), 2)).toThrow(RangeError);
    expect(() => q.tryPush(new Uint8Array(7))).toThrow(RangeError);
    expect(() => q.pushN(new Uint8Array(16), -1)).toThrow(RangeError);
    expect(q.size()).toBe(0);
    q.destroy();
  });

  test("the count defaults to whole items in the buffer; a DataView works", () => {
    const q = Queue.create(kind, 16, 4);
    expect(q.pushN(new Uint8Array(4 * 5 + 3))).toBe(5);
    const dv = new DataView(new ArrayBuffer(4 * 16));
    expect(q.popN(dv)).toBe(5);
    q.destroy();
  });
});

describe("concurrency", () => {
  test.each([
    ["spsc", 1, 1, 8],
    ["spsc", 1, 1, 1], // 1-byte items: the sequence number wraps every 256 and must still be exact
    ["spsc", 1, 1, 100],
    ["mpmc", 2, 2, 8],
    ["mpmc", 3, 1, 24],
    ["mpmc", 1, 3, 8],
    ["mpmc", 4, 4, 5],
  ] as const)("native threads: %s %dP/%dC, %d-byte items: nothing lost, duplicated or reordered", async (target, p, c, es) => {
    const r = await runStress({ target, producers: p, consumers: c, ops: 300_000, capacity: 64, elemSize: es, seed: 7, inject: "none", durationS: 30, workers: 0 });
    expect(r.violation).toBeNull();
    expect(r.violations).toBe(0);
    expect(r.ops).toBe(300_000); // every item consumed exactly once
    expect(r.maxDepth).toBeGreaterThan(0);
    expect(r.maxDepth).toBeLessThanOrEqual(64);
  });

  test.each([
    ["spsc", "lose", /spsc: FIFO order violated \(skipped ahead: lost or reordered\): expected seq 1000, got 1001 after 1000 ops/],
    ["spsc", "duplicate", /spsc: FIFO order violated \((duplicated|went backwards: duplicated or reordered)\): expected seq \d+, got 1000 after \d+ ops/],
    ["mpmc", "lose", /mpmc: producer \d sent \d+ items but \d+ were received \(lost\)/],
  ] as const)("the checker catches a planted fault: %s %s", async (target, inject, re) => {
    const r = await runStress({ target, producers: target === "spsc" ? 1 : 2, consumers: target === "spsc" ? 1 : 1, ops: 50_000, capacity: 1024, elemSize: 8, seed: 1, inject, durationS: 30, workers: 0 });
    expect(r.violations).toBeGreaterThan(0);
    expect(r.violation).toMatch(re);
  });

  // The Worker tests skip under TSan only, where Bun's Workers deadlock by themselves (see NO_WORKERS_UNDER_TSAN);
  // the native stress drivers (stress/spsc, stress/mpmc) run the same queues under TSan.
  test.skipIf(NO_WORKERS_UNDER_TSAN).each([
    ["spsc", 1, 1, 8],
    ["mpmc", 2, 2, 8],
    ["mpmc", 2, 1, 13],
  ] as const)("Bun Workers: %s %dP/%dC through the FFI, %d-byte items", async (target, p, c, es) => {
    const r = await runStress({ target, producers: p, consumers: c, ops: 60_000, capacity: 32, elemSize: es, seed: 3, inject: "none", durationS: 60, workers: p + c });
    expect(r.mode).toBe("workers");
    expect(r.violation).toBeNull();
    expect(r.ops).toBe(60_000);
  });

  test.skipIf(NO_WORKERS_UNDER_TSAN)("Workers catch a planted duplicate too", async () => {
    const r = await runStress({ target: "spsc", producers: 1, consumers: 1, ops: 20_000, capacity: 256, elemSize: 8, seed: 3, inject: "duplicate", durationS: 60, workers: 2 });
    expect(r.violation).toMatch(/spsc: FIFO order violated \(went backwards: duplicated or reordered\)|duplicated/);
  });

  test.skipIf(NO_WORKERS_UNDER_TSAN).each([
    ["mpmc", 3, 2n ** 64n - 30_000n],
    ["spsc", 1, 2n ** 64n - 10_000n],
    ["mpmc", 2, 2n ** 32n - 20_000n],
  ] as const)("a %s queue made here is shared with %d Worker(s) through Queue.attach, crossing index %s", async (kind, producers, start) => {
    const dir = join(ROOT, "test", ".snippets");
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `producer-${process.pid}-${kind}-${producers}.ts`);
    writeFileSync(
      file,
      `import { Queue } from ${JSON.stringify(join(ROOT, "cli", "native", "queues.ts"))};
       self.onmessage = (e) => {
         const { handle, id, n } = e.data;
         const q = Queue.attach(e.data.kind, handle, 64, 8);
         for (let i = 0; i < n; ) if (q.tryPushU64(BigInt(id) * 2n ** 32n + BigInt(i))) i++;
         postMessage("done");
       };`,
    );
    const q = Queue.create(kind, 64, 8);
    q.debugSetIndex(start); // the run crosses the wrap while producers and this consumer race
    const n = 20_000;
    try {
      const ids = Array.from({ length: producers }, (_, i) => i);
      const workers = ids.map((id) => {
        const w = new Worker(file);
        w.postMessage({ handle: q.handle, id, n, kind });
        return w;
      });
      const last = ids.map(() => -1);
      let got = 0;
      while (got < producers * n) {
        const v = q.tryPopU64();
        if (v === null) {
          await Bun.sleep(0);
          continue;
        }
        const id = Number(v >> 32n);
        const seq = Number(v & 0xffffffffn);
        expect(seq).toBe(last[id]! + 1); // FIFO per producer
        last[id] = seq;
        got++;
      }
      expect(last).toEqual(ids.map(() => n - 1));
      expect(q.tryPopU64()).toBeNull();
      const { head } = q.debugIndices();
      expect(head).toBe(BigInt.asUintN(64, start + BigInt(producers * n))); // it did cross
      for (const w of workers) w.terminate();
    } finally {
      q.destroy();
      rmSync(file, { force: true });
    }
  });
});
