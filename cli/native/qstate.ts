// qstate.ts: SIMD state vectors, typed. A QState owns (create) or borrows (wrap) two float32 arrays, re and im,
// of 2^qubits amplitudes; its kernels run in C with the implementation chosen at start (or the one a call
// names). `state.re` and `state.im` are zero-copy Float32Array views of the native arrays: valid until
// destroy(), after which they must not be touched.
import { ptr, toArrayBuffer, type Pointer } from "bun:ffi";
import { AetherError, native } from "./ffi.ts";
import { BENCH_RESULT_BYTES, readBenchResult, type BenchResult } from "./bench.ts";

export const SIMD_IMPLS = ["scalar", "avx2", "avx512"] as const;
export type SimdImpl = (typeof SIMD_IMPLS)[number];
/** Floats per vector register of each implementation; a shorter state runs the scalar code. */
export const SIMD_WIDTH: Record<SimdImpl, number> = { scalar: 1, avx2: 8, avx512: 16 };

export const QKERNELS = ["norm2", "normalize", "inner_product", "scale", "apply_gate_1q", "apply_cnot", "probabilities"] as const;
export type QKernel = (typeof QKERNELS)[number];

export const MIN_QUBITS = 1;
export const MAX_QUBITS = 30;
/** Alignment (bytes) that wrapped arrays need; 64 lets the AVX-512 kernels run on them too. */
export const MIN_ALIGN = 32;

/** A 2x2 complex matrix as {m00.re, m00.im, m01.re, m01.im, m10.re, m10.im, m11.re, m11.im}. */
export type Matrix2 = ArrayLike<number>;
const S = Math.SQRT1_2;
export const GATES = {
  I: [1, 0, 0, 0, 0, 0, 1, 0],
  X: [0, 0, 1, 0, 1, 0, 0, 0],
  Y: [0, 0, 0, -1, 0, 1, 0, 0],
  Z: [1, 0, 0, 0, 0, 0, -1, 0],
  H: [S, 0, S, 0, S, 0, -S, 0],
  S: [1, 0, 0, 0, 0, 0, 0, 1],
  T: [1, 0, 0, 0, 0, 0, S, S],
} as const satisfies Record<string, Matrix2>;

export interface KernelOptions {
  /** run this call with this implementation (the state's own choice is restored afterwards) */
  impl?: SimdImpl;
}

const IMPL_CODES: Record<SimdImpl | "auto", number> = { auto: -1, scalar: 0, avx2: 1, avx512: 2 };
/** The C code of an implementation's name; an unknown name (from untyped JavaScript) is refused, not pinned
 * to whatever undefined converts to. */
function implCode(impl: string): number {
  const code = Object.hasOwn(IMPL_CODES, impl) ? IMPL_CODES[impl as SimdImpl] : undefined;
  if (code === undefined)
    throw new AetherError(-1, "AETHER_ERR_INVALID_ARGUMENT", `unknown SIMD implementation '${impl}' (auto, ${SIMD_IMPLS.join(", ")})`);
  return code;
}
const implName = (code: number): SimdImpl => SIMD_IMPLS[code] ?? "scalar";

export function isSimdImpl(name: string): name is SimdImpl {
  return (SIMD_IMPLS as readonly string[]).includes(name);
}

/** Throw AetherError for a negative status, with the library's message (which names the C function already). */
function ok(status: number): number {
  if (status >= 0) return status;
  const n = native();
  const code = String(n.aether_error_name(status));
  throw new AetherError(status, code, String(n.aether_last_error()) || code);
}

const toPtr = (n: bigint | number): Pointer => Number(n) as unknown as Pointer;
/** A qubit index or count for a u32 argument: anything not a whole number in range becomes 2^32-1, which C
 * refuses as out of range (rather than being silently truncated, as `>>> 0` would). */
const u32 = (n: number): number => (Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : 0xffffffff);

export const simd = {
  /** The implementation this process uses by default (CPU probe, or AETHER_SIMD). */
  impl(): SimdImpl {
    return implName(native().aether_simd_impl());
  },
  /** Why the default was chosen, in one line. */
  reason(): string {
    return String(native().aether_simd_reason());
  },
  supported(impl: SimdImpl): boolean {
    return native().aether_simd_supported(implCode(impl));
  },
  /** The implementations this CPU can run, scalar first. */
  available(): SimdImpl[] {
    return SIMD_IMPLS.filter((i) => simd.supported(i));
  },
  info(): { impl: SimdImpl; reason: string; available: SimdImpl[]; width: number } {
    const impl = simd.impl();
    return { impl, reason: simd.reason(), available: simd.available(), width: SIMD_WIDTH[impl] };
  },
  /** A fresh Float32Array of len floats whose first element lies on an `align`-byte boundary (for wrap). */
  alignedArray(len: number, align = 64): Float32Array {
    const pad = align / 4;
    const raw = new Float32Array(new ArrayBuffer((len + pad) * 4));
    // A small typed array may live in the GC heap until its address is first taken, which moves it to stable
    // memory: take the address once, then compute the offset from where it lives for good.
    ptr(raw);
    const skip = ((align - (ptr(raw) % align)) % align) / 4;
    return raw.subarray(skip, skip + len);
  },
  /** Streaming bandwidth of one core: kind read (sum), copy, or update (in place), over bytes, reps passes. */
  benchStream(kind: "read" | "copy" | "update", bytes: number, reps: number, impl?: SimdImpl): BenchResult {
    const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
    const code = { read: 0, copy: 1, update: 2 }[kind];
    ok(native().aether_bench_stream(code, impl ? implCode(impl) : -1, bytes, BigInt(reps), new Uint8Array(buf)));
    return readBenchResult(buf);
  },
};

export class QState {
  #handle: Pointer | null;
  #pinned: SimdImpl | "auto" = "auto";
  #re?: Float32Array;
  #im?: Float32Array;
  readonly qubits: number;
  readonly length: number;
  readonly owned: boolean;

  private constructor(handle: Pointer, owned: boolean, borrowed?: [Float32Array, Float32Array]) {
    this.#handle = handle;
    this.owned = owned;
    this.qubits = native().aether_qstate_qubits(handle);
    this.length = Number(native().aether_qstate_len(handle));
    if (borrowed) [this.#re, this.#im] = borrowed; // the caller's arrays stay reachable while the state is
  }

  /** A new state of numQubits (1..30) qubits in |0...0>, owning 64-byte-aligned arrays. */
  static create(numQubits: number, opts: KernelOptions = {}): QState {
    const out = new BigUint64Array(1);
    ok(native().aether_qstate_create(u32(numQubits), out));
    const s = new QState(toPtr(out[0]!), true);
    if (opts.impl) s.pin(opts.impl);
    return s;
  }

  /** A state over the caller's arrays (not copied): equal power-of-two lengths, 32-byte aligned (see
   * simd.alignedArray). They stay reachable as long as the state is. */
  static wrap(re: Float32Array, im: Float32Array, opts: KernelOptions = {}): QState {
    const out = new BigUint64Array(1);
    ok(native().aether_qstate_wrap(re, re.length, im, im.length, out));
    const s = new QState(toPtr(out[0]!), false, [re, im]);
    if (opts.impl) s.pin(opts.impl);
    return s;
  }

  get handle(): Pointer {
    if (this.#handle === null) {
      throw new AetherError(-8, "AETHER_ERR_NOT_INITIALIZED", "the state was destroyed");
    }
    return this.#handle;
  }
  get destroyed(): boolean {
    return this.#handle === null;
  }

  /** Zero-copy view of the real parts. */
  get re(): Float32Array {
    return (this.#re ??= new Float32Array(toArrayBuffer(native().aether_qstate_re(this.handle)!, 0, this.length * 4)));
  }
  /** Zero-copy view of the imaginary parts. */
  get im(): Float32Array {
    return (this.#im ??= new Float32Array(toArrayBuffer(native().aether_qstate_im(this.handle)!, 0, this.length * 4)));
  }

  /** The implementation the kernels run now (the pinned or default one, after alignment and length). */
  get impl(): SimdImpl {
    return implName(ok(native().aether_qstate_impl(this.handle)));
  }
  /** What the state is pinned to ("auto": the process default). */
  get pinned(): SimdImpl | "auto" {
    return this.#pinned;
  }
  /** Pin the state to an implementation, or "auto" to follow the process default. */
  pin(impl: SimdImpl | "auto"): this {
    ok(native().aether_qstate_set_impl(this.handle, implCode(impl)));
    this.#pinned = impl;
    return this;
  }

  #with<T>(opts: KernelOptions | undefined, fn: (h: Pointer) => T): T {
    const h = this.handle;
    if (!opts?.impl || opts.impl === this.#pinned) return fn(h);
    const before = this.#pinned;
    this.pin(opts.impl);
    try {
      return fn(h);
    } finally {
      this.pin(before);
    }
  }

  /** Sum of |amplitude|^2, accumulated in float64. */
  norm2(opts?: KernelOptions): number {
    const out = new Float64Array(1);
    this.#with(opts, (h) => ok(native().aether_qstate_norm2(h, out)));
    return out[0]!;
  }
  /** Scale to norm 1; throws AETHER_ERR_ZERO_NORM or AETHER_ERR_NON_FINITE (state untouched). */
  normalize(opts?: KernelOptions): this {
    this.#with(opts, (h) => ok(native().aether_qstate_normalize(h)));
    return this;
  }
  /** <this|other> = sum conj(this[i]) other[i]. */
  innerProduct(other: QState, opts?: KernelOptions): { re: number; im: number } {
    const out = new Float64Array(2);
    this.#with(opts, (h) => ok(native().aether_qstate_inner_product(h, other.handle, out)));
    return { re: out[0]!, im: out[1]! };
  }
  /** Multiply every amplitude by re + i*im. */
  scale(re: number, im = 0, opts?: KernelOptions): this {
    this.#with(opts, (h) => ok(native().aether_qstate_scale(h, re, im)));
    return this;
  }
  /** Apply a 2x2 complex matrix (8 numbers, see Matrix2) to qubit target. */
  applyGate1q(target: number, m: Matrix2, opts?: KernelOptions): this {
    if (m.length !== 8) throw new AetherError(-1, "AETHER_ERR_INVALID_ARGUMENT", `a 1-qubit gate needs 8 numbers, got ${m.length}`);
    const mat = Float32Array.from(m);
    this.#with(opts, (h) => ok(native().aether_qstate_apply_gate_1q(h, u32(target), mat)));
    return this;
  }
  applyCnot(control: number, target: number, opts?: KernelOptions): this {
    this.#with(opts, (h) => ok(native().aether_qstate_apply_cnot(h, u32(control), u32(target))));
    return this;
  }
  /** |amplitude|^2 into out (a new array if not given; else exactly `length` floats). */
  probabilities(out?: Float32Array, opts?: KernelOptions): Float32Array {
    const o = out ?? new Float32Array(this.length);
    this.#with(opts, (h) => ok(native().aether_qstate_probabilities(h, o, o.length)));
    return o;
  }

  /** Time reps calls of a kernel in C (gate: Hadamard on target; scale: by e^(0.1i)); see aether_bench_qstate. */
  bench(kernel: QKernel, reps: number, args: { other?: QState; target?: number; control?: number } & KernelOptions = {}): BenchResult {
    const buf = new ArrayBuffer(BENCH_RESULT_BYTES);
    const code = QKERNELS.indexOf(kernel);
    this.#with(args, (h) =>
      ok(native().aether_bench_qstate(code, h, args.other?.handle ?? null, u32(args.target ?? 0), u32(args.control ?? 0), BigInt(reps), new Uint8Array(buf))),
    );
    return readBenchResult(buf);
  }

  /** Free the state (and its arrays if it owns them). Idempotent. Views taken from re/im become invalid. */
  destroy(): void {
    if (this.#handle === null) return;
    native().aether_qstate_destroy(this.#handle);
    this.#handle = null;
    this.#re = this.#im = undefined;
  }
  [Symbol.dispose](): void {
    this.destroy();
  }
}
