// memory.ts: the safe allocator, typed. Pointers are numbers (bun:ffi); NULL is null.
import { toArrayBuffer } from "bun:ffi";
import { check, cstr, lastError, native, type Pointer } from "./ffi.ts";

export const ERROR_KINDS = [
  "double-free",
  "invalid-free",
  "buffer-underflow",
  "buffer-overflow",
  "invalid-realloc",
  "use-after-free",
] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface MemoryStats {
  liveCount: number;
  liveBytes: number;
  peakBytes: number;
  totalAllocs: number;
  totalFrees: number;
  totalBytes: number;
  quarantineBytes: number;
  reservedBytes: number;
  errors: Record<ErrorKind, number>;
}

export interface MemoryEvent {
  seq: number;
  kind: ErrorKind;
  address: number;
  size: number;
  /** bad magic value, or offset of the first damaged byte from the user pointer */
  detail: number;
  timeNs: number;
  threadId: number;
  /** stack ids (memory.trace) of the allocation, the free and the detection; 0 when unknown or backtraces off */
  allocTrace: number;
  freeTrace: number;
  whereTrace: number;
}

export type OptionName =
  | "quarantine_bytes"
  | "abort_on_error"
  | "log_file"
  | "redzone"
  | "leak_report_max"
  | "quiet"
  | "backtrace";

const EVENT_BYTES = 64; // aether_memory_event: five u64, six u32
const BLOCK_BYTES = 24; // aether_memory_block: two u64, two u32

/** bun:ffi returns a pointer as a number (or, past 2^53, a bigint); NULL becomes null. */
function nullable(p: Pointer | bigint | null): Pointer | null {
  if (p === null || p === 0n || (p as unknown as number) === 0) return null;
  return (typeof p === "bigint" ? Number(p) : p) as Pointer;
}

export const memory = {
  init(): void {
    native().aether_memory_init();
  },
  /** NULL (null) for size 0, as the specification says. */
  safeMalloc(size: number): Pointer | null {
    return nullable(native().aether_safe_malloc(size));
  },
  safeFree(p: Pointer | null): void {
    native().aether_safe_free(p);
  },
  safeRealloc(p: Pointer | null, size: number): Pointer | null {
    return nullable(native().aether_safe_realloc(p, size));
  },
  safeCalloc(count: number, size: number): Pointer | null {
    return nullable(native().aether_safe_calloc(count, size));
  },
  alignedAlloc(alignment: number, size: number): Pointer | null {
    return nullable(native().aether_safe_aligned_alloc(alignment, size));
  },
  usableSize(p: Pointer | null): number {
    return Number(native().aether_safe_usable_size(p));
  },
  /** Number of live allocations; prints "AETHER MEMORY: N allocation(s) leaked: ..." when there are any. */
  checkLeaks(): number {
    return Number(native().aether_check_leaks());
  },
  usage(): number {
    return Number(native().aether_memory_usage());
  },
  /** Verify every live block's guards now; returns how many are damaged (each is reported). */
  checkAll(): number {
    return Number(native().aether_memory_check_all());
  },
  /** The unchecked system allocator. */
  malloc(size: number): Pointer | null {
    return nullable(native().aether_malloc(size));
  },
  free(p: Pointer | null): void {
    native().aether_free(p);
  },
  stats(): MemoryStats {
    const buf = new BigUint64Array(14);
    check(native().aether_memory_get_stats(buf), "aether_memory_get_stats");
    const n = (i: number) => Number(buf[i]);
    const errors = Object.fromEntries(ERROR_KINDS.map((k, i) => [k, n(8 + i)])) as Record<ErrorKind, number>;
    return {
      liveCount: n(0),
      liveBytes: n(1),
      peakBytes: n(2),
      totalAllocs: n(3),
      totalFrees: n(4),
      totalBytes: n(5),
      quarantineBytes: n(6),
      reservedBytes: n(7),
      errors,
    };
  },
  /** Errors detected since afterSeq (0: the newest 256 kept), oldest first. */
  errors(afterSeq = 0, max = 256): MemoryEvent[] {
    const buf = new ArrayBuffer(EVENT_BYTES * max);
    const count = Number(native().aether_memory_errors(BigInt(afterSeq), new Uint8Array(buf), max));
    const view = new DataView(buf);
    const out: MemoryEvent[] = [];
    for (let i = 0; i < count; i++) {
      const o = i * EVENT_BYTES;
      const kind = view.getUint32(o + 40, true);
      out.push({
        seq: Number(view.getBigUint64(o, true)),
        address: Number(view.getBigUint64(o + 8, true)),
        size: Number(view.getBigUint64(o + 16, true)),
        detail: Number(view.getBigUint64(o + 24, true)),
        timeNs: Number(view.getBigUint64(o + 32, true)),
        kind: ERROR_KINDS[kind] ?? ("unknown" as ErrorKind),
        threadId: view.getUint32(o + 44, true),
        allocTrace: view.getUint32(o + 48, true),
        freeTrace: view.getUint32(o + 52, true),
        whereTrace: view.getUint32(o + 56, true),
      });
    }
    return out;
  },
  /** The seq of the newest error so far (0 if none): remember it, then ask errors(seq) for what came after. */
  lastErrorSeq(): number {
    const all = memory.errors(0, 256);
    return all.length ? all[all.length - 1]!.seq : 0;
  },
  setOption(name: OptionName, value: string | number | boolean): void {
    const v = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
    check(native().aether_memory_set_option(cstr(name), cstr(v)), `option ${name}`);
  },
  getOption(name: OptionName): string {
    const out = new Uint8Array(1024);
    const n = check(native().aether_memory_get_option(cstr(name), out, out.length), `option ${name}`);
    return Buffer.from(out.subarray(0, n)).toString("utf8");
  },
  /** Live blocks, largest first (at most max), and how many are live in all. */
  liveBlocks(max = 100): { total: number; blocks: { address: number; size: number; allocTrace: number }[] } {
    const buf = new ArrayBuffer(Math.max(1, max) * BLOCK_BYTES);
    const total = Number(native().aether_memory_live_blocks(new Uint8Array(buf), max));
    const v = new DataView(buf);
    const blocks = [];
    for (let i = 0; i < Math.min(total, max); i++) {
      const o = i * BLOCK_BYTES;
      blocks.push({
        address: Number(v.getBigUint64(o, true)),
        size: Number(v.getBigUint64(o + 8, true)),
        allocTrace: v.getUint32(o + 16, true),
      });
    }
    return { total, blocks };
  },
  /** The return addresses of a recorded stack, innermost first ([] for 0 or an unknown id). */
  trace(id: number, max = 64): number[] {
    if (!id) return [];
    const buf = new BigUint64Array(max);
    const n = Number(native().aether_memory_trace(id, buf, max));
    return Array.from(buf.subarray(0, Math.min(n, max)), Number);
  },
  /** A zero-copy view of len bytes at p (len must not exceed what was allocated). */
  view(p: Pointer, len: number): Uint8Array {
    return new Uint8Array(toArrayBuffer(p, 0, len));
  },
  lastError,
};
