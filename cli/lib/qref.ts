// qref.ts: the float64 reference for the SIMD state-vector kernels, and the run that checks every kernel of
// every implementation against it (shared by `aether simd`, `aether check` and the tests). The reference reads
// the same float32 inputs the kernel read (and a gate's float32-rounded matrix), so the error it reports is the
// kernel's own arithmetic, not the rounding of its inputs.
import { QState, QKERNELS, type QKernel, type SimdImpl } from "../native/qstate.ts";

/** mulberry32: a small, fast, seedable generator; returns a function giving uniform floats in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fill with uniform values in [-1, 1), never exactly 0. */
export function fillRandom(a: Float32Array, rand: () => number): void {
  for (let i = 0; i < a.length; i++) {
    let v = 0;
    while (v === 0) v = Math.fround(rand() * 2 - 1);
    a[i] = v;
  }
}

/** A random unitary: a global phase times [[a, -conj(b)], [b, conj(a)]] with |a|^2 + |b|^2 = 1. */
export function randomUnitary(rand: () => number): number[] {
  const th = rand() * Math.PI, p1 = rand() * 2 * Math.PI, p2 = rand() * 2 * Math.PI, g = rand() * 2 * Math.PI;
  const [ar, ai] = [Math.cos(th) * Math.cos(p1), Math.cos(th) * Math.sin(p1)];
  const [br, bi] = [Math.sin(th) * Math.cos(p2), Math.sin(th) * Math.sin(p2)];
  const [gr, gi] = [Math.cos(g), Math.sin(g)];
  const mul = (xr: number, xi: number) => [gr * xr - gi * xi, gr * xi + gi * xr];
  return [...mul(ar, ai), ...mul(-br, bi), ...mul(br, bi), ...mul(ar, -ai)];
}

/** Sum with Neumaier's compensation: the float64 reference must be better than what it checks. */
function accurateSum(n: number, term: (i: number) => number): number {
  let s = 0, c = 0;
  for (let i = 0; i < n; i++) {
    const x = term(i), t = s + x;
    c += Math.abs(s) >= Math.abs(x) ? s - t + x : x - t + s;
    s = t;
  }
  return s + c;
}

export const ref = {
  norm2(re: ArrayLike<number>, im: ArrayLike<number>): number {
    return accurateSum(re.length, (i) => re[i]! * re[i]! + im[i]! * im[i]!);
  },
  inner(ar: ArrayLike<number>, ai: ArrayLike<number>, br: ArrayLike<number>, bi: ArrayLike<number>): [number, number] {
    return [
      accurateSum(ar.length, (i) => ar[i]! * br[i]! + ai[i]! * bi[i]!),
      accurateSum(ar.length, (i) => ar[i]! * bi[i]! - ai[i]! * br[i]!),
    ];
  },
  normalize(re: ArrayLike<number>, im: ArrayLike<number>): [Float64Array, Float64Array] {
    const k = 1 / Math.sqrt(ref.norm2(re, im));
    return [Float64Array.from(re, (x) => x * k), Float64Array.from(im, (x) => x * k)];
  },
  scale(re: ArrayLike<number>, im: ArrayLike<number>, cr: number, ci: number): [Float64Array, Float64Array] {
    const [r, i] = [Math.fround(cr), Math.fround(ci)];
    const outR = new Float64Array(re.length), outI = new Float64Array(re.length);
    for (let k = 0; k < re.length; k++) {
      outR[k] = r * re[k]! - i * im[k]!;
      outI[k] = r * im[k]! + i * re[k]!;
    }
    return [outR, outI];
  },
  gate(re: ArrayLike<number>, im: ArrayLike<number>, t: number, matrix: ArrayLike<number>): [Float64Array, Float64Array] {
    const m = Array.from(matrix, Math.fround);
    const outR = Float64Array.from(re), outI = Float64Array.from(im);
    const s = 2 ** t;
    for (let base = 0; base < re.length; base += 2 * s) {
      for (let i0 = base; i0 < base + s; i0++) {
        const i1 = i0 + s;
        const [xr, xi, yr, yi] = [re[i0]!, im[i0]!, re[i1]!, im[i1]!];
        outR[i0] = m[0]! * xr - m[1]! * xi + m[2]! * yr - m[3]! * yi;
        outI[i0] = m[0]! * xi + m[1]! * xr + m[2]! * yi + m[3]! * yr;
        outR[i1] = m[4]! * xr - m[5]! * xi + m[6]! * yr - m[7]! * yi;
        outI[i1] = m[4]! * xi + m[5]! * xr + m[6]! * yi + m[7]! * yr;
      }
    }
    return [outR, outI];
  },
  cnot(re: ArrayLike<number>, im: ArrayLike<number>, c: number, t: number): [Float64Array, Float64Array] {
    const outR = Float64Array.from(re), outI = Float64Array.from(im);
    const cb = 2 ** c, tb = 2 ** t;
    for (let i = 0; i < re.length; i++) {
      if ((i & cb) !== 0) {
        const j = i ^ tb;
        outR[i] = re[j]!;
        outI[i] = im[j]!;
      }
    }
    return [outR, outI];
  },
  probabilities(re: ArrayLike<number>, im: ArrayLike<number>): Float64Array {
    return Float64Array.from(re, (x, i) => x * x + im[i]! * im[i]!);
  },
};

/** ‖out − ref‖ / ‖ref‖ over one or two component arrays (re and im together). */
export function relError(out: ArrayLike<number>[], expect: ArrayLike<number>[]): number {
  let d = 0, r = 0;
  out.forEach((o, k) => {
    const e = expect[k]!;
    for (let i = 0; i < o.length; i++) {
      const x = o[i]! - e[i]!;
      d += x * x;
      r += e[i]! * e[i]!;
    }
  });
  return r === 0 ? (d === 0 ? 0 : Infinity) : Math.sqrt(d / r);
}

export const TOLERANCE = 1e-5;

/** The argument a kernel is run with in `aether simd` and the benchmark. */
export interface KernelArgs {
  target: number;
  control: number;
}
export function defaultArgs(kernel: QKernel, qubits: number): KernelArgs {
  // The gate on the top qubit (pairs 2^(n-1) apart: the whole-vector path); CNOT with its control inside a
  // vector and its target outside (the lane-mask path). The tests cover every other position.
  if (kernel === "apply_cnot") return qubits > 1 ? { control: 0, target: qubits - 1 } : { control: 0, target: 0 };
  return { target: qubits - 1, control: 0 };
}

/** Logical bytes a kernel moves on a state of n amplitudes (8 bytes each: re and im): what GB/s is measured in. */
export function kernelBytes(kernel: QKernel, n: number): number {
  const b = 8 * n;
  switch (kernel) {
    case "norm2":
      return b; // read once
    case "normalize":
      return 3 * b; // read twice (norm, then scale), written once
    case "inner_product":
      return 2 * b; // two states read
    case "probabilities":
      return b + 4 * n; // read the state, write one float per amplitude
    case "apply_cnot":
      return b; // half the amplitudes (control set) read and written
    default:
      return 2 * b; // scale, gate: read and written once
  }
}

export interface KernelCheck {
  kernel: QKernel;
  impl: SimdImpl;
  /** the implementation that actually ran (scalar for states shorter than a vector) */
  ran: SimdImpl;
  error: number;
  ok: boolean;
  args?: KernelArgs;
}

/** Run one kernel once with impl on fresh random states, return its error against the float64 reference.
 * `s` (and `t` for the inner product) are overwritten. */
export function checkKernel(kernel: QKernel, impl: SimdImpl, s: QState, t: QState, rand: () => number, args?: KernelArgs): KernelCheck {
  fillRandom(s.re, rand);
  fillRandom(s.im, rand);
  const re = Float32Array.from(s.re), im = Float32Array.from(s.im);
  const a = args ?? defaultArgs(kernel, s.qubits);
  const opts = { impl };
  let error: number;
  const ran = (() => {
    const before = s.pinned;
    s.pin(impl);
    const r = s.impl;
    s.pin(before);
    return r;
  })();
  switch (kernel) {
    case "norm2": {
      const got = s.norm2(opts), want = ref.norm2(re, im);
      error = Math.abs(got - want) / want;
      break;
    }
    case "normalize":
      s.normalize(opts);
      error = relError([s.re, s.im], ref.normalize(re, im));
      break;
    case "inner_product": {
      fillRandom(t.re, rand);
      fillRandom(t.im, rand);
      const got = s.innerProduct(t, opts);
      const [wr, wi] = ref.inner(re, im, t.re, t.im);
      // relative to |<a|b>|, but never to less than 1e-3 ‖a‖‖b‖ (random states are far from orthogonal)
      const scale = Math.max(Math.hypot(wr, wi), 1e-3 * Math.sqrt(ref.norm2(re, im) * ref.norm2(t.re, t.im)));
      error = Math.hypot(got.re - wr, got.im - wi) / scale;
      break;
    }
    case "scale": {
      const [cr, ci] = [Math.cos(1.1), Math.sin(1.1)];
      s.scale(cr, ci, opts);
      error = relError([s.re, s.im], ref.scale(re, im, cr, ci));
      break;
    }
    case "apply_gate_1q": {
      const m = randomUnitary(rand);
      s.applyGate1q(a.target, m, opts);
      error = relError([s.re, s.im], ref.gate(re, im, a.target, m));
      break;
    }
    case "apply_cnot":
      if (s.qubits < 2) throw new RangeError("apply_cnot needs at least 2 qubits");
      s.applyCnot(a.control, a.target, opts);
      error = relError([s.re, s.im], ref.cnot(re, im, a.control, a.target));
      break;
    case "probabilities": {
      const out = new Float32Array(s.length).fill(Number.NaN);
      s.probabilities(out, opts);
      error = relError([out], [ref.probabilities(re, im)]);
      break;
    }
  }
  return { kernel, impl, ran, error, ok: error < TOLERANCE, args: a };
}

export { QKERNELS };
