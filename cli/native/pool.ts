// pool.ts: the lock-free aligned block pool, typed. Blocks are Pointers (numbers); NULL is null.
import { toArrayBuffer } from "bun:ffi";
import { AetherError, check, lastError, native, type Pointer } from "./ffi.ts";
import { BENCH_RESULT_BYTES, readBenchResult, type BenchResult } from "./bench.ts";

export interface PoolOptions {
  /** bytes per block, 1..2^30 */
  blockSize: number;
  /** a power of two in [64, 2^21] (default 64, one cache line) */
  alignment?: number;
  /** blocks mapped at creation (default 0: on first use) */
  initialBlocks?: number;
  /** the most blocks the pool may hold (default 0: no limit) */
  maxBlocks?: number;
}

export interface PoolStats {
  blockSize: number;
  alignment: number;
  stride: number;
  totalBlocks: number;
  maxBlocks: number;
  inUse: number;
  freeBlocks: number;
  cachedBlocks: number;
  chunks: number;
  reservedBytes: number;
  allocs: number;
  frees: number;
  failedAllocs: number;
  doubleFrees: number;
  invalidFrees: number;
  corrupted: number;
  /** free blocks taken back from other threads' caches when the pool ran dry */
  reclaimed: number;
}

const STATS_FIELDS = [
  "blockSize",
  "alignment",
  "stride",
  "totalBlocks",
  "maxBlocks",
  "inUse",
  "freeBlocks",
  "cachedBlocks",
  "chunks",
  "reservedBytes",
  "allocs",
  "frees",
  "failedAllocs",
  "doubleFrees",
  "invalidFrees",
  "corrupted",
  "reclaimed",
] as const satisfies readonly (keyof PoolStats)[];

const whole = (n: number | undefined, dflt: number) => (n === undefined ? dflt : Number.isSafeInteger(n) && n >= 0 ? n : -1);

/** A pool of fixed-size, aligned, zeroed blocks in libaether; usable from several Bun Workers at once. */
export class Pool {
  #handle: Pointer | null;
  readonly #owned: boolean;

  private constructor(
    handle: Pointer,
    readonly blockSize: number,
    readonly alignment: number,
    owned: boolean,
  ) {
    this.#handle = handle;
    this.#owned = owned;
  }

  /** Create a pool; throws AetherError (AETHER_ERR_NOT_POWER_OF_TWO, AETHER_ERR_OUT_OF_RANGE, ...) on bad input. */
  static create(opts: PoolOptions): Pool {
    const bs = whole(opts.blockSize, 0);
    const al = whole(opts.alignment, 64);
    const init = whole(opts.initialBlocks, 0);
    const max = whole(opts.maxBlocks, 0);
    for (const [name, v, raw] of [["blockSize", bs, opts.blockSize], ["alignment", al, opts.alignment], ["initialBlocks", init, opts.initialBlocks], ["maxBlocks", max, opts.maxBlocks]] as const)
      if (v < 0) throw new AetherError(-1, "AETHER_ERR_INVALID_ARGUMENT", `aether_pool_create: ${name} must be a whole number >= 0, got ${raw}`);
    const h = native().aether_pool_create(bs, al, init, max);
    if (!h) {
      const e = lastError();
      throw new AetherError(e.status, e.code, e.message);
    }
    return new Pool(h as Pointer, bs, al, true);
  }

  /** Wrap a pool created elsewhere (another Worker): its creator destroys it. */
  static attach(handle: number, blockSize: number, alignment = 64): Pool {
    if (!handle) throw new TypeError("Pool.attach: handle is 0");
    return new Pool(handle as unknown as Pointer, blockSize, alignment, false);
  }

  get handle(): number {
    return this.#live() as unknown as number;
  }

  #live(): Pointer {
    if (this.#handle === null) throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", "pool: used after destroy()");
    return this.#handle;
  }

  /** A zeroed block, or null when the pool is at max_blocks or out of memory (lastError() says which). */
  tryAlloc(): Pointer | null {
    const p = native().aether_pool_alloc(this.#live()) as Pointer | null;
    return p ? p : null;
  }

  /** A zeroed block; throws AetherError (AETHER_ERR_LIMIT_REACHED, AETHER_ERR_OUT_OF_MEMORY) when there is none. */
  alloc(): Pointer {
    const p = this.tryAlloc();
    if (p === null) {
      const e = lastError();
      throw new AetherError(e.status, e.code, e.message);
    }
    return p;
  }

  /** Return a block: 0 (AETHER_OK) or the negative status of a refused free (reported on stderr). */
  tryFree(block: Pointer | number | null): number {
    return native().aether_pool_free(this.#live(), block as Pointer);
  }

  /** Return a block; a double, foreign, interior or misaligned free is reported and throws AetherError. */
  free(block: Pointer | number | null): void {
    check(this.tryFree(block), "aether_pool_free");
  }

  stats(): PoolStats {
    const buf = new BigUint64Array(STATS_FIELDS.length);
    check(native().aether_pool_stats(this.#live(), buf), "aether_pool_stats");
    return Object.fromEntries(STATS_FIELDS.map((k, i) => [k, Number(buf[i])])) as unknown as PoolStats;
  }

  /** Give this thread's cached free blocks back to the shared list. */
  flushCache(): void {
    check(native().aether_pool_flush_cache(this.#live()), "aether_pool_flush_cache");
  }

  /** Whether block is allocated from this pool now (false for a freed, interior or foreign address). */
  isLive(block: Pointer | number | null): boolean {
    return check(native().aether_pool_is_live(this.#live(), block as Pointer), "aether_pool_is_live") === 1;
  }

  /** A zero-copy view of a block's blockSize bytes; throws AetherError unless the block is allocated from this
   * pool (a view of anything else could read unmapped memory). The view dies with the block: do not keep it
   * past free(). */
  view(block: Pointer | number): Uint8Array {
    if (!this.isLive(block))
      throw new AetherError(-13, "AETHER_ERR_INVALID_POINTER", `Pool.view: ${block} is not an allocated block of this pool`);
    return new Uint8Array(toArrayBuffer(block as Pointer, 0, this.blockSize));
  }

  /** Unmap the pool; returns how many blocks were still allocated (each reported on stderr). Idempotent. */
  destroy(): number {
    if (this.#handle === null) return 0;
    const n = this.#owned ? (native().aether_pool_destroy(this.#handle) as number) : 0;
    this.#handle = null;
    return n;
  }
}

/** A C loop: threads threads each do pairs of alloc+free on one shared pool of blockSize-byte blocks
 * (cached: the real pool; shared: its per-thread caches off; glibc: malloc+free in the same loop). */
export function benchPool(mode: "cached" | "shared" | "glibc", blockSize: number, pairs: number, threads = 1): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  const m = { cached: 0, shared: 1, glibc: 2 }[mode];
  check(native().aether_bench_pool(m, blockSize, BigInt(pairs), threads, new Uint8Array(buf)), "aether_bench_pool");
  return readBenchResult(buf);
}
