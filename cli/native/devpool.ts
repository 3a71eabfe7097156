// devpool.ts: device memory pools for many tenants, typed. A DevicePools is one manager (one backend); each
// security context gets a DeviceContext, through which allocations are made and used. Handles, shared
// objects and references are bigint (opaque 64-bit values); every failure throws AetherError with the
// library's status (err.code: "AETHER_ERR_STALE_HANDLE", ...) and its one-line message.
import { readBenchResult, BENCH_RESULT_BYTES, type BenchResult } from "./bench.ts";
import { AetherError, cstr, native, type Pointer } from "./ffi.ts";

export const BACKENDS = ["host", "hip", "cuda"] as const;
export type BackendName = (typeof BACKENDS)[number];
export type BackendChoice = "default" | "auto" | BackendName;
const BACKEND_CODE: Record<BackendChoice, number> = { default: -1, auto: 0, host: 1, hip: 2, cuda: 3 };

export const LEVELS = ["public", "confidential", "secret"] as const;
export type Level = (typeof LEVELS)[number];

export type Access = "r" | "rw";
const ACCESS_CODE: Record<Access, number> = { r: 1, rw: 3 };

export const AUDIT_OPS = [
  "unknown", "context", "alloc", "free", "write", "read", "fill", "address", "wipe", "share_create", "acquire",
  "release", "transfer", "quota", "trim", "size",
] as const;
export type AuditOp = (typeof AUDIT_OPS)[number];

function statusName(status: number): string {
  return String(native().aether_error_name(status));
}

/** A negative status becomes an AetherError carrying the library's message (which already names the call). */
function check(status: number, what: string): number {
  if (status >= 0) return status;
  const message = String(native().aether_last_error());
  throw new AetherError(status, statusName(status), message || `${what}: ${statusName(status)}`);
}

function text(buf: Uint8Array, off: number, len: number): string {
  const end = buf.indexOf(0, off);
  return Buffer.from(buf.subarray(off, end < 0 || end > off + len ? off + len : end)).toString("utf8");
}

const asPtr = (n: number | bigint) => Number(n) as unknown as Pointer;

/** A size, offset or count for a uint64_t parameter: BigInt() would throw a bare RangeError on a fraction and
 * wrap a negative, so anything but a whole number >= 0 is refused here as the C API would refuse it. */
function u64(what: string, fn: string, v: number | bigint): bigint {
  if (typeof v === "bigint" ? v >= 0n && v < 1n << 64n : Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw new AetherError(-1, "AETHER_ERR_INVALID_ARGUMENT", `${fn}: ${what} ${String(v)} is not a whole number >= 0`);
}

// ------------------------------------------------------------------------------------------- backends
export interface DeviceInfo {
  backend: BackendName;
  available: boolean;
  /** "ok", or why not: AETHER_ERR_BACKEND_UNAVAILABLE (no runtime library), AETHER_ERR_NO_DEVICE */
  status: string;
  devices: number;
  totalBytes: number;
  name: string;
  library: string;
  message: string;
}

/** Probe one backend without opening it. */
export function probeDevice(backend: BackendName): DeviceInfo {
  const buf = new Uint8Array(600);
  const status = native().aether_device_probe(BACKEND_CODE[backend], buf);
  const v = new DataView(buf.buffer);
  return {
    backend,
    available: status === 0,
    status: status === 0 ? "ok" : statusName(status),
    devices: v.getInt32(8, true),
    totalBytes: Number(v.getBigUint64(16, true)),
    name: text(buf, 24, 64),
    library: text(buf, 88, 192),
    message: text(buf, 280, 320),
  };
}

/** Every backend, probed. */
export function deviceBackends(): DeviceInfo[] {
  return BACKENDS.map(probeDevice);
}

// ------------------------------------------------------------------------------------------- records
export interface PoolStats {
  liveCount: number;
  liveBytes: number;
  reservedBytes: number;
  totalFree: number;
  largestFree: number;
  peakLiveBytes: number;
  peakReservedBytes: number;
  peakLiveCount: number;
  slabs: number;
  slabsAcquired: number;
  slabsReleased: number;
  allocs: number;
  frees: number;
  denials: number;
  quotaHits: number;
  wipedBytes: number;
  sharedObjects: number;
  contexts: number;
  compactions: number;
  movedBytes: number;
  /** 1 - largestFree / totalFree (0 when nothing is free) */
  fragmentation: number;
}
const STATS_BYTES = 168;
const STATS_FIELDS = [
  "liveCount", "liveBytes", "reservedBytes", "totalFree", "largestFree", "peakLiveBytes", "peakReservedBytes",
  "peakLiveCount", "slabs", "slabsAcquired", "slabsReleased", "allocs", "frees", "denials", "quotaHits", "wipedBytes",
  "sharedObjects", "contexts", "compactions", "movedBytes",
] as const;

function readStats(buf: Uint8Array): PoolStats {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out = Object.fromEntries(STATS_FIELDS.map((k, i) => [k, Number(v.getBigUint64(8 * i, true))])) as Record<
    (typeof STATS_FIELDS)[number],
    number
  >;
  return { ...out, fragmentation: v.getFloat64(160, true) };
}

export interface AuditRecord {
  seq: number;
  /** nanoseconds since the epoch (CLOCK_REALTIME) */
  timeNs: bigint;
  handle: bigint;
  size: number;
  ctx: number;
  /** "ok" or the status name of the refusal */
  result: string;
  op: AuditOp;
  threadId: number;
}

export interface Leak {
  handle: bigint;
  size: number;
  ctx: number;
  kind: "allocation" | "shared-object";
}

export interface ShareInfo {
  size: number;
  refcount: number;
  ownerRef: bigint;
  transfers: number;
  creatorCtx: number;
  ownerCtx: number;
  immutable: boolean;
}

export interface ContextInfo {
  tenant: string;
  runtime: string;
  level: Level;
  isolated: boolean;
}

export interface PoolsOptions {
  /** default: AETHER_DEVICE from the environment (auto when unset) */
  backend?: BackendChoice;
  device?: number;
  /** smallest slab taken from the backend (multiple of 64 KiB; default 2 MiB) */
  slabBytes?: number;
  /** empty slab bytes a pool keeps before giving them back (default 32 MiB) */
  retainBytes?: number;
  /** in-memory audit ring, records (power of two, default 65536) */
  auditRing?: number;
  /** read every wipe back and fail with AETHER_ERR_WIPE_FAILED unless it is all zero */
  verifyWipe?: boolean;
  /** ignore AETHER_AUDIT_LOG */
  ignoreEnvAudit?: boolean;
}

// ------------------------------------------------------------------------------------------- manager
export class DevicePools {
  #ptr: Pointer | null;
  readonly #owned: boolean;
  readonly #contexts = new Map<number, DeviceContext>();

  private constructor(ptr: Pointer, owned: boolean) {
    this.#ptr = ptr;
    this.#owned = owned;
  }

  /** Open a manager on a backend (by default the one AETHER_DEVICE names, else auto). */
  static create(opts: PoolsOptions = {}): DevicePools {
    const cfg = new ArrayBuffer(32);
    const v = new DataView(cfg);
    v.setInt32(0, BACKEND_CODE[opts.backend ?? "default"], true);
    v.setInt32(4, opts.device ?? 0, true);
    v.setBigUint64(8, BigInt(opts.slabBytes ?? 0), true);
    v.setBigUint64(16, BigInt(opts.retainBytes ?? 0), true);
    v.setUint32(24, opts.auditRing ?? 0, true);
    v.setUint32(28, (opts.verifyWipe ? 1 : 0) | (opts.ignoreEnvAudit ? 2 : 0), true);
    const out = new BigUint64Array(1);
    check(native().aether_devpool_create(new Uint8Array(cfg), out), "aether_devpool_create");
    return new DevicePools(asPtr(out[0]!), true);
  }

  /** Use a manager created elsewhere in this process (a Worker gets its address by message); not owned. */
  static attach(address: number): DevicePools {
    if (!Number.isSafeInteger(address) || address <= 0) throw new TypeError(`not a manager address: ${address}`);
    return new DevicePools(asPtr(address), false);
  }

  /** The manager's address, to hand to a Worker (DevicePools.attach). */
  get address(): number {
    return Number(this.ptr);
  }

  get ptr(): Pointer {
    if (this.#ptr === null) throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", "the device pools were destroyed");
    return this.#ptr;
  }

  get backend(): BackendName {
    const k = check(native().aether_devpool_backend(this.ptr), "aether_devpool_backend");
    return BACKENDS[k - 1]!;
  }

  /** The context (tenant, runtime, level, isolation), registered on first use; same values, same context. */
  context(tenant: string, runtime: string, level: Level = "public", opts: { isolated?: boolean } = {}): DeviceContext {
    const out = new Uint32Array(1);
    const lv = LEVELS.indexOf(level);
    check(
      native().aether_devpool_context(this.ptr, cstr(tenant), cstr(runtime), lv < 0 ? 99 : lv, opts.isolated ? 1 : 0, out),
      "aether_devpool_context",
    );
    const id = out[0]!;
    let c = this.#contexts.get(id);
    if (!c) {
      c = new DeviceContext(this, id, { tenant, runtime, level, isolated: opts.isolated === true });
      this.#contexts.set(id, c);
    }
    return c;
  }

  /** The context with this id (registered by anyone sharing this manager). */
  contextById(id: number): DeviceContext {
    const known = this.#contexts.get(id);
    if (known) return known;
    const buf = new Uint8Array(104);
    check(native().aether_devpool_context_info(this.ptr, id, buf), "aether_devpool_context_info");
    const v = new DataView(buf.buffer);
    const c = new DeviceContext(this, id, {
      tenant: text(buf, 0, 64),
      runtime: text(buf, 64, 32),
      level: LEVELS[v.getInt32(96, true)] ?? "public",
      isolated: (v.getUint32(100, true) & 1) !== 0,
    });
    this.#contexts.set(id, c);
    return c;
  }

  /** Quota per tenant, across its contexts: bytes (allocated, rounded to 256) and live count; 0 = unlimited. */
  setQuota(tenant: string, quota: { bytes?: number; count?: number }): void {
    check(
      native().aether_devpool_set_quota(this.ptr, cstr(tenant), u64("bytes", "aether_devpool_set_quota", quota.bytes ?? 0), u64("count", "aether_devpool_set_quota", quota.count ?? 0)),
      "aether_devpool_set_quota",
    );
  }

  stats(): PoolStats {
    const buf = new Uint8Array(STATS_BYTES);
    check(native().aether_devpool_get_stats(this.ptr, buf), "aether_devpool_get_stats");
    return readStats(buf);
  }

  tenantStats(tenant: string): PoolStats {
    const buf = new Uint8Array(STATS_BYTES);
    check(native().aether_devpool_tenant_stats(this.ptr, cstr(tenant), buf), "aether_devpool_tenant_stats");
    return readStats(buf);
  }

  /** What is live (allocations and shared objects), up to max listed; total counts them all. */
  checkLeaks(max = 100): { total: number; leaks: Leak[] } {
    const buf = new Uint8Array(24 * Math.max(1, max));
    const total = Number(native().aether_devpool_check_leaks(this.ptr, buf, max));
    const v = new DataView(buf.buffer);
    const leaks: Leak[] = [];
    for (let i = 0; i < Math.min(total, max); i++) {
      const o = 24 * i;
      leaks.push({
        handle: v.getBigUint64(o, true),
        size: Number(v.getBigUint64(o + 8, true)),
        ctx: v.getUint32(o + 16, true),
        kind: v.getUint32(o + 20, true) === 2 ? "shared-object" : "allocation",
      });
    }
    return { total, leaks };
  }

  /** Audit records with seq > afterSeq still in the in-memory ring, oldest first. */
  audit(afterSeq = 0, max = 4096): AuditRecord[] {
    const buf = new Uint8Array(48 * Math.max(1, max));
    const n = Number(native().aether_devpool_audit_read(this.ptr, BigInt(afterSeq), buf, max));
    const v = new DataView(buf.buffer);
    const out: AuditRecord[] = [];
    for (let i = 0; i < n; i++) {
      const o = 48 * i;
      const result = v.getInt32(o + 36, true);
      out.push({
        seq: Number(v.getBigUint64(o, true)),
        timeNs: v.getBigUint64(o + 8, true),
        handle: v.getBigUint64(o + 16, true),
        size: Number(v.getBigUint64(o + 24, true)),
        ctx: v.getUint32(o + 32, true),
        result: result === 0 ? "ok" : statusName(result),
        op: AUDIT_OPS[v.getUint32(o + 40, true)] ?? "unknown",
        threadId: v.getUint32(o + 44, true),
      });
    }
    return out;
  }

  /** The newest audit sequence number issued (0 if none). */
  auditSeq(): number {
    return Number(native().aether_devpool_audit_seq(this.ptr));
  }

  /** Write audit records to a hash-chained JSON Lines file: every context's, or one context's; null stops it. */
  setAuditLog(path: string | null, context?: DeviceContext): void {
    check(native().aether_devpool_set_audit_log(this.ptr, context?.id ?? 0, cstr(path ?? "")), "aether_devpool_set_audit_log");
  }

  /** Wait until every record so far is in the audit files (and on disk). */
  flushAudit(): void {
    check(native().aether_devpool_audit_flush(this.ptr), "aether_devpool_audit_flush");
  }

  shareInfo(object: bigint): ShareInfo {
    const buf = new Uint8Array(48);
    check(native().aether_devpool_share_info(this.ptr, object, buf), "aether_devpool_share_info");
    const v = new DataView(buf.buffer);
    return {
      size: Number(v.getBigUint64(0, true)),
      refcount: Number(v.getBigUint64(8, true)),
      ownerRef: v.getBigUint64(16, true),
      transfers: Number(v.getBigUint64(24, true)),
      creatorCtx: v.getUint32(32, true),
      ownerCtx: v.getUint32(36, true),
      immutable: (v.getUint32(40, true) & 1) !== 0,
    };
  }

  /** Wipe and free whatever is live, give the slabs back, close the audit files. Only the creator may. */
  destroy(): void {
    if (this.#ptr === null) return;
    if (!this.#owned) throw new TypeError("an attached manager is destroyed by its creator, not here");
    native().aether_devpool_destroy(this.#ptr);
    this.#ptr = null;
    this.#contexts.clear();
  }
}

export interface ShareOptions {
  immutable?: boolean;
  /** what other runtimes may do: { julia: "r", elixir: "rw", "*": "r" } or "julia:r,elixir:rw" */
  perms?: Record<string, Access> | string;
  /** initial contents (the rest is zero) */
  init?: Uint8Array;
}

// ------------------------------------------------------------------------------------------- context
export class DeviceContext {
  readonly #out = new BigUint64Array(1);

  constructor(
    readonly pools: DevicePools,
    readonly id: number,
    readonly info: ContextInfo,
  ) {}

  get tenant(): string {
    return this.info.tenant;
  }
  get runtime(): string {
    return this.info.runtime;
  }
  get level(): Level {
    return this.info.level;
  }

  /** A new allocation of size bytes (256-byte aligned on the device); its handle. */
  alloc(size: number, opts: { zero?: boolean } = {}): bigint {
    check(native().aether_devpool_alloc(this.pools.ptr, this.id, u64("size", "aether_devpool_alloc", size), opts.zero ? 1 : 0, this.#out), "aether_devpool_alloc");
    return this.#out[0]!;
  }

  /** Wipe (by level) and free; the handle is stale afterwards. */
  free(handle: bigint): void {
    check(native().aether_devpool_free(this.pools.ptr, this.id, handle), "aether_devpool_free");
  }

  /** Copy data into the allocation (or shared-object reference) at offset; bounds-checked. */
  write(handle: bigint, offset: number, data: Uint8Array): void {
    check(
      native().aether_devpool_write(this.pools.ptr, this.id, handle, u64("offset", "aether_devpool_write", offset), data, BigInt(data.byteLength)),
      "aether_devpool_write",
    );
  }

  /** len bytes from offset; bounds-checked. */
  read(handle: bigint, offset: number, len: number): Uint8Array {
    const off = u64("offset", "aether_devpool_read", offset);
    const n = u64("len", "aether_devpool_read", len);
    // A length past the allocation is refused before a JavaScript buffer that large is made (or fails to be).
    if (n > 1n << 30n && off + n > BigInt(this.size(handle)))
      throw new AetherError(-26, "AETHER_ERR_OUT_OF_BOUNDS", `aether_devpool_read: [${off}, ${off + n}) is outside the allocation of ${this.size(handle)} bytes`);
    const out = new Uint8Array(len);
    check(native().aether_devpool_read(this.pools.ptr, this.id, handle, off, out, n), "aether_devpool_read");
    return out;
  }

  fill(handle: bigint, offset: number, value: number, len: number): void {
    check(
      native().aether_devpool_fill(this.pools.ptr, this.id, handle, u64("offset", "aether_devpool_fill", offset), value, u64("len", "aether_devpool_fill", len)),
      "aether_devpool_fill",
    );
  }

  /** The requested size. */
  size(handle: bigint): number {
    check(native().aether_devpool_size(this.pools.ptr, this.id, handle, this.#out), "aether_devpool_size");
    return Number(this.#out[0]!);
  }

  /** The device address (host backend: a host pointer). Pins the allocation: it never moves afterwards. */
  address(handle: bigint): bigint {
    check(native().aether_devpool_address(this.pools.ptr, this.id, handle, this.#out), "aether_devpool_address");
    return this.#out[0]!;
  }

  /** Give this context's empty slabs back now; returns the bytes released. */
  trim(): number {
    const r = native().aether_devpool_trim(this.pools.ptr, this.id);
    return check(Number(r), "aether_devpool_trim");
  }

  stats(): PoolStats {
    const buf = new Uint8Array(STATS_BYTES);
    check(native().aether_devpool_context_stats(this.pools.ptr, this.id, buf), "aether_devpool_context_stats");
    return readStats(buf);
  }

  /** Create a shared object; returns its id and this context's first reference (the owner, if mutable). */
  share(size: number, opts: ShareOptions = {}): { object: bigint; ref: bigint } {
    const perms =
      typeof opts.perms === "string"
        ? opts.perms
        : Object.entries(opts.perms ?? {})
            .map(([rt, a]) => `${rt}:${a}`)
            .join(",");
    const init = opts.init ?? new Uint8Array(0);
    const object = new BigUint64Array(1);
    const ref = new BigUint64Array(1);
    check(
      native().aether_devpool_share_create(
        this.pools.ptr, this.id, u64("size", "aether_devpool_share_create", size), opts.immutable ? 1 : 0, cstr(perms),
        init.byteLength ? init : null, BigInt(init.byteLength), object, ref,
      ),
      "aether_devpool_share_create",
    );
    return { object: object[0]!, ref: ref[0]! };
  }

  /** A reference to a shared object: "r" to read, "rw" to write (which takes ownership from the owner). */
  acquire(object: bigint, access: Access = "r"): bigint {
    check(native().aether_devpool_share_acquire(this.pools.ptr, this.id, object, ACCESS_CODE[access], this.#out), "aether_devpool_share_acquire");
    return this.#out[0]!;
  }

  /** Drop a reference; the last one wipes and frees the object. */
  release(ref: bigint): void {
    check(native().aether_devpool_share_release(this.pools.ptr, this.id, ref), "aether_devpool_share_release");
  }
}

// ------------------------------------------------------------------------------------------- audit files
export interface VerifyResult {
  ok: boolean;
  /** "ok", AETHER_ERR_TAMPERED (a record changed, removed, reordered), AETHER_ERR_MALFORMED, ... */
  status: string;
  records: number;
  /** 1-based line of the first bad record (0 if none) */
  badLine: number;
  reason: string;
  /** hash of the last good record */
  head: string;
}

function readVerify(status: number, buf: Uint8Array): VerifyResult {
  const v = new DataView(buf.buffer);
  return {
    ok: status === 0,
    status: status === 0 ? "ok" : statusName(status),
    records: Number(v.getBigUint64(0, true)),
    badLine: Number(v.getBigUint64(8, true)),
    reason: text(buf, 16, 192),
    head: text(buf, 208, 68),
  };
}

/** Verify a hash-chained audit file. Throws only when it cannot be read or SHA-256 is unavailable. */
export function verifyAuditFile(path: string): VerifyResult {
  const buf = new Uint8Array(280);
  const status = native().aether_audit_verify_file(cstr(path), buf);
  if (status === -10 || status === -31 || status === -1) check(status, `audit verify ${path}`);
  return readVerify(status, buf);
}

/** Verify audit lines held in memory. */
export function verifyAuditText(data: string | Uint8Array): VerifyResult {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const buf = new Uint8Array(280);
  const status = native().aether_audit_verify_buffer(bytes.byteLength ? bytes : null, bytes.byteLength, buf);
  if (status === -31) check(status, "audit verify");
  return readVerify(status, buf);
}

/** OK, or why SHA-256 (libcrypto.so.3) is unavailable. */
export function cryptoStatus(): { available: boolean; message: string } {
  const status = native().aether_audit_crypto_status();
  return { available: status === 0, message: status === 0 ? "libcrypto SHA-256" : String(native().aether_last_error()) };
}

// ------------------------------------------------------------------------------------------- traces
export interface TraceInfo {
  format: "aether" | "rmm";
  ops: number;
  allocs: number;
  frees: number;
  ids: number;
  peakLiveBytes: number;
  skipped: number;
  unfreed: number;
}

export class Trace {
  #ptr: Pointer | null;
  private constructor(ptr: Pointer) {
    this.#ptr = ptr;
  }
  /** Parse a trace file (our format or RMM's CSV, detected). */
  static load(path: string): Trace {
    const out = new BigUint64Array(1);
    check(native().aether_trace_load(cstr(path), out), `trace ${path}`);
    return new Trace(asPtr(out[0]!));
  }
  static parse(data: string | Uint8Array): Trace {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const out = new BigUint64Array(1);
    check(native().aether_trace_parse(bytes.byteLength ? bytes : null, bytes.byteLength, out), "trace");
    return new Trace(asPtr(out[0]!));
  }
  get ptr(): Pointer {
    if (this.#ptr === null) throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", "the trace was freed");
    return this.#ptr;
  }
  info(): TraceInfo {
    const buf = new Uint8Array(64);
    check(native().aether_trace_get_info(this.ptr, buf), "aether_trace_get_info");
    const v = new DataView(buf.buffer);
    const n = (i: number) => Number(v.getBigUint64(8 * i, true));
    return {
      ops: n(0), allocs: n(1), frees: n(2), ids: n(3), peakLiveBytes: n(4), skipped: n(5), unfreed: n(6),
      format: v.getUint32(56, true) === 2 ? "rmm" : "aether",
    };
  }
  free(): void {
    if (this.#ptr) native().aether_trace_free(this.#ptr);
    this.#ptr = null;
  }
}

export interface ReplayPoint {
  op: number;
  liveBytes: number;
  reservedBytes: number;
  fragmentation: number;
}

export interface ReplayResult {
  ops: number;
  allocs: number;
  frees: number;
  failures: number;
  peakLiveBytes: number;
  peakReservedBytes: number;
  finalReservedBytes: number;
  /** peakReservedBytes / peakLiveBytes */
  ratio: number;
  fragmentationMax: number;
  fragmentationMean: number;
  fragmentationAtPeak: number;
  alloc: BenchResult;
  free: BenchResult;
  timeline: ReplayPoint[];
}

/** Replay a trace in ctx's pool (use a fresh context for clean peaks), every operation timed in C. */
export function replayTrace(ctx: DeviceContext, trace: Trace, points = 100): ReplayResult {
  const res = new Uint8Array(96);
  const a = new ArrayBuffer(BENCH_RESULT_BYTES);
  const f = new ArrayBuffer(BENCH_RESULT_BYTES);
  const tl = new Uint8Array(32 * Math.max(1, points));
  check(
    native().aether_devpool_replay(ctx.pools.ptr, ctx.id, trace.ptr, res, new Uint8Array(a), new Uint8Array(f), tl, points),
    "aether_devpool_replay",
  );
  const v = new DataView(res.buffer);
  const n = (i: number) => Number(v.getBigUint64(8 * i, true));
  const d = (i: number) => v.getFloat64(64 + 8 * i, true);
  const tv = new DataView(tl.buffer);
  const timeline: ReplayPoint[] = [];
  for (let i = 0; i < n(7); i++) {
    const o = 32 * i;
    timeline.push({
      op: Number(tv.getBigUint64(o, true)),
      liveBytes: Number(tv.getBigUint64(o + 8, true)),
      reservedBytes: Number(tv.getBigUint64(o + 16, true)),
      fragmentation: tv.getFloat64(o + 24, true),
    });
  }
  return {
    ops: n(0), allocs: n(1), frees: n(2), failures: n(3), peakLiveBytes: n(4), peakReservedBytes: n(5),
    finalReservedBytes: n(6), ratio: d(0), fragmentationMax: d(1), fragmentationMean: d(2), fragmentationAtPeak: d(3),
    alloc: readBenchResult(a), free: readBenchResult(f), timeline,
  };
}

// ------------------------------------------------------------------------------------------- benchmarks
/** pairs of alloc(size)+free in ctx's pool ("pool"), or as raw backend allocations ("raw"), timed in C. */
export function benchDevpool(ctx: DeviceContext, mode: "pool" | "raw", size: number, pairs: number): BenchResult {
  const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(
    native().aether_bench_devpool(ctx.pools.ptr, ctx.id, mode === "pool" ? 0 : 1, BigInt(size), BigInt(pairs), new Uint8Array(buf)),
    "aether_bench_devpool",
  );
  return readBenchResult(buf);
}

/** count allocations of size bytes live at once in ctx's pool, then all freed (shuffled); each op timed. */
export function benchDevpoolLive(ctx: DeviceContext, size: number, count: number): { alloc: BenchResult; free: BenchResult } {
  const a = new ArrayBuffer(BENCH_RESULT_BYTES);
  const f = new ArrayBuffer(BENCH_RESULT_BYTES);
  check(
    native().aether_bench_devpool_live(ctx.pools.ptr, ctx.id, BigInt(size), BigInt(count), new Uint8Array(a), new Uint8Array(f)),
    "aether_bench_devpool_live",
  );
  return { alloc: readBenchResult(a), free: readBenchResult(f) };
}
