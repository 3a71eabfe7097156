// stress-worker.ts: one Bun Worker of `aether stress --workers N`. It dlopens libaether itself (the path
// comes in the job message), attaches to the structure the main thread created (its address comes in the
// message too) and hammers it through the FFI, checking everything it gets; counters go to a
// SharedArrayBuffer the main thread polls, the verdict comes back as one message.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { openSymbols } from "./ffi.ts";
import { itemLayout, readItem, readTag, stamp, stampDamage, tagHex, writeItem } from "./stress-items.ts";

declare const self: Worker;

export type WorkerRole = "producer" | "consumer" | "owner";

export interface WorkerJob {
  lib: string;
  target: "spsc" | "mpmc" | "pool" | "alloc";
  role: WorkerRole;
  /** this worker's number within its role (producer id, consumer number, owner number) */
  index: number;
  /** its slot in the shared counters */
  slot: number;
  /** queue or pool address */
  handle: number;
  /** pool/alloc: the address of the mpmc queue of u64 block addresses used to hand blocks between workers */
  board: number;
  elemSize: number;
  /** queues: capacity (depth samples are clamped to it) */
  capacity: number;
  producers: number;
  /** producers and owners: this worker's share of the run's ops (with bounded; consumers: 0) */
  budget: number;
  /** the run has an op count (else the workers go on until stopped) */
  bounded: boolean;
  /** alloc: the safe allocator's live allocations before the run (depth is what the run adds) */
  liveBefore: number;
  seed: number;
  inject: "none" | "lose" | "duplicate" | "share";
  /** Int32Array view: [0] stop, [1] producers done, [2] violations; BigInt64Array view from byte 16: per slot
   * [ops, produced, maxDepth] */
  control: SharedArrayBuffer;
}

export interface WorkerResult {
  slot: number;
  ops: number;
  produced: number;
  /** producer: what it sent [count, sum, hashSum]; consumer: per producer what it received */
  sent?: [number, number, number];
  seen?: [number, number, number][];
  violation?: string;
}

// What a worker calls, bound from the one symbol table (cli/native/ffi.ts).
const SYMBOLS = [
  "aether_spsc_try_push",
  "aether_spsc_try_pop",
  "aether_spsc_push_n",
  "aether_spsc_pop_n",
  "aether_spsc_try_push_u64",
  "aether_spsc_try_pop_u64",
  "aether_spsc_size",
  "aether_mpmc_try_push",
  "aether_mpmc_try_pop",
  "aether_mpmc_push_n",
  "aether_mpmc_pop_n",
  "aether_mpmc_try_push_u64",
  "aether_mpmc_try_pop_u64",
  "aether_mpmc_size",
  "aether_pool_alloc",
  "aether_pool_free",
  "aether_pool_stats",
  "aether_memory_get_stats",
  "aether_safe_malloc",
  "aether_safe_calloc",
  "aether_safe_realloc",
  "aether_safe_free",
  "aether_safe_usable_size",
  "aether_last_status",
  "aether_last_error",
  "aether_error_name",
] as const;

const BATCH = 32;
const FLUSH = 256;
const HOLD = 64;
const LIMIT_REACHED = -16;

class Violation extends Error {}

function rng(seed: number): () => number {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

function run(job: WorkerJob): WorkerResult {
  const n = openSymbols(job.lib, SYMBOLS);
  const ctl = new Int32Array(job.control, 0, 4);
  const counters = new BigInt64Array(job.control, 16);
  const base = job.slot * 3;
  const random = rng(job.seed);
  const result: WorkerResult = { slot: job.slot, ops: 0, produced: 0 };
  let ops = 0;
  let pending = 0;
  const stopped = () => Atomics.load(ctl, 0) !== 0;
  const count = (k: number) => {
    ops += k;
    pending += k;
    if (pending >= FLUSH) {
      Atomics.add(counters, base, BigInt(pending));
      pending = 0;
    }
  };
  const produced = (k: number) => {
    result.produced += k;
    Atomics.add(counters, base + 1, BigInt(k));
  };
  const depth = (d: number) => {
    if (BigInt(d) > Atomics.load(counters, base + 2)) Atomics.store(counters, base + 2, BigInt(d));
  };
  const fail = (msg: string): never => {
    Atomics.add(ctl, 2, 1);
    Atomics.store(ctl, 0, 1);
    throw new Violation(`${msg} after ${ops} ops`);
  };
  const yieldNow = () => Atomics.wait(ctl, 3, 0, 0.02); // 20 µs: lets the other side run when we cannot progress

  try {
    if (job.target === "spsc" || job.target === "mpmc") {
      const q = job.handle as unknown as Pointer;
      const spsc = job.target === "spsc";
      const f = spsc
        ? { push: n.aether_spsc_try_push, pop: n.aether_spsc_try_pop, pushN: n.aether_spsc_push_n, popN: n.aether_spsc_pop_n, push64: n.aether_spsc_try_push_u64, pop64: n.aether_spsc_try_pop_u64, size: n.aether_spsc_size }
        : { push: n.aether_mpmc_try_push, pop: n.aether_mpmc_try_pop, pushN: n.aether_mpmc_push_n, popN: n.aether_mpmc_pop_n, push64: n.aether_mpmc_try_push_u64, pop64: n.aether_mpmc_try_pop_u64, size: n.aether_mpmc_size };
      const L = itemLayout(job.elemSize, job.producers);
      const es = job.elemSize;
      const buf = new Uint8Array(BATCH * es);
      const dv = new DataView(buf.buffer);
      const u64 = new BigUint64Array(1);
      const u64bytes = new Uint8Array(u64.buffer);
      // one item of 8 bytes through the u64 fast path, else the byte API; n > 1 through push_n/pop_n
      const pushSome = (off: number, k: number, r: number): number => {
        if (k > 1) return f.pushN(q, buf.subarray(off * es), k) as number;
        if (es === 8 && r < 0.5) return f.push64(q, dv.getBigUint64(off * 8, true)) ? 1 : 0;
        return f.push(q, buf.subarray(off * es)) ? 1 : 0;
      };
      const popSome = (k: number, r: number): number => {
        if (k > 1) return f.popN(q, buf, k) as number;
        if (es === 8 && r < 0.5) {
          if (!f.pop64(q, u64)) return 0;
          buf.set(u64bytes, 0);
          return 1;
        }
        return f.pop(q, buf) ? 1 : 0;
      };

      if (job.role === "producer") {
        const sent: [number, number, number] = [0, 0, 0];
        const account = (seq: number, h: number) => {
          sent[0]++;
          sent[1] += seq % L.seqMod;
          sent[2] = (sent[2] + h) >>> 0;
        };
        const hashOf = (seq: number) => {
          const tmp = new Uint8Array(es);
          writeItem(L, tmp, 0, job.index, seq);
          return readItem(L, tmp, 0).hash;
        };
        let seq = 0;
        let spins = 0;
        const FAULT = 1000;
        try {
          while (!stopped() && (!job.bounded || seq < job.budget)) {
            const r = random();
            let k = r < 0.25 ? 1 + Math.floor(random() * BATCH) : 1;
            if (job.bounded && k > job.budget - seq) k = job.budget - seq;
            const seqs: number[] = [];
            for (let s = seq; s < seq + k; s++) {
              if (job.inject === "lose" && s === FAULT) {
                account(s, hashOf(s)); // counted, never pushed: "lost" by the queue
                continue;
              }
              writeItem(L, buf, seqs.length * es, job.index, s);
              seqs.push(s);
            }
            let done = 0;
            while (done < seqs.length && !stopped()) {
              const m = pushSome(done, seqs.length - done, random());
              if (m === 0) {
                if (++spins % 64 === 0) yieldNow();
                continue;
              }
              done += m;
            }
            for (let i = 0; i < done; i++) account(seqs[i]!, readItem(L, buf, i * es).hash);
            if (job.inject === "duplicate" && done === seqs.length && seq <= FAULT && FAULT < seq + k) {
              const at = seqs.indexOf(FAULT);
              while (!stopped() && pushSome(at, 1, 1) === 0) yieldNow(); // again, counted once
            }
            produced(done); // ops count consumed items (as native mode does), not pushes
            if (done < seqs.length) break;
            seq += k;
            if (seq % 256 < k || seq === k) depth(f.size(q) as number); // the first push too: short runs see a depth
          }
          depth(f.size(q) as number);
        } finally {
          result.sent = sent;
          Atomics.add(ctl, 1, 1); // this producer is done (after its last push)
        }
      } else {
        const seen: [number, number, number][] = Array.from({ length: job.producers }, () => [0, 0, 0]);
        const last = new Array<number>(job.producers).fill(-1);
        result.seen = seen;
        const check = (off: number) => {
          const it = readItem(L, buf, off);
          if (it.id >= job.producers) fail(`${job.target}: worker consumer ${job.index} got an item from unknown producer ${it.id}`);
          if (it.damage >= 0) fail(`${job.target}: item from producer ${it.id} seq ${it.seq} is damaged at byte ${it.damage} (torn copy)`);
          const prev = last[it.id]!;
          if (spsc) {
            const want = (prev + 1) % L.seqMod;
            if (it.seq !== want) {
              const ahead = (it.seq - want + L.seqMod) % L.seqMod < L.seqMod / 2;
              const what = prev >= 0 && it.seq === prev ? "duplicated" : ahead ? "skipped ahead: lost or reordered" : "went backwards: duplicated or reordered";
              fail(`spsc: FIFO order violated (${what}): expected seq ${want}, got ${it.seq} at worker consumer ${job.index}`);
            }
          } else if (L.seqBits >= 32 && prev >= 0 && it.seq <= prev) {
            fail(`mpmc: per-producer order violated at worker consumer ${job.index}: producer ${it.id}'s seq ${it.seq} came after seq ${prev} (${it.seq === prev ? "duplicated" : "went backwards: reordered or duplicated"})`);
          }
          last[it.id] = it.seq;
          const e = seen[it.id]!;
          e[0]++;
          e[1] += it.seq;
          e[2] = (e[2] + it.hash) >>> 0;
        };
        let spins = 0;
        for (;;) {
          const r = random();
          const want = r < 0.25 ? 1 + Math.floor(random() * BATCH) : 1;
          const m = popSome(want, random());
          for (let i = 0; i < m; i++) {
            check(i * es);
            count(1);
          }
          if (m > 0) {
            if (ops % 256 < m || ops === m) depth(Math.min((f.size(q) as number) + m, job.capacity));
            continue;
          }
          if (Atomics.load(ctl, 2) !== 0) break;
          if (Atomics.load(ctl, 1) === job.producers) {
            const last1 = popSome(1, 1);
            if (last1 === 1) {
              check(0);
              count(1);
              continue;
            }
            break;
          }
          if (++spins % 64 === 0) yieldNow();
        }
      }
    } else {
      // pool / alloc owners
      const pool = job.target === "pool";
      const handle = job.handle as unknown as Pointer;
      const board = job.board as unknown as Pointer;
      const u64 = new BigUint64Array(1);
      const hold: { p: number; size: number; tag: number }[] = [];
      let counter = 0;
      let injected = false;
      const view = (p: number, size: number) => new Uint8Array(toArrayBuffer(p as unknown as Pointer, 0, size));
      const statusText = (st: number) => `${String(n.aether_error_name(st))} (${String(n.aether_last_error())})`;
      const verify = (h: { p: number; size: number; tag: number }, when: string) => {
        const at = stampDamage(view(h.p, h.size), h.size, h.tag);
        if (at >= 0)
          fail(`${job.target}: block 0x${h.p.toString(16)} (${h.size} bytes) owned by worker ${job.index} changed under its owner: byte ${at} differs from its stamp (found tag ${tagHex(view(h.p, h.size), h.size)}, expected 0x${h.tag.toString(16)}) ${when}: handed to two owners?`);
      };
      const release = (h: { p: number; size: number }) => {
        if (pool) {
          const st = n.aether_pool_free(handle, h.p as unknown as Pointer);
          if (st !== 0) fail(`pool: aether_pool_free(0x${h.p.toString(16)}) by worker ${job.index} failed with ${statusText(st)}`);
        } else {
          n.aether_safe_free(h.p as unknown as Pointer);
        }
      };
      const sizeOf = (p: number) => (pool ? job.elemSize : Number(n.aether_safe_usable_size(p as unknown as Pointer)));
      const newTag = () => (job.index + 1) * 2 ** 32 + ++counter;
      /** Take one block from the board: check its previous owner's stamp, stamp it ours. */
      const takeFromBoard = (): boolean => {
        if (!n.aether_mpmc_try_pop_u64(board, u64)) return false;
        const p = Number(u64[0]);
        const size = sizeOf(p);
        if (size === 0) fail(`alloc: block 0x${p.toString(16)} taken from the board is not a live allocation (freed by another owner?)`);
        const prev = readTag(view(p, size), size);
        const at = stampDamage(view(p, size), size, prev);
        if (at >= 0) fail(`${job.target}: block 0x${p.toString(16)} taken over by worker ${job.index} does not carry its previous owner's stamp (byte ${at} differs): handed to two owners?`);
        const nh = { p, size, tag: newTag() };
        stamp(view(p, size), size, nh.tag);
        hold.push(nh);
        return true;
      };
      // An operation is an action that completed (an alloc, a free, a hand-off, or a try that found the pool
      // exhausted): the budget counts those, so a bounded run does exactly job.budget of them.
      let done = 0;
      // Depth: blocks in use in the pool, or live allocations the run added (aether_pool_info.in_use is its 6th
      // field, aether_memory_stats.live_count its 1st); often at first, so that short runs see it too.
      const stats = new BigUint64Array(32);
      const sampleDepth = () => {
        if (job.target === "pool") {
          if (n.aether_pool_stats(handle, stats) === 0) depth(Number(stats[5]));
        } else if (n.aether_memory_get_stats(stats) === 0) {
          depth(Math.max(0, Number(stats[0]) - job.liveBefore));
        }
      };
      const op = () => {
        done++;
        count(1);
        if ((done & (done < 1024 ? 15 : 1023)) === 0 || done === job.budget) sampleDepth();
      };
      while (!stopped() && (!job.bounded || done < job.budget)) {
        const r = random();
        if (hold.length === 0 || (r < 7 / 16 && hold.length < HOLD)) {
          let p: number;
          let size: number;
          if (pool) {
            p = (n.aether_pool_alloc(handle) as unknown as number) || 0;
            size = job.elemSize;
            if (p === 0) {
              const st = n.aether_last_status();
              if (st !== LIMIT_REACHED) fail(`pool: aether_pool_alloc failed with ${statusText(st)}`);
              // exhausted: if we hold nothing, the blocks may all sit on the board; take one from there
              if (hold.length === 0 && takeFromBoard()) continue;
              yieldNow();
              if (hold.length === 0) continue;
              op();
              continue;
            }
            if (p % 64 !== 0) fail(`pool: aether_pool_alloc returned 0x${p.toString(16)}, not 64-aligned`);
            const v = view(p, size);
            for (let i = 0; i < size; i++)
              if (v[i] !== 0) fail(`pool: new block 0x${p.toString(16)} is not zeroed: byte ${i} is 0x${v[i]!.toString(16)} (still owned by someone?)`);
          } else {
            size = 1 + Math.floor(random() * job.elemSize);
            const zeroed = random() < 0.125;
            p = ((zeroed ? n.aether_safe_calloc(1, size) : n.aether_safe_malloc(size)) as unknown as number) || 0;
            if (p === 0) fail(`alloc: aether_safe_${zeroed ? "calloc" : "malloc"}(${size}) returned NULL`);
            if (p % 16 !== 0) fail(`alloc: 0x${p.toString(16)} is not 16-aligned`);
            if (zeroed) {
              const v = view(p, size);
              for (let i = 0; i < size; i++) if (v[i] !== 0) fail(`alloc: aether_safe_calloc block 0x${p.toString(16)} is not zeroed at byte ${i}`);
            }
          }
          const h = { p, size, tag: newTag() };
          stamp(view(p, size), size, h.tag);
          hold.push(h);
          produced(1);
        } else if (r < 12 / 16) {
          const i = Math.floor(random() * hold.length);
          const h = hold[i]!;
          verify(h, "before its free");
          release(h);
          hold[i] = hold[hold.length - 1]!;
          hold.pop();
        } else if (r < 14 / 16 && !pool) {
          const i = Math.floor(random() * hold.length);
          const h = hold[i]!;
          verify(h, "before its realloc");
          const size = 1 + Math.floor(random() * job.elemSize);
          const q = (n.aether_safe_realloc(h.p as unknown as Pointer, size) as unknown as number) || 0;
          if (q === 0) fail(`alloc: aether_safe_realloc(0x${h.p.toString(16)}, ${size}) returned NULL`);
          const keep = Math.min(size, h.size);
          const at = stampDamage(view(q, keep), keep, h.tag);
          if (at >= 0) fail(`alloc: aether_safe_realloc(0x${h.p.toString(16)} -> 0x${q.toString(16)}, ${h.size} -> ${size} bytes) lost the contents at byte ${at}`);
          hold[i] = { p: q, size, tag: newTag() };
          stamp(view(q, size), size, hold[i]!.tag);
        } else {
          // hand one over through the board (an mpmc queue of addresses) and take one from it
          const i = Math.floor(random() * hold.length);
          const h = hold[i]!;
          verify(h, "before it was handed on");
          if (n.aether_mpmc_try_push_u64(board, BigInt(h.p))) {
            if (job.inject === "share" && !injected && ops >= 1000) injected = true; // keep it too: two owners
            else {
              hold[i] = hold[hold.length - 1]!;
              hold.pop();
            }
          }
          if (hold.length < HOLD) takeFromBoard();
        }
        op();
      }
      for (const h of hold) {
        if (Atomics.load(ctl, 2) !== 0) break;
        verify(h, "at the end");
        release(h); // the wind-down is not counted: ops are the budget's operations
      }
    }
  } catch (e) {
    if (!(e instanceof Violation)) {
      Atomics.add(ctl, 2, 1);
      Atomics.store(ctl, 0, 1);
      result.violation = `${job.target}: worker ${job.slot} crashed: ${(e as Error).message}`;
    } else result.violation = e.message;
  } finally {
    if (pending) Atomics.add(counters, base, BigInt(pending));
    result.ops = ops;
    // The library stays open: the main thread holds it too, and this thread's pool caches are flushed by
    // the library itself when the thread exits.
  }
  return result;
}

self.onmessage = (ev: MessageEvent<WorkerJob>) => {
  const result = run(ev.data);
  postMessage(result);
};
