// ffi.ts: the one place that finds libaether, picks its variant and dlopens it. The symbol table below is the
// whole native surface, grouped by component; typed wrappers live next to it (memory.ts, bench.ts, ...), so
// callers never touch a raw symbol. The library is loaded on first use, so `aether --help` needs no build.
import { CString, dlopen, FFIType, type Pointer } from "bun:ffi";
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

export const PACKAGE_ROOT = resolve(import.meta.dir, "..", "..");
export const BUILD_ROOT = join(PACKAGE_ROOT, "build");

export type VariantName = "release" | "asan" | "ubsan" | "tsan" | "msan";
export interface Variant {
  name: VariantName;
  sanitize: string; // the CMake AETHER_SANITIZE value
  file: string; // library file name inside build/<name>/
  runtime?: string; // the sanitizer runtime a host process preloads (gcc's)
  preloadOnly?: boolean; // the runtime cannot be loaded after the process started (ASan, TSan)
  clangOnly?: boolean;
}

export const VARIANTS: Record<VariantName, Variant> = {
  release: { name: "release", sanitize: "", file: "libaether.so" },
  asan: { name: "asan", sanitize: "address", file: "libaether-asan.so", runtime: "libasan.so", preloadOnly: true },
  ubsan: { name: "ubsan", sanitize: "undefined", file: "libaether-ubsan.so", runtime: "libubsan.so" },
  tsan: { name: "tsan", sanitize: "thread", file: "libaether-tsan.so", runtime: "libtsan.so", preloadOnly: true },
  msan: { name: "msan", sanitize: "memory", file: "libaether-msan.so", clangOnly: true },
};

export function isVariant(name: string): name is VariantName {
  return Object.hasOwn(VARIANTS, name);
}

export function variantPath(name: VariantName): string {
  return join(BUILD_ROOT, name, VARIANTS[name].file);
}

/** Which library this process uses: AETHER_LIB (a path) wins, then AETHER_VARIANT, then release. */
export function selectedLibrary(): { path: string; variant: VariantName | "custom" } {
  const explicit = process.env.AETHER_LIB;
  if (explicit) return { path: resolve(explicit), variant: "custom" };
  const v = process.env.AETHER_VARIANT ?? "release";
  if (!isVariant(v)) {
    throw new LibraryError(`AETHER_VARIANT=${v} is not one of ${Object.keys(VARIANTS).join(", ")}`);
  }
  return { path: variantPath(v), variant: v };
}

/** The library is missing, of the wrong kind, or failed to load; the message says how to fix it. */
export class LibraryError extends Error {
  override name = "LibraryError";
}

/** A native call failed: status is the negative aether_status, code its symbolic name. */
export class AetherError extends Error {
  override name = "AetherError";
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** Run fn; "ok" if it returns, the AetherError code if it throws one (anything else is rethrown). */
export function errorCode(fn: () => unknown): string {
  try {
    fn();
    return "ok";
  } catch (e) {
    if (e instanceof AetherError) return e.code;
    throw e;
  }
}

const { ptr, i32, u32, u64, f64, cstring, void: none } = FFIType;
// size_t on x86-64 Linux; bun:ffi's "usize" is the same type, but its TypeScript enum does not name it.
const usize = FFIType.u64;

// prettier-ignore
const symbols = {
  // ---- core: errors, build info, CPU features
  aether_error_name: { args: [i32], returns: cstring },
  aether_last_error: { args: [], returns: cstring },
  aether_last_status: { args: [], returns: i32 },
  aether_clear_error: { args: [], returns: none },
  aether_version: { args: [], returns: cstring },
  aether_variant: { args: [], returns: cstring },
  aether_build_compiler: { args: [], returns: cstring },
  aether_build_flags: { args: [], returns: cstring },
  aether_cpu_features: { args: [], returns: u32 },
  aether_cpu_model: { args: [ptr, usize], returns: i32 },

  // ---- safe allocator
  aether_memory_init: { args: [], returns: none },
  aether_safe_malloc: { args: [usize], returns: ptr },
  aether_safe_free: { args: [ptr], returns: none },
  aether_safe_realloc: { args: [ptr, usize], returns: ptr },
  aether_safe_calloc: { args: [usize, usize], returns: ptr },
  aether_safe_aligned_alloc: { args: [usize, usize], returns: ptr },
  aether_safe_usable_size: { args: [ptr], returns: usize },
  aether_check_leaks: { args: [], returns: usize },
  aether_memory_usage: { args: [], returns: usize },
  aether_memory_check_all: { args: [], returns: usize },
  aether_malloc: { args: [usize], returns: ptr },
  aether_free: { args: [ptr], returns: none },
  aether_memory_error_kind_name: { args: [i32], returns: cstring },
  aether_memory_get_stats: { args: [ptr], returns: i32 },
  aether_memory_errors: { args: [u64, ptr, usize], returns: usize },
  aether_memory_set_option: { args: [cstring, cstring], returns: i32 },
  aether_memory_get_option: { args: [cstring, ptr, usize], returns: i32 },
  aether_memory_live_blocks: { args: [ptr, usize], returns: usize },
  aether_memory_trace: { args: [u32, ptr, usize], returns: usize },

  // ---- lock-free queues (issue 3)
  aether_spsc_create: { args: [usize, usize], returns: ptr },
  aether_spsc_destroy: { args: [ptr], returns: none },
  aether_spsc_try_push: { args: [ptr, ptr], returns: FFIType.bool },
  aether_spsc_try_pop: { args: [ptr, ptr], returns: FFIType.bool },
  aether_spsc_push_n: { args: [ptr, ptr, usize], returns: FFIType.u64_fast },
  aether_spsc_pop_n: { args: [ptr, ptr, usize], returns: FFIType.u64_fast },
  aether_spsc_try_push_u64: { args: [ptr, u64], returns: FFIType.bool },
  aether_spsc_try_pop_u64: { args: [ptr, ptr], returns: FFIType.bool },
  aether_spsc_size: { args: [ptr], returns: FFIType.u64_fast },
  aether_spsc_capacity: { args: [ptr], returns: FFIType.u64_fast },
  aether_spsc_elem_size: { args: [ptr], returns: FFIType.u64_fast },
  aether_spsc_debug_set_index: { args: [ptr, u64], returns: i32 },
  aether_spsc_debug_indices: { args: [ptr, ptr, ptr], returns: i32 },
  aether_mpmc_create: { args: [usize, usize], returns: ptr },
  aether_mpmc_destroy: { args: [ptr], returns: none },
  aether_mpmc_try_push: { args: [ptr, ptr], returns: FFIType.bool },
  aether_mpmc_try_pop: { args: [ptr, ptr], returns: FFIType.bool },
  aether_mpmc_push_n: { args: [ptr, ptr, usize], returns: FFIType.u64_fast },
  aether_mpmc_pop_n: { args: [ptr, ptr, usize], returns: FFIType.u64_fast },
  aether_mpmc_try_push_u64: { args: [ptr, u64], returns: FFIType.bool },
  aether_mpmc_try_pop_u64: { args: [ptr, ptr], returns: FFIType.bool },
  aether_mpmc_size: { args: [ptr], returns: FFIType.u64_fast },
  aether_mpmc_capacity: { args: [ptr], returns: FFIType.u64_fast },
  aether_mpmc_elem_size: { args: [ptr], returns: FFIType.u64_fast },
  aether_mpmc_debug_set_index: { args: [ptr, u64], returns: i32 },
  aether_mpmc_debug_indices: { args: [ptr, ptr, ptr], returns: i32 },
  aether_bench_queue: { args: [i32, usize, u64, FFIType.bool, ptr], returns: i32 },
  aether_stress_start: { args: [ptr], returns: ptr },
  aether_stress_stop: { args: [ptr], returns: none },
  aether_stress_poll: { args: [ptr, ptr], returns: i32 },
  aether_stress_finish: { args: [ptr, ptr, ptr, usize], returns: FFIType.i64_fast },

  // ---- lock-free aligned pool (issue 3)
  aether_pool_create: { args: [usize, usize, usize, usize], returns: ptr },
  aether_pool_alloc: { args: [ptr], returns: ptr },
  aether_pool_free: { args: [ptr, ptr], returns: i32 },
  aether_pool_stats: { args: [ptr, ptr], returns: i32 },
  aether_pool_is_live: { args: [ptr, ptr], returns: i32 },
  aether_pool_flush_cache: { args: [ptr], returns: i32 },
  aether_pool_destroy: { args: [ptr], returns: FFIType.u64_fast },
  aether_bench_pool: { args: [i32, usize, u64, u32, ptr], returns: i32 },

  // ---- SIMD state vectors (issue 4)
  aether_simd_impl: { args: [], returns: i32 },
  aether_simd_impl_name: { args: [i32], returns: cstring },
  aether_simd_supported: { args: [i32], returns: FFIType.bool },
  aether_simd_reason: { args: [], returns: cstring },
  aether_qstate_create: { args: [u32, ptr], returns: i32 },
  aether_qstate_wrap: { args: [ptr, usize, ptr, usize, ptr], returns: i32 },
  aether_qstate_destroy: { args: [ptr], returns: none },
  aether_qstate_re: { args: [ptr], returns: ptr },
  aether_qstate_im: { args: [ptr], returns: ptr },
  aether_qstate_len: { args: [ptr], returns: u64 },
  aether_qstate_qubits: { args: [ptr], returns: u32 },
  aether_qstate_set_impl: { args: [ptr, i32], returns: i32 },
  aether_qstate_impl: { args: [ptr], returns: i32 },
  aether_qstate_norm2: { args: [ptr, ptr], returns: i32 },
  aether_qstate_normalize: { args: [ptr], returns: i32 },
  aether_qstate_inner_product: { args: [ptr, ptr, ptr], returns: i32 },
  aether_qstate_scale: { args: [ptr, FFIType.f32, FFIType.f32], returns: i32 },
  aether_qstate_apply_gate_1q: { args: [ptr, u32, ptr], returns: i32 },
  aether_qstate_apply_cnot: { args: [ptr, u32, u32], returns: i32 },
  aether_qstate_probabilities: { args: [ptr, ptr, usize], returns: i32 },
  aether_qkernel_name: { args: [i32], returns: cstring },
  aether_bench_qstate: { args: [i32, ptr, ptr, u32, u32, u64, ptr], returns: i32 },
  aether_bench_stream: { args: [i32, i32, usize, u64, ptr], returns: i32 },

  // ---- device pools (issue 5)
  aether_device_kind_name: { args: [i32], returns: cstring },
  aether_device_probe: { args: [i32, ptr], returns: i32 },
  aether_security_level_name: { args: [i32], returns: cstring },
  aether_devpool_create: { args: [ptr, ptr], returns: i32 },
  aether_devpool_destroy: { args: [ptr], returns: none },
  aether_devpool_backend: { args: [ptr], returns: i32 },
  aether_devpool_context: { args: [ptr, cstring, cstring, i32, u32, ptr], returns: i32 },
  aether_devpool_context_info: { args: [ptr, u32, ptr], returns: i32 },
  aether_devpool_set_quota: { args: [ptr, cstring, u64, u64], returns: i32 },
  aether_devpool_alloc: { args: [ptr, u32, u64, u32, ptr], returns: i32 },
  aether_devpool_free: { args: [ptr, u32, u64], returns: i32 },
  aether_devpool_write: { args: [ptr, u32, u64, u64, ptr, u64], returns: i32 },
  aether_devpool_read: { args: [ptr, u32, u64, u64, ptr, u64], returns: i32 },
  aether_devpool_fill: { args: [ptr, u32, u64, u64, i32, u64], returns: i32 },
  aether_devpool_size: { args: [ptr, u32, u64, ptr], returns: i32 },
  aether_devpool_address: { args: [ptr, u32, u64, ptr], returns: i32 },
  aether_devpool_trim: { args: [ptr, u32], returns: FFIType.i64 },
  aether_devpool_share_create: { args: [ptr, u32, u64, u32, cstring, ptr, u64, ptr, ptr], returns: i32 },
  aether_devpool_share_acquire: { args: [ptr, u32, u64, i32, ptr], returns: i32 },
  aether_devpool_share_release: { args: [ptr, u32, u64], returns: i32 },
  aether_devpool_share_info: { args: [ptr, u64, ptr], returns: i32 },
  aether_devpool_context_stats: { args: [ptr, u32, ptr], returns: i32 },
  aether_devpool_tenant_stats: { args: [ptr, cstring, ptr], returns: i32 },
  aether_devpool_get_stats: { args: [ptr, ptr], returns: i32 },
  aether_devpool_check_leaks: { args: [ptr, ptr, usize], returns: usize },
  aether_audit_op_name: { args: [i32], returns: cstring },
  aether_devpool_audit_read: { args: [ptr, u64, ptr, usize], returns: usize },
  aether_devpool_audit_seq: { args: [ptr], returns: u64 },
  aether_devpool_set_audit_log: { args: [ptr, u32, cstring], returns: i32 },
  aether_devpool_audit_flush: { args: [ptr], returns: i32 },
  aether_audit_crypto_status: { args: [], returns: i32 },
  aether_audit_verify_file: { args: [cstring, ptr], returns: i32 },
  aether_audit_verify_buffer: { args: [ptr, usize, ptr], returns: i32 },
  aether_trace_parse: { args: [ptr, usize, ptr], returns: i32 },
  aether_trace_load: { args: [cstring, ptr], returns: i32 },
  aether_trace_free: { args: [ptr], returns: none },
  aether_trace_get_info: { args: [ptr, ptr], returns: i32 },
  aether_devpool_replay: { args: [ptr, u32, ptr, ptr, ptr, ptr, ptr, usize], returns: i32 },
  aether_bench_devpool: { args: [ptr, u32, i32, u64, u64, ptr], returns: i32 },
  aether_bench_devpool_live: { args: [ptr, u32, u64, u64, ptr, ptr], returns: i32 },

  // ---- stack safety and layout (issue 7)
  aether_stack_remaining: { args: [], returns: usize },
  aether_stack_get_info: { args: [ptr], returns: i32 },
  aether_stack_probe: { args: [usize], returns: i32 },
  aether_stack_call: { args: [usize, ptr, ptr, ptr], returns: i32 },
  aether_stack_recurse_test: { args: [u64, ptr], returns: i32 },
  aether_elf_parse: { args: [ptr, usize, ptr, ptr, usize, ptr, usize], returns: i32 },
  aether_layout_align: { args: [u64, u64, ptr], returns: i32 },
  aether_layout_permissions: { args: [u64], returns: u32 },
  aether_layout_overlaps: { args: [ptr, usize, ptr, ptr, usize], returns: i32 },
  aether_layout_validate: { args: [ptr, usize, u64, ptr], returns: i32 },
  aether_layout_compute: { args: [ptr, usize, u64, u64, u64, ptr], returns: i32 },
  aether_bench_layout_overlaps: { args: [u64, i32, u32, ptr], returns: i32 },

  // ---- benchmark loops
  aether_bench_alloc: { args: [i32, usize, u64, u32, ptr], returns: i32 },
  aether_bench_ns_per_tick: { args: [], returns: f64 },
  // latency histograms and the FFI benchmark's targets (issue 8)
  aether_histogram_create: { args: [ptr], returns: i32 },
  aether_histogram_destroy: { args: [ptr], returns: none },
  aether_histogram_reset: { args: [ptr], returns: i32 },
  aether_histogram_record: { args: [ptr, f64, u64], returns: i32 },
  aether_histogram_merge: { args: [ptr, ptr], returns: i32 },
  aether_histogram_add_last: { args: [ptr], returns: i32 },
  aether_histogram_count: { args: [ptr], returns: u64 },
  aether_histogram_quantiles: { args: [ptr, ptr, ptr, usize], returns: i32 },
  aether_histogram_mean: { args: [ptr], returns: f64 },
  aether_histogram_mean_between: { args: [ptr, f64, f64], returns: f64 },
  aether_bench_nop: { args: [], returns: none },
  aether_bench_args: { args: [ptr, i32, f64], returns: f64 },
  aether_bench_u64: { args: [u64, u64], returns: u64 },
  aether_bench_fill: { args: [ptr], returns: i32 },
  aether_bench_call: { args: [i32, u64, ptr], returns: i32 },
  aether_bench_qstate_api: { args: [i32, ptr, ptr, u32, u32, u64, ptr], returns: i32 },
} as const;

type Library = ReturnType<typeof dlopen<typeof symbols>>;
let loaded: { lib: Library; path: string; variant: VariantName | "custom" } | undefined;

function open(): NonNullable<typeof loaded> {
  if (loaded) return loaded;
  const { path, variant } = selectedLibrary();
  if (!existsSync(path)) {
    const how =
      variant === "custom"
        ? "check AETHER_LIB"
        : variant === "release"
          ? "run `npm install` (or `npx aether build`)"
          : `run \`npx aether build --variant ${variant}\``;
    throw new LibraryError(`libaether (${variant}) not found at ${path}: ${how}`);
  }
  if (variant !== "custom") refuseWithoutRuntime(variant, path);
  try {
    loaded = { lib: dlopen(path, symbols), path, variant };
  } catch (e) {
    const message = (e as Error).message.split("\n")[0]!;
    const runtime = variant !== "custom" ? VARIANTS[variant].runtime : undefined;
    // A symbol the table names and the file lacks: the library was built from older sources.
    const stale = variant !== "custom" && /Symbol ".*" not found/.test(message);
    const hint = stale
      ? ` (built from older sources: run \`npx aether build${variant === "release" ? "" : ` --variant ${variant}`}\`)`
      : runtime
        ? ` (the ${variant} library needs LD_PRELOAD=$(gcc -print-file-name=${runtime}))`
        : "";
    throw new LibraryError(`cannot load ${path}: ${message}${hint}`);
  }
  return loaded;
}

/** Some of the table's symbols from the library at path, for a Bun Worker: a Worker has its own JavaScript
 * world, so it opens the library itself (with the path the main thread loaded, passed in its message) and binds
 * only what it calls, from this same table. */
export function openSymbols<K extends keyof typeof symbols>(path: string, names: readonly K[]) {
  const picked = Object.fromEntries(names.map((k) => [k, symbols[k]])) as Pick<typeof symbols, K>;
  return dlopen(path, picked).symbols;
}

/** Say what to do, in one line, instead of letting a sanitizer runtime abort the process: ASan and TSan must be
 * the first library of the process (LD_PRELOAD), and MSan needs the whole process instrumented, which Bun is not. */
function refuseWithoutRuntime(variant: VariantName, path: string): void {
  const v = VARIANTS[variant];
  if (v.clangOnly) {
    throw new LibraryError(
      `cannot load ${path} into Bun: MemorySanitizer needs every line of the process instrumented; link it into a C program built with clang -fsanitize=memory (aether sanitize --msan does)`,
    );
  }
  if (!v.preloadOnly || !v.runtime) return;
  let maps = "";
  try {
    maps = readFileSync("/proc/self/maps", "utf8");
  } catch {
    return; // cannot tell: let dlopen decide
  }
  const base = v.runtime.replace(/\.so$/, "");
  if (!new RegExp(`/${base}\\.so(\\.\\d+)*$`, "m").test(maps)) {
    throw new LibraryError(`cannot load ${path}: its runtime is not loaded (the ${variant} library needs LD_PRELOAD=$(gcc -print-file-name=${v.runtime}))`);
  }
}

/** The raw symbols; loads the library on first use. */
export function native(): Library["symbols"] {
  return open().lib.symbols;
}

/** Path and variant of the library this process loaded (loading it if needed). */
export function loadedLibrary(): { path: string; variant: VariantName | "custom" } {
  const { path, variant } = open();
  return { path, variant };
}

export function isLoaded(): boolean {
  return loaded !== undefined;
}

/** Turn a negative status into an AetherError carrying the library's message for this thread. */
export function check(status: number, what: string): number {
  if (status >= 0) return status;
  const n = native();
  const message = String(n.aether_last_error());
  throw new AetherError(status, String(n.aether_error_name(status)), `${what}: ${message || String(n.aether_error_name(status))}`);
}

/** The last failure's message on this thread, for calls that signal failure with NULL or false. */
export function lastError(): { status: number; code: string; message: string } {
  const n = native();
  const status = n.aether_last_status();
  return { status, code: String(n.aether_error_name(status)), message: String(n.aether_last_error()) };
}

/** A C string argument: NUL-terminated UTF-8 bytes (Bun passes a TypedArray as a pointer). */
export function cstr(s: string): Buffer {
  return Buffer.from(`${s}\0`, "utf8");
}

export function readCString(p: Pointer | null): string {
  return p ? new CString(p).toString() : "";
}

export type { Pointer };
