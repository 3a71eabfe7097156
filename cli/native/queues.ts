// queues.ts: the lock-free SPSC and MPMC queues, typed. Items are copied in and out (elemSize bytes each);
// buffers are checked against the item count here, before C reads or writes them.
import { AetherError, check, lastError, native, type Pointer } from "./ffi.ts";
import { BENCH_RESULT_BYTES, readBenchResult, type BenchResult } from "./bench.ts";

export type QueueKind = "spsc" | "mpmc";

export const QUEUE_MIN_CAPACITY = 8;
export const QUEUE_MAX_CAPACITY = 2 ** 24;
export const QUEUE_MAX_ELEM_SIZE = 4096;

type Raw = ReturnType<typeof native>;

/** bun:ffi passes a typed array as a pointer to its bytes; a DataView is viewed as bytes first. */
function typed(view: ArrayBufferView): Uint8Array {
  return view instanceof DataView ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : (view as Uint8Array);
}

/** The native entry points of one queue kind, picked once per queue so each call is one property load. */
function entryPoints(n: Raw, kind: QueueKind) {
  return kind === "spsc"
    ? {
        create: n.aether_spsc_create,
        destroy: n.aether_spsc_destroy,
        tryPush: n.aether_spsc_try_push,
        tryPop: n.aether_spsc_try_pop,
        pushN: n.aether_spsc_push_n,
        popN: n.aether_spsc_pop_n,
        tryPushU64: n.aether_spsc_try_push_u64,
        tryPopU64: n.aether_spsc_try_pop_u64,
        size: n.aether_spsc_size,
        setIndex: n.aether_spsc_debug_set_index,
        indices: n.aether_spsc_debug_indices,
      }
    : {
        create: n.aether_mpmc_create,
        destroy: n.aether_mpmc_destroy,
        tryPush: n.aether_mpmc_try_push,
        tryPop: n.aether_mpmc_try_pop,
        pushN: n.aether_mpmc_push_n,
        popN: n.aether_mpmc_pop_n,
        tryPushU64: n.aether_mpmc_try_push_u64,
        tryPopU64: n.aether_mpmc_try_pop_u64,
        size: n.aether_mpmc_size,
        setIndex: n.aether_mpmc_debug_set_index,
        indices: n.aether_mpmc_debug_indices,
      };
}

/**
 * A bounded lock-free queue in libaether. `spsc`: one producer thread and one consumer thread at a time;
 * `mpmc`: any number of each. The same object may be used from Bun Workers by passing `handle`, `kind` and
 * `elemSize` (see `Queue.attach`).
 */
export class Queue {
  readonly #fn: ReturnType<typeof entryPoints>;
  #handle: Pointer | null;
  readonly #u64 = new BigUint64Array(1);
  readonly #owned: boolean;

  private constructor(
    readonly kind: QueueKind,
    handle: Pointer,
    readonly capacity: number,
    readonly elemSize: number,
    owned: boolean,
  ) {
    this.#fn = entryPoints(native(), kind);
    this.#handle = handle;
    this.#owned = owned;
  }

  /** Create an empty queue. capacity: a power of two in [8, 2^24]; elemSize: 1..4096 bytes. Throws AetherError
   * (AETHER_ERR_NOT_POWER_OF_TWO, AETHER_ERR_OUT_OF_RANGE, AETHER_ERR_OUT_OF_MEMORY) otherwise. */
  static create(kind: QueueKind, capacity: number, elemSize = 8): Queue {
    if (kind !== "spsc" && kind !== "mpmc") throw new TypeError(`queue kind must be "spsc" or "mpmc", got ${String(kind)}`);
    const fn = entryPoints(native(), kind);
    // size_t would truncate a fraction and wrap a negative: refuse them here, naming the value given.
    for (const [what, v] of [["capacity", capacity], ["elem_size", elemSize]] as const)
      if (!Number.isSafeInteger(v) || v < 0)
        throw new AetherError(-4, "AETHER_ERR_OUT_OF_RANGE", `aether_${kind}_create: ${what} ${v} is not a whole number >= 0`);
    const h = fn.create(capacity, elemSize);
    if (!h) {
      const e = lastError(); // its message already names aether_<kind>_create
      throw new AetherError(e.status, e.code, e.message);
    }
    return new Queue(kind, h as Pointer, capacity, elemSize, true);
  }

  /** Queue.create("spsc", capacity, elemSize). */
  static spsc(capacity: number, elemSize = 8): Queue {
    return Queue.create("spsc", capacity, elemSize);
  }

  /** Queue.create("mpmc", capacity, elemSize). */
  static mpmc(capacity: number, elemSize = 8): Queue {
    return Queue.create("mpmc", capacity, elemSize);
  }

  /** Wrap a queue created elsewhere (another Worker): the caller keeps it alive and destroys it. */
  static attach(kind: QueueKind, handle: number, capacity: number, elemSize: number): Queue {
    if (!handle) throw new TypeError("Queue.attach: handle is 0");
    return new Queue(kind, handle as unknown as Pointer, capacity, elemSize, false);
  }

  /** The native address, to hand to a Worker with kind, capacity and elemSize. */
  get handle(): number {
    return this.#live() as unknown as number;
  }

  #live(): Pointer {
    if (this.#handle === null) throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", `${this.kind} queue: used after destroy()`);
    return this.#handle;
  }

  #count(view: ArrayBufferView, count: number | undefined, what: string): number {
    const max = Math.floor(view.byteLength / this.elemSize);
    if (count === undefined) return max;
    if (!Number.isSafeInteger(count) || count < 0) throw new RangeError(`${what}: count must be a whole number >= 0, got ${count}`);
    if (count > max)
      throw new RangeError(`${what}: ${count} items of ${this.elemSize} bytes need ${count * this.elemSize} bytes, the buffer has ${view.byteLength}`);
    return count;
  }

  /** Copy one item in (the first elemSize bytes of item); false if the queue is full. */
  tryPush(item: ArrayBufferView): boolean {
    if (item.byteLength < this.elemSize) throw new RangeError(`tryPush: the item has ${item.byteLength} bytes, the queue's items have ${this.elemSize}`);
    return this.#fn.tryPush(this.#live(), typed(item));
  }

  /** Copy one item out into out (or a new Uint8Array); null if the queue is empty. */
  tryPop(out?: Uint8Array): Uint8Array | null {
    const dst = out ?? new Uint8Array(this.elemSize);
    if (dst.byteLength < this.elemSize) throw new RangeError(`tryPop: out has ${dst.byteLength} bytes, the queue's items have ${this.elemSize}`);
    return this.#fn.tryPop(this.#live(), dst) ? dst : null;
  }

  /** Push up to count items (default: as many as the buffer holds) in order; returns how many went in. */
  pushN(items: ArrayBufferView, count?: number): number {
    const n = this.#count(items, count, "pushN");
    return n === 0 ? 0 : (this.#fn.pushN(this.#live(), typed(items), n) as number);
  }

  /** Pop up to count items into out; returns how many came out. */
  popN(out: ArrayBufferView, count?: number): number {
    const n = this.#count(out, count, "popN");
    return n === 0 ? 0 : (this.#fn.popN(this.#live(), typed(out), n) as number);
  }

  /** The 8-byte fast path (elemSize must be 8). */
  tryPushU64(value: bigint | number): boolean {
    if (this.elemSize !== 8) throw new RangeError(`tryPushU64: the queue's items have ${this.elemSize} bytes, not 8`);
    const ok = typeof value === "bigint" ? value >= 0n && value < 1n << 64n : Number.isSafeInteger(value) && value >= 0;
    if (!ok) throw new RangeError(`tryPushU64: ${value} is not an unsigned 64-bit integer`);
    return this.#fn.tryPushU64(this.#live(), value);
  }

  /** The 8-byte fast path: the value, or null if the queue is empty. */
  tryPopU64(): bigint | null {
    if (this.elemSize !== 8) throw new RangeError(`tryPopU64: the queue's items have ${this.elemSize} bytes, not 8`);
    return this.#fn.tryPopU64(this.#live(), this.#u64) ? this.#u64[0]! : null;
  }

  /** Items in the queue now. */
  size(): number {
    return this.#fn.size(this.#live()) as number;
  }

  /** Free the native queue (only the creator; no thread may use it any more). Idempotent. */
  destroy(): void {
    if (this.#handle === null) return;
    if (this.#owned) this.#fn.destroy(this.#handle);
    this.#handle = null;
  }

  /** TEST ONLY: move an empty, unused queue's 64-bit indices to index (to test the 2^32 and 2^64 wraps). */
  debugSetIndex(index: bigint | number): void {
    check(this.#fn.setIndex(this.#live(), BigInt.asUintN(64, BigInt(index))), `aether_${this.kind}_debug_set_index`);
  }

  /** TEST ONLY: the raw head (next push position) and tail (next pop position). */
  debugIndices(): { head: bigint; tail: bigint } {
    const h = new BigUint64Array(1);
    const t = new BigUint64Array(1);
    check(this.#fn.indices(this.#live(), h, t), `aether_${this.kind}_debug_indices`);
    return { head: h[0]!, tail: t[0]! };
  }
}

export const QBENCH_KINDS = { spsc: 0, mpmc: 1, mutex: 2, pingpong: 3, "spsc-batch": 4, "mpmc-batch": 5 } as const;
export type QueueBenchKind = keyof typeof QBENCH_KINDS;

/** A C loop on two pinned threads (CPU 0 produces, CPU 1 consumes): throughput of items u64 items, or the
 * round trip through two queues (ns_per_op = mean round trip; percentiles from a pass timing each one). */
export function benchQueue(kind: QueueBenchKind, capacity: number, items: number, roundTrip: boolean): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(
    native().aether_bench_queue(QBENCH_KINDS[kind], capacity, BigInt(items), roundTrip, new Uint8Array(buf)),
    "aether_bench_queue",
  );
  return readBenchResult(buf);
}
