// tracegen.ts: synthetic allocation traces for `aether pools replay --generate`, in our format ("a ID SIZE",
// "f ID") or RMM's logging_resource_adaptor CSV. Deterministic for a given seed (xorshift128+), so a trace
// can be regenerated instead of stored.
export const PATTERNS = ["random", "ramp", "sawtooth", "small"] as const;
export type Pattern = (typeof PATTERNS)[number];

export interface GenOptions {
  pattern: Pattern;
  /** operations (allocations + frees) before the final frees */
  ops: number;
  /** live bytes never exceed this (requested sizes) */
  peak: number;
  minSize: number;
  maxSize: number;
  /** "log": log-uniform sizes (small ones common, bytes dominated by large ones); "uniform" */
  dist: "log" | "uniform";
  /** random/sawtooth: after reaching the peak, free down to this fraction of it, then refill */
  occupancy: number;
  seed: number;
  format: "aether" | "rmm";
}

export const GEN_DEFAULTS: Omit<GenOptions, "pattern"> = {
  ops: 200_000,
  peak: 256 * 1024 * 1024,
  minSize: 256,
  maxSize: 1024 * 1024,
  dist: "log",
  occupancy: 0.9,
  seed: 1,
  format: "aether",
};

class Rng {
  #a: bigint;
  #b: bigint;
  constructor(seed: number) {
    // splitmix64 to spread the seed over both words
    let z = BigInt.asUintN(64, BigInt(seed) + 0x9e3779b97f4a7c15n);
    const next = () => {
      z = BigInt.asUintN(64, z + 0x9e3779b97f4a7c15n);
      let x = z;
      x = BigInt.asUintN(64, (x ^ (x >> 30n)) * 0xbf58476d1ce4e5b9n);
      x = BigInt.asUintN(64, (x ^ (x >> 27n)) * 0x94d049bb133111ebn);
      return x ^ (x >> 31n);
    };
    this.#a = next() | 1n;
    this.#b = next() | 1n;
  }
  /** A float in [0, 1). */
  next(): number {
    let s1 = this.#a;
    const s0 = this.#b;
    this.#a = s0;
    s1 = BigInt.asUintN(64, s1 ^ (s1 << 23n));
    this.#b = s1 ^ s0 ^ (s1 >> 17n) ^ (s0 >> 26n);
    return Number(BigInt.asUintN(64, this.#b + s0) >> 11n) / 2 ** 53;
  }
  below(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** The trace as text, and what it contains. */
export function generateTrace(opts: GenOptions): { text: string; ops: number; peakLive: number } {
  const rng = new Rng(opts.seed);
  const lines: string[] = [];
  const live = new Map<number, number>();
  const ids: number[] = [];
  let total = 0;
  let next = 0;
  let peakLive = 0;
  let tick = 0;
  const min = opts.minSize;
  const max = opts.pattern === "small" ? Math.max(min, Math.min(opts.maxSize, 8192)) : opts.maxSize;
  const size = () =>
    opts.dist === "log"
      ? Math.max(1, Math.floor(Math.exp(Math.log(min) + rng.next() * (Math.log(max) - Math.log(min)))))
      : min + rng.below(max - min + 1);
  const ptr = (id: number) => `0x${(0x7f0000000000 + id * 0x1000).toString(16)}`;
  const emitAlloc = (id: number, n: number) => {
    tick++;
    lines.push(opts.format === "rmm" ? `1,${(tick / 1e6).toFixed(6)},allocate,${ptr(id)},${n},0x0` : `a ${id} ${n}`);
  };
  const emitFree = (id: number, n: number) => {
    tick++;
    lines.push(opts.format === "rmm" ? `1,${(tick / 1e6).toFixed(6)},free,${ptr(id)},${n},0x0` : `f ${id}`);
  };
  const alloc = (n: number) => {
    const id = next++;
    live.set(id, n);
    ids.push(id);
    total += n;
    if (total > peakLive) peakLive = total;
    emitAlloc(id, n);
  };
  let head = 0; // sawtooth frees in allocation order: ids[head..] is a queue
  const freeAt = (i: number) => {
    let id: number;
    if (opts.pattern === "sawtooth") {
      id = ids[head++]!;
      if (head > 4096 && head * 2 > ids.length) {
        ids.splice(0, head);
        head = 0;
      }
    } else {
      id = ids[i]!;
      ids[i] = ids[ids.length - 1]!;
      ids.pop();
    }
    const n = live.get(id)!;
    live.delete(id);
    total -= n;
    emitFree(id, n);
  };
  if (opts.format === "rmm") lines.push("Thread,Time,Action,Pointer,Size,Stream");
  else lines.push(`# aether-trace v1: ${opts.pattern}, seed ${opts.seed}, peak ${opts.peak} bytes, sizes ${min}..${max} (${opts.dist})`);
  let ops = 0;
  let pending = size();
  let draining = false;
  const low = opts.pattern === "sawtooth" ? Math.min(opts.occupancy, 0.5) : opts.occupancy;
  while (ops < opts.ops) {
    if (opts.pattern === "ramp") {
      if (total + pending > opts.peak) break;
      alloc(pending);
      pending = size();
      ops++;
      continue;
    }
    if (!draining && total + pending <= opts.peak) {
      alloc(pending);
      pending = size();
    } else {
      draining = true;
      // random and small free a random live block; sawtooth frees the oldest first
      freeAt(rng.below(ids.length - head));
      if (total <= opts.peak * low) draining = false;
    }
    ops++;
  }
  // Free what is left, so a replay ends with nothing live.
  while (ids.length > head) freeAt(rng.below(ids.length - head));
  return { text: `${lines.join("\n")}\n`, ops: lines.length - 1, peakLive };
}
