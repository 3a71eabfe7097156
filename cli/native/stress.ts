// stress.ts: verified concurrent load on the queues, the pool and the safe allocator, in two modes.
//  - native: threads in C, started by one FFI call (aether_stress_start); this thread polls their shared
//    counters (aether_stress_poll) and stops them at the deadline.
//  - workers: Bun Workers, each dlopening libaether itself, hammer one structure created here through the
//    FFI; they count in a SharedArrayBuffer this thread polls, and report what they sent and received.
// Either way every item and every block is checked (see csrc/stress.c and stress-items.ts) and the first
// violation is kept as one line: what, where, after how many operations.
import { toArrayBuffer, type Pointer } from "bun:ffi";
import { AetherError, lastError, loadedLibrary, native } from "./ffi.ts";
import { memory, type MemoryStats } from "./memory.ts";
import { Pool } from "./pool.ts";
import { Queue } from "./queues.ts";
import { readTag, stampDamage } from "./stress-items.ts";
import type { WorkerJob, WorkerResult } from "./stress-worker.ts";

export const STRESS_TARGETS = ["spsc", "mpmc", "pool", "alloc"] as const;
export type StressTarget = (typeof STRESS_TARGETS)[number];
export const STRESS_FAULTS = ["none", "lose", "duplicate", "share"] as const;
export type StressFault = (typeof STRESS_FAULTS)[number];

export interface StressConfig {
  target: StressTarget;
  /** queues: producer threads; pool/alloc: threads */
  producers: number;
  /** queues: consumer threads (ignored for pool/alloc) */
  consumers: number;
  /** stop after this many operations in all (0: until stopped) */
  ops: number;
  /** queues: capacity; pool: max_blocks (0: 64 per thread) */
  capacity: number;
  /** queues: item bytes; pool: block bytes; alloc: largest block */
  elemSize: number;
  seed: number;
  /** a deliberate fault, to prove the checker catches it */
  inject: StressFault;
}

export interface StressProgress {
  ops: number;
  produced: number;
  maxDepth: number;
  violations: number;
  elapsedNs: number;
  running: number;
  finished: boolean;
}

const CONFIG_BYTES = 48; // aether_stress_config: four u32, four u64
const PROGRESS_BYTES = 48; // aether_stress_progress: five u64, two u32

function readProgress(buf: ArrayBuffer): StressProgress {
  const v = new DataView(buf);
  const u = (o: number) => Number(v.getBigUint64(o, true));
  return {
    ops: u(0),
    produced: u(8),
    maxDepth: u(16),
    violations: u(24),
    elapsedNs: u(32),
    running: v.getUint32(40, true),
    finished: v.getUint32(44, true) !== 0,
  };
}

/** Native threads running one stress session in libaether. */
export class NativeStress {
  #handle: Pointer | null;
  readonly #progress = new ArrayBuffer(PROGRESS_BYTES);

  private constructor(handle: Pointer) {
    this.#handle = handle;
  }

  static start(cfg: StressConfig): NativeStress {
    const buf = new ArrayBuffer(CONFIG_BYTES);
    const v = new DataView(buf);
    v.setUint32(0, STRESS_TARGETS.indexOf(cfg.target), true);
    v.setUint32(4, cfg.producers, true);
    v.setUint32(8, cfg.consumers, true);
    v.setUint32(12, STRESS_FAULTS.indexOf(cfg.inject), true);
    v.setBigUint64(16, BigInt(cfg.ops), true);
    v.setBigUint64(24, BigInt(cfg.capacity), true);
    v.setBigUint64(32, BigInt(cfg.elemSize), true);
    v.setBigUint64(40, BigInt.asUintN(64, BigInt(cfg.seed)), true);
    const h = native().aether_stress_start(new Uint8Array(buf));
    if (!h) {
      const e = lastError();
      throw new AetherError(e.status, e.code, e.message);
    }
    return new NativeStress(h as Pointer);
  }

  #live(): Pointer {
    if (!this.#handle) throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", "stress: used after finish()");
    return this.#handle;
  }

  /** The shared counters now. */
  poll(): StressProgress {
    native().aether_stress_poll(this.#live(), new Uint8Array(this.#progress));
    return readProgress(this.#progress);
  }

  /** Ask the threads to stop; producers stop, consumers drain. Returns at once. */
  stop(): void {
    native().aether_stress_stop(this.#live());
  }

  /** Join the threads, run the final checks and free everything. */
  finish(): { progress: StressProgress; violations: number; message: string } {
    const out = new ArrayBuffer(PROGRESS_BYTES);
    const msg = new Uint8Array(512);
    const v = native().aether_stress_finish(this.#live(), new Uint8Array(out), msg, msg.length) as number;
    this.#handle = null;
    if (v < 0) {
      const e = lastError();
      throw new AetherError(v, e.code, e.message);
    }
    const end = msg.indexOf(0);
    return { progress: readProgress(out), violations: v, message: Buffer.from(msg.subarray(0, end < 0 ? msg.length : end)).toString("utf8") };
  }
}

export interface StressRunOptions extends StressConfig {
  /** seconds before the threads are stopped (null: until ops are done) */
  durationS: number | null;
  /** 0: native threads; N: N Bun Workers */
  workers: number;
  /** called about every pollMs with the counters */
  onProgress?: (p: StressProgress) => void;
  pollMs?: number;
}

export interface StressReport {
  target: StressTarget;
  mode: "native" | "workers";
  producers: number;
  consumers: number;
  threads: number;
  ops: number;
  produced: number;
  opsPerSec: number;
  durationS: number;
  violations: number;
  /** queues: the deepest the queue was seen; pool: most blocks in use; alloc: most live blocks added */
  maxDepth: number;
  violation: string | null;
  inject: StressFault;
  seed: number;
  capacity: number;
  elemSize: number;
  verdict: "pass" | "fail";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function report(o: StressRunOptions, mode: "native" | "workers", p: StressProgress, violations: number, message: string): StressReport {
  const queue = o.target === "spsc" || o.target === "mpmc";
  const durationS = p.elapsedNs / 1e9;
  return {
    target: o.target,
    mode,
    producers: o.producers,
    consumers: queue ? o.consumers : 0,
    threads: queue ? o.producers + o.consumers : o.producers,
    ops: p.ops,
    produced: p.produced,
    opsPerSec: durationS > 0 ? p.ops / durationS : 0,
    durationS,
    violations,
    maxDepth: p.maxDepth,
    violation: violations > 0 ? message || "violation" : null,
    inject: o.inject,
    seed: o.seed,
    capacity: o.capacity,
    elemSize: o.elemSize,
    verdict: violations > 0 ? "fail" : "pass",
  };
}

/** Run one stress session to its end (deadline or op count) and check it. */
export async function runStress(o: StressRunOptions): Promise<StressReport> {
  return o.workers > 0 ? runWorkers(o) : runNative(o);
}

async function runNative(o: StressRunOptions): Promise<StressReport> {
  const s = NativeStress.start(o);
  const pollMs = o.pollMs ?? 100;
  const t0 = performance.now();
  let stopped = false;
  for (;;) {
    await sleep(pollMs);
    const p = s.poll();
    o.onProgress?.(p);
    if (p.finished) break;
    if (!stopped && (p.violations > 0 || (o.durationS !== null && performance.now() - t0 >= o.durationS * 1000))) {
      s.stop();
      stopped = true;
    }
  }
  const r = s.finish();
  return report(o, "native", r.progress, r.violations, r.message);
}

// ------------------------------------------------------------------------------------ Worker mode ---
type Structure =
  | { kind: "queue"; queue: Queue }
  | { kind: "pool"; pool: Pool; board: Queue; max: number }
  | { kind: "alloc"; board: Queue; before: MemoryStats };

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Take back what is left on the board (checking each block's stamp) and free it. */
function drainBoard(target: StressTarget, board: Queue, pool: Pool | null): string | null {
  for (let v = board.tryPopU64(); v !== null; v = board.tryPopU64()) {
    const p = Number(v);
    const size = pool ? pool.blockSize : memory.usableSize(p as unknown as Pointer);
    if (size === 0) return `alloc: block ${hex(p)} left on the board is no longer allocated (freed by another owner?)`;
    const view = new Uint8Array(toArrayBuffer(p as unknown as Pointer, 0, size));
    const tag = readTag(view, size);
    const at = stampDamage(view, size, tag);
    if (at >= 0) return `${target}: block ${hex(p)} left on the board does not carry its owner's stamp (byte ${at} differs): handed to two owners?`;
    if (pool) {
      const st = pool.tryFree(p);
      if (st !== 0) return `pool: freeing block ${hex(p)} left on the board failed with ${lastError().code} (${lastError().message})`;
    } else memory.safeFree(p as unknown as Pointer);
  }
  return null;
}

function finalChecks(o: StressRunOptions, st: Structure, results: WorkerResult[], producers: number): string | null {
  if (st.kind === "queue") {
    for (let p = 0; p < producers; p++) {
      const sent = results.find((r) => r.sent && r.slot === p)?.sent ?? [0, 0, 0];
      const got: [number, number, number] = [0, 0, 0];
      for (const r of results)
        if (r.seen) {
          const e = r.seen[p]!;
          got[0] += e[0];
          got[1] += e[1];
          got[2] = (got[2] + e[2]) >>> 0;
        }
      if (got[0] !== sent[0]) return `${o.target}: producer ${p} sent ${sent[0]} items but ${got[0]} were received (${got[0] < sent[0] ? "lost" : "duplicated"})`;
      if (got[1] !== sent[1] || got[2] !== sent[2])
        return `${o.target}: producer ${p}'s checksum differs: sent sum ${sent[1]} / hash ${sent[2]}, received ${got[1]} / ${got[2]} (items lost and duplicated)`;
    }
    const left = st.queue.size();
    return left !== 0 ? `${o.target}: ${left} item(s) left in the queue after every consumer finished` : null;
  }
  if (st.kind === "pool") {
    const bad = drainBoard(o.target, st.board, st.pool);
    if (bad) return bad;
    const s = st.pool.stats();
    if (s.doubleFrees || s.invalidFrees || s.corrupted)
      return `pool: ${s.doubleFrees} double free(s), ${s.invalidFrees} invalid free(s), ${s.corrupted} corrupted header(s) reported during the run`;
    if (s.inUse !== 0) return `pool: ${s.inUse} block(s) still in use after every worker freed what it held (leak)`;
    if (s.totalBlocks > st.max) return `pool: ${s.totalBlocks} blocks mapped, more than max_blocks ${st.max}`;
    return null;
  }
  const bad = drainBoard(o.target, st.board, null);
  if (bad) return bad;
  const after = memory.stats();
  const errors = Object.entries(after.errors).map(([k, v]) => [k, v - st.before.errors[k as keyof MemoryStats["errors"]]] as const);
  const total = errors.reduce((a, [, v]) => a + v, 0);
  if (total > 0) {
    const worst = errors.reduce((a, b) => (b[1] > a[1] ? b : a));
    return `alloc: the safe allocator reported ${total} memory error(s) during the run (mostly ${worst[0]})`;
  }
  if (after.liveCount !== st.before.liveCount)
    return `alloc: ${after.liveCount - st.before.liveCount} allocation(s) leaked: ${st.before.liveCount} live before the run, ${after.liveCount} after`;
  return null;
}

async function runWorkers(o: StressRunOptions): Promise<StressReport> {
  const queue = o.target === "spsc" || o.target === "mpmc";
  const nWorkers = queue ? o.producers + o.consumers : o.producers;
  let st: Structure;
  if (queue) st = { kind: "queue", queue: Queue.create(o.target as "spsc" | "mpmc", o.capacity, o.elemSize) };
  else if (o.target === "pool") {
    const max = o.capacity || 64 * nWorkers;
    st = { kind: "pool", pool: Pool.create({ blockSize: o.elemSize, alignment: 64, initialBlocks: Math.floor(max / 4), maxBlocks: max }), board: Queue.create("mpmc", 64, 8), max };
  } else {
    memory.init();
    st = { kind: "alloc", board: Queue.create("mpmc", 64, 8), before: memory.stats() };
  }
  const control = new SharedArrayBuffer(16 + 8 * 3 * nWorkers);
  const ctl = new Int32Array(control, 0, 4);
  const counters = new BigInt64Array(control, 16);
  const lib = loadedLibrary().path;
  const handle = st.kind === "queue" ? st.queue.handle : st.kind === "pool" ? st.pool.handle : 0;
  const board = st.kind === "queue" ? 0 : st.board.handle;
  // Each producer's (owner's) share of ops: the remainder goes one each to the first, so they add up exactly.
  const sharers = queue ? o.producers : nWorkers;
  const share = (i: number) => Math.floor(o.ops / sharers) + (i < o.ops % sharers ? 1 : 0);
  const workers: Worker[] = [];
  const results: Promise<WorkerResult>[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < nWorkers; i++) {
      const role = !queue ? "owner" : i < o.producers ? "producer" : "consumer";
      const job: WorkerJob = {
        lib,
        target: o.target,
        role,
        index: role === "consumer" ? i - o.producers : i,
        slot: i,
        handle,
        board,
        elemSize: o.elemSize,
        capacity: o.capacity,
        producers: o.producers,
        budget: role === "consumer" ? 0 : share(i),
        bounded: o.ops > 0,
        liveBefore: st.kind === "alloc" ? st.before.liveCount : 0,
        seed: (o.seed + i * 0x9e3779b1) >>> 0,
        inject: o.inject,
        control,
      };
      const w = new Worker(new URL("./stress-worker.ts", import.meta.url).href);
      workers.push(w);
      results.push(
        new Promise<WorkerResult>((resolve) => {
          w.onmessage = (ev: MessageEvent<WorkerResult>) => resolve(ev.data);
          w.onerror = (ev: ErrorEvent) => {
            Atomics.add(ctl, 2, 1);
            Atomics.store(ctl, 0, 1);
            if (role === "producer") Atomics.add(ctl, 1, 1);
            resolve({ slot: i, ops: 0, produced: 0, violation: `${o.target}: worker ${i} failed: ${ev.message}` });
          };
        }),
      );
      w.postMessage(job);
    }
    let done = false;
    const all = Promise.all(results).then((r) => {
      done = true;
      return r;
    });
    // pool/alloc depth: blocks in use, sampled here at each poll
    let inUseMax = 0;
    const sampleInUse = () => {
      if (st.kind === "pool") inUseMax = Math.max(inUseMax, st.pool.stats().inUse);
      else if (st.kind === "alloc") inUseMax = Math.max(inUseMax, memory.stats().liveCount - st.before.liveCount);
    };
    const progress = (): StressProgress => {
      let ops = 0;
      let produced = 0;
      let maxDepth = inUseMax;
      for (let i = 0; i < nWorkers; i++) {
        ops += Number(Atomics.load(counters, 3 * i));
        produced += Number(Atomics.load(counters, 3 * i + 1));
        maxDepth = Math.max(maxDepth, Number(Atomics.load(counters, 3 * i + 2)));
      }
      return { ops, produced, maxDepth, violations: Atomics.load(ctl, 2), elapsedNs: (performance.now() - t0) * 1e6, running: done ? 0 : nWorkers, finished: done };
    };
    while (!done) {
      await Promise.race([all, sleep(o.pollMs ?? 100)]);
      if (!done) sampleInUse();
      const p = progress();
      if (!done) o.onProgress?.(p);
      if (o.durationS !== null && performance.now() - t0 >= o.durationS * 1000) Atomics.store(ctl, 0, 1);
    }
    const res = await all;
    const elapsedNs = (performance.now() - t0) * 1e6;
    const first = res.find((r) => r.violation)?.violation;
    let message = first ?? "";
    let violations = res.filter((r) => r.violation).length;
    if (!first) {
      const bad = finalChecks(o, st, res, o.producers);
      if (bad) {
        message = `${bad}, found by the end-of-run checks after ${progress().ops} ops`;
        violations = 1;
      }
    }
    const p = { ...progress(), elapsedNs, finished: true, running: 0, violations };
    return report(o, "workers", p, violations, message);
  } finally {
    for (const w of workers) w.terminate();
    if (st.kind === "queue") st.queue.destroy();
    else {
      st.board.destroy();
      if (st.kind === "pool") {
        // After a violation the workers leave blocks behind: the violation says what happened, the
        // destroy report would only repeat it.
        const quiet = memory.getOption("quiet");
        if (st.pool.stats().inUse > 0) memory.setOption("quiet", 1);
        st.pool.destroy();
        memory.setOption("quiet", quiet);
      }
    }
  }
}
