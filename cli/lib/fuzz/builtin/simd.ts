// simd.ts (builtin): the SIMD state-vector kernels through the FFI, decoding fuzz/simd.c's inputs and checking
// them the same way: every implementation this CPU has against a float64 reference and the API's documented
// statuses, with subnormals, infinities and NaNs in the state.
import { toArrayBuffer } from "bun:ffi";
import { native, type Pointer } from "../../../native/ffi.ts";
import { memory } from "../../../native/memory.ts";
import { Encoder, fuzzAssert, mix64, Producer } from "../producer.ts";
import type { BuiltinTarget } from "./types.ts";

const MAX_QUBITS = 10;
const MAX_OPS = 48;
const FLT_MAX = 3.4028234663852886e38;
const COMMON = [0, 1, -1, 0.5, -0.5, 0.70710678, -0.70710678, 0.6, 0.8, 2, -2, 1e-3, 1e3, 0.25, 3, -0.1].map(Math.fround);
// fuzz/simd.c's special(): zeros, the smallest and largest subnormals, FLT_MIN, FLT_MAX, infinities, NaNs...
const SPECIAL = [0, -0, 2 ** -149, -(2 ** -149), (2 - 2 ** -22) * 2 ** -127, 2 ** -126, FLT_MAX, -FLT_MAX,
  Infinity, -Infinity, NaN, NaN, 2 ** 64, 2 ** -64, Math.fround(1e-30), Math.fround(1e30), 2 ** -140, 1];
const OPS = ["norm2", "normalize", "inner_product", "scale", "apply_gate_1q", "apply_cnot", "probabilities", "set_impl", "wrap"] as const;
type OpName = (typeof OPS)[number];

interface Value {
  sel: number;
  v: number;
  bits?: number; // raw bits when read as such (a NaN's payload does not survive a JS number)
}
export interface SimdOp {
  code: number;
  name: OpName;
  n: bigint[]; // integer arguments, in decode order
  vals: Value[]; // float arguments (scale: 2, gate: 8)
}
interface Head {
  qubits: number;
  seed: bigint;
  dist: number;
  patches: { at: number; imag: number; val: Value }[];
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function takeValue(p: Producer): Value {
  const sel = p.u8();
  if (sel < 128) return { sel, v: COMMON[sel % COMMON.length]! };
  if (sel < 192) return { sel, v: SPECIAL[sel % 18]! };
  const bits = p.u32();
  u32[0] = bits;
  return { sel, v: f32[0]!, bits };
}
function putValue(e: Encoder, x: Value): void {
  e.u8(x.sel);
  if (x.sel >= 192) {
    if (x.bits !== undefined) e.u32(x.bits);
    else e.f32bits(x.v);
  }
}

function genValue(st: { s: bigint }, dist: number): number {
  const r = mix64(st);
  switch (dist % 6) {
    case 0: return Math.fround(Number(r >> 40n) * 2 ** -23 - 1);
    case 1: {
      const e = Number((r >> 8n) % 277n) - 149;
      return Math.fround(((r & 1n) ? -1 : 1) * Math.fround((1 + Number((r >> 32n) & 0x7fffffn) * 2 ** -23) * 2 ** e));
    }
    case 2: u32[0] = Number((r >> 17n) & 0xffffffffn); return f32[0]!;
    case 3: return SPECIAL[Number((r >> 33n) % 18n)]!;
    case 4: return (r & 0xffn) === 0n ? Math.fround(2 ** -149 * Number(r >> 60n)) : 0;
    default: return Number((r >> 50n) % 9n) - 4;
  }
}

function decodeHead(p: Producer): Head {
  const qubits = p.range(1, MAX_QUBITS);
  const seed = p.u64();
  const dist = p.u8();
  const patches = [];
  const n = p.u8() % 9;
  for (let i = 0; i < n; i++) patches.push({ at: p.u16(), imag: p.u8(), val: takeValue(p) });
  return { qubits, seed, dist, patches };
}

function decodeOp(p: Producer): SimdOp {
  const code = p.u8();
  const name = OPS[code % OPS.length]!;
  const o: SimdOp = { code, name, n: [], vals: [] };
  switch (name) {
    case "inner_product": o.n = [BigInt(p.u8()), p.u64(), BigInt(p.u8())]; break;
    case "scale": o.vals = [takeValue(p), takeValue(p)]; break;
    case "apply_gate_1q": o.n = [BigInt(p.u8())]; for (let k = 0; k < 8; k++) o.vals.push(takeValue(p)); break;
    case "apply_cnot": case "probabilities": o.n = [BigInt(p.u8()), BigInt(p.u8())]; break;
    case "set_impl": o.n = [BigInt(p.u8())]; break;
    case "wrap": o.n = [BigInt(p.u16()), BigInt(p.u16()), BigInt(p.u8()), BigInt(p.u8()), BigInt(p.u8())]; break;
    default: break;
  }
  return o;
}

function encode(prog: { head: Uint8Array; ops: SimdOp[] }): Uint8Array {
  const e = new Encoder().raw(prog.head);
  for (const o of prog.ops) {
    e.u8(o.code);
    const widths: Record<OpName, ("u8" | "u16" | "u64")[]> = {
      norm2: [], normalize: [], inner_product: ["u8", "u64", "u8"], scale: [], apply_gate_1q: ["u8"],
      apply_cnot: ["u8", "u8"], probabilities: ["u8", "u8"], set_impl: ["u8"], wrap: ["u16", "u16", "u8", "u8", "u8"],
    };
    widths[o.name].forEach((w, i) => (w === "u64" ? e.u64(o.n[i]!) : w === "u16" ? e.u16(Number(o.n[i]!)) : e.u8(Number(o.n[i]!))));
    for (const v of o.vals) putValue(e, v);
  }
  return e.finish();
}

// ------------------------------------------------------------------------------------------- running ---
const IMPL = { scalar: 0, avx2: 1, avx512: 2 } as const;
interface RunDef {
  name: string;
  impl: number; // -1 auto
  wrap32: boolean;
}
interface Live extends RunDef {
  s: Pointer;
  mem?: Pointer;
  re: Float32Array;
  im: Float32Array;
}

function ok(rc: number, want: number, what: string): void {
  const n = native();
  fuzzAssert(rc === want, () => `${what}: status ${n.aether_error_name(rc)} (${n.aether_last_error()}), the model says ${n.aether_error_name(want)}`);
}

function resolved(r: RunDef, len: number, def: number): number {
  let impl = r.impl === -1 ? def : r.impl;
  if (impl === 2 && r.wrap32) impl = 1;
  return len < (impl === 2 ? 16 : impl === 1 ? 8 : 1) ? 0 : impl;
}

const view = (p: number, n: number) => new Float32Array(toArrayBuffer(p as Pointer, 0, n * 4));
const outPtr = () => new BigUint64Array(1);

function open(defs: RunDef[], qubits: number, re: Float32Array, im: Float32Array, def: number): Live[] {
  const n = native();
  const len = 2 ** qubits;
  return defs.map((d) => {
    const out = outPtr();
    let mem: Pointer | undefined;
    if (d.wrap32) {
      mem = memory.alignedAlloc(64, (2 * len + 64) * 4)!;
      const base = mem as number;
      const wre = base + 32, wim = base + 32 + (((len + 15) & ~15) + 16) * 4;
      ok(n.aether_qstate_wrap(wre as Pointer, len, wim as Pointer, len, out), 0, "wrap");
    } else {
      ok(n.aether_qstate_create(qubits, out), 0, "create");
    }
    const s = Number(out[0]) as Pointer;
    if (!d.wrap32) ok(n.aether_qstate_set_impl(s, d.impl), 0, "set_impl");
    const live: Live = { ...d, s, mem, re: view(Number(n.aether_qstate_re(s)), len), im: view(Number(n.aether_qstate_im(s)), len) };
    live.re.set(re);
    live.im.set(im);
    const got = n.aether_qstate_impl(s), want = resolved(d, len, def);
    fuzzAssert(got === want, `${d.name}: a ${len}-amplitude state runs impl ${got}, the rules say ${want}`);
    return live;
  });
}

function close(runs: Live[]): void {
  for (const r of runs) {
    native().aether_qstate_destroy(r.s);
    if (r.mem) memory.safeFree(r.mem);
  }
}

function checkElem(what: string, got: number, ref: number, mag: number, nonfinite: boolean): void {
  if (nonfinite) {
    fuzzAssert(!Number.isFinite(got), `${what} = ${got} from a non-finite input`);
    return;
  }
  if (mag > FLT_MAX / 4) return;
  const tol = 2 ** -21 * mag + 2 ** -145;
  fuzzAssert(Number.isFinite(got) && Math.abs(got - ref) <= tol, () => `${what} = ${got}, the reference ${ref} (tolerance ${tol})`);
}
function checkSum(what: string, got: number, ref: number, mag: number, n: number, nonfinite: boolean): void {
  if (nonfinite) {
    fuzzAssert(!Number.isFinite(got), `${what} = ${got} from a non-finite input`);
    return;
  }
  const tol = (n + 4) * 2 ** -52 * mag;
  fuzzAssert(Number.isFinite(got) && Math.abs(got - ref) <= tol, () => `${what} = ${got}, the reference ${ref} (tolerance ${tol})`);
}
const anyNonFinite = (a: ArrayLike<number>) => Array.prototype.some.call(a, (x: number) => !Number.isFinite(x));
function sameBits(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  return x.every((v, i) => v === y[i]);
}

function fill(len: number, seed: bigint, dist: number): [Float32Array, Float32Array] {
  const re = new Float32Array(len), im = new Float32Array(len);
  const st = { s: seed };
  for (let i = 0; i < len; i++) {
    re[i] = genValue(st, dist);
    im[i] = genValue(st, dist);
  }
  return [re, im];
}

function runOp(o: SimdOp, runs: Live[], qubits: number, mre: Float32Array, mim: Float32Array, def: number): void {
  const n = native();
  const len = mre.length;
  const unchanged = (r: Live, what: string) => fuzzAssert(sameBits(r.re, mre) && sameBits(r.im, mim), `${what}/${r.name}: a refused call changed the state`);
  const nfState = anyNonFinite(mre) || anyNonFinite(mim);
  switch (o.name) {
    case "norm2": {
      let ref = 0;
      for (let i = 0; i < len; i++) ref += mre[i]! * mre[i]! + mim[i]! * mim[i]!;
      for (const r of runs) {
        const out = new Float64Array(1);
        ok(n.aether_qstate_norm2(r.s, out), 0, "norm2");
        checkSum(`norm2/${r.name}`, out[0]!, ref, ref, 2 * len, nfState);
      }
      break;
    }
    case "normalize": {
      let n2 = 0;
      for (let i = 0; i < len; i++) n2 += mre[i]! * mre[i]! + mim[i]! * mim[i]!;
      const want = nfState ? -18 : n2 === 0 ? -17 : 0;
      const inv = 1 / Math.sqrt(n2);
      for (const r of runs) {
        ok(n.aether_qstate_normalize(r.s), want, `normalize/${r.name}`);
        if (want) {
          unchanged(r, "normalize");
          continue;
        }
        for (let i = 0; i < len; i++) {
          const xr = mre[i]! * inv, xi = mim[i]! * inv;
          fuzzAssert(Math.abs(r.re[i]! - xr) <= 2 ** -21 * Math.abs(xr) + 2 ** -60 && Math.abs(r.im[i]! - xi) <= 2 ** -21 * Math.abs(xi) + 2 ** -60,
            () => `normalize/${r.name}: amplitude ${i} is ${r.re[i]}${r.im[i]! < 0 ? "" : "+"}${r.im[i]}i, the reference ${xr}+${xi}i`);
        }
      }
      break;
    }
    case "inner_product": {
      const oq = o.n[0]! % 8n === 7n ? (qubits % MAX_QUBITS) + 1 : qubits;
      const olen = 2 ** oq;
      const [bre, bim] = fill(olen, o.n[1]!, Number(o.n[2]!));
      const out = outPtr();
      ok(n.aether_qstate_create(oq, out), 0, "create");
      const b = Number(out[0]) as Pointer;
      view(Number(n.aether_qstate_re(b)), olen).set(bre);
      view(Number(n.aether_qstate_im(b)), olen).set(bim);
      let rr = 0, ri = 0, mag = 0;
      const nf = nfState || anyNonFinite(bre) || anyNonFinite(bim);
      if (olen === len) {
        for (let i = 0; i < len; i++) {
          const [ar, ai, br, bi] = [mre[i]!, mim[i]!, bre[i]!, bim[i]!];
          rr += ar * br + ai * bi;
          ri += ar * bi - ai * br;
          mag += Math.abs(ar * br) + Math.abs(ai * bi) + Math.abs(ar * bi) + Math.abs(ai * br);
        }
      }
      for (const r of runs) {
        const res = new Float64Array(2);
        const rc = n.aether_qstate_inner_product(r.s, b, res);
        ok(rc, olen === len ? 0 : -6, `inner_product/${r.name}`);
        if (rc) continue;
        checkSum(`re<a|b>/${r.name}`, res[0]!, rr, mag, 2 * len, nf);
        checkSum(`im<a|b>/${r.name}`, res[1]!, ri, mag, 2 * len, nf);
      }
      n.aether_qstate_destroy(b);
      break;
    }
    case "scale": {
      const [cr, ci] = [o.vals[0]!.v, o.vals[1]!.v];
      const want = Number.isFinite(cr) && Number.isFinite(ci) ? 0 : -18;
      for (const r of runs) {
        ok(n.aether_qstate_scale(r.s, cr, ci), want, `scale/${r.name}`);
        if (want) {
          unchanged(r, "scale");
          continue;
        }
        for (let i = 0; i < len; i++) {
          const [xr, xi] = [mre[i]!, mim[i]!];
          const nf = !Number.isFinite(xr) || !Number.isFinite(xi);
          checkElem(`scale/${r.name} re[${i}]`, r.re[i]!, cr * xr - ci * xi, Math.abs(cr * xr) + Math.abs(ci * xi), nf);
          checkElem(`scale/${r.name} im[${i}]`, r.im[i]!, cr * xi + ci * xr, Math.abs(cr * xi) + Math.abs(ci * xr), nf);
        }
      }
      break;
    }
    case "apply_gate_1q": {
      const target = Number(o.n[0]! % BigInt(qubits + 2));
      const m = Float32Array.from(o.vals.map((x) => x.v));
      const want = target >= qubits ? -4 : Array.from(m).every(Number.isFinite) ? 0 : -18;
      const s = 2 ** target;
      for (const r of runs) {
        ok(n.aether_qstate_apply_gate_1q(r.s, target, m), want, `apply_gate_1q/${r.name}`);
        if (want) {
          unchanged(r, "apply_gate_1q");
          continue;
        }
        for (let i0 = 0; i0 < len; i0++) {
          if (i0 & s) continue;
          const i1 = i0 | s;
          const [a0r, a0i, a1r, a1i] = [mre[i0]!, mim[i0]!, mre[i1]!, mim[i1]!];
          const nf = ![a0r, a0i, a1r, a1i].every(Number.isFinite);
          for (const row of [0, 1]) {
            const [cr, ci, dr, di] = [m[row * 4]!, m[row * 4 + 1]!, m[row * 4 + 2]!, m[row * 4 + 3]!];
            const at = row ? i1 : i0;
            checkElem(`apply_gate_1q/${r.name} re[${at}]`, r.re[at]!, cr * a0r - ci * a0i + dr * a1r - di * a1i,
              Math.abs(cr * a0r) + Math.abs(ci * a0i) + Math.abs(dr * a1r) + Math.abs(di * a1i), nf);
            checkElem(`apply_gate_1q/${r.name} im[${at}]`, r.im[at]!, cr * a0i + ci * a0r + dr * a1i + di * a1r,
              Math.abs(cr * a0i) + Math.abs(ci * a0r) + Math.abs(dr * a1i) + Math.abs(di * a1r), nf);
          }
        }
      }
      break;
    }
    case "apply_cnot": {
      const c = Number(o.n[0]! % BigInt(qubits + 1)), t = Number(o.n[1]! % BigInt(qubits + 1));
      const want = c >= qubits || t >= qubits ? -4 : c === t ? -1 : 0;
      // Permuted as bits (through a JS number a NaN would lose its payload).
      const rre = new Float32Array(len), rim = new Float32Array(len);
      const [ure, uim, sre, sim] = [rre, rim, mre, mim].map((a) => new Uint32Array(a.buffer, a.byteOffset, a.length)) as Uint32Array[];
      if (!want) for (let i = 0; i < len; i++) {
        const j = (i >> c) & 1 ? i ^ (1 << t) : i;
        ure![i] = sre![j]!;
        uim![i] = sim![j]!;
      }
      for (const r of runs) {
        ok(n.aether_qstate_apply_cnot(r.s, c, t), want, `apply_cnot/${r.name}`);
        if (want) unchanged(r, "apply_cnot");
        else fuzzAssert(sameBits(r.re, rre) && sameBits(r.im, rim), `apply_cnot/${r.name}: control ${c} target ${t} is not the exact permutation`);
      }
      break;
    }
    case "probabilities": {
      const variant = Number(o.n[0]! % 8n), offset = Number(o.n[1]!);
      const buf = memory.alignedAlloc(64, (len + 32) * 4)!;
      try {
        for (const r of runs) {
          let out: number | null = (buf as number) + (offset % 16) * 4;
          let cnt = len, want = 0;
          if (variant === 4) { cnt = offset & 1 ? len + 1 : len / 2 + (len === 1 ? 1 : 0); want = cnt === len ? 0 : -6; }
          else if (variant === 5) { out = (buf as number) + 2; want = -5; }
          else if (variant === 6) { out = Number(n.aether_qstate_im(r.s)) + (offset % len) * 4; want = -43; }
          else if (variant === 7) { out = null; want = -1; }
          ok(n.aether_qstate_probabilities(r.s, out as Pointer, cnt), want, `probabilities/${r.name}`);
          if (want) {
            unchanged(r, "probabilities");
            continue;
          }
          const p = view(out!, len);
          for (let i = 0; i < len; i++) {
            const [xr, xi] = [mre[i]!, mim[i]!];
            checkElem(`probabilities/${r.name} p[${i}]`, p[i]!, xr * xr + xi * xi, xr * xr + xi * xi, !Number.isFinite(xr) || !Number.isFinite(xi));
          }
        }
      } finally {
        memory.safeFree(buf);
      }
      break;
    }
    case "set_impl": {
      const impl = Number(o.n[0]! % 6n) - 2;
      for (const r of runs) {
        let want = 0;
        if (impl < -1 || impl > 2) want = -1;
        else if (impl !== -1 && !n.aether_simd_supported(impl)) want = -7;
        else if (impl === 2 && r.wrap32) want = -5;
        ok(n.aether_qstate_set_impl(r.s, impl), want, `set_impl/${r.name}`);
        if (want) continue;
        fuzzAssert(n.aether_qstate_impl(r.s) === resolved({ ...r, impl }, len, def), `set_impl/${r.name}: ${impl} then impl() = ${n.aether_qstate_impl(r.s)}`);
        ok(n.aether_qstate_set_impl(r.s, r.impl), 0, "set_impl back");
      }
      break;
    }
    case "wrap": {
      const [reOff, imOff, reSel, imSel, nulls] = o.n.map(Number) as [number, number, number, number, number];
      const LENS = [2, 4, 16, 64, 1024, 3, 0, 1];
      const reLen = LENS[reSel % 8]!, imLen = imSel % 4 === 0 ? LENS[Math.floor(imSel / 4) % 8]! : reLen;
      const floats = 2 * 1024 + 256;
      const buf = memory.alignedAlloc(64, floats * 4)! as number;
      try {
        const re = nulls % 8 === 1 ? 0 : buf + (reOff % 160) * 4;
        const im = nulls % 8 === 2 ? 0 : buf + (imOff % (floats - imLen + 1)) * 4;
        const outNull = nulls % 8 === 3;
        const bytes = reLen * 4;
        let want = 0;
        if (outNull || !re || !im) want = -1;
        else if (reLen !== imLen) want = -6;
        else if (reLen < 2 || reLen > 2 ** 30) want = -4;
        else if (reLen & (reLen - 1)) want = -3;
        else if (re % 32 || im % 32) want = -5;
        else if (re < im + bytes && im < re + bytes) want = -43;
        const out = outPtr();
        const rc = n.aether_qstate_wrap((re || null) as Pointer, reLen, (im || null) as Pointer, imLen, outNull ? null : out);
        ok(rc, want, "wrap");
        if (rc || outNull) break;
        const s = Number(out[0]) as Pointer;
        fuzzAssert(Number(n.aether_qstate_re(s)) === re && Number(n.aether_qstate_len(s)) === reLen, "wrap: the state does not use the given arrays");
        const probe = { name: "wrap", impl: -1, wrap32: re % 64 !== 0 || im % 64 !== 0 };
        fuzzAssert(n.aether_qstate_impl(s) === resolved(probe, reLen, def), "wrap: impl() breaks the rules");
        n.aether_qstate_destroy(s);
      } finally {
        memory.safeFree(buf as Pointer);
      }
      break;
    }
  }
}

let defs: RunDef[] | undefined;
let defaultImpl = 0;

export const simdTarget: BuiltinTarget<SimdOp> = {
  name: "simd",
  description: "the SIMD state-vector kernels through the FFI, every implementation against a float64 reference (fuzz/simd.c's inputs)",
  maxLen: 600,
  decode(data) {
    const p = new Producer(data);
    decodeHead(p);
    const head = data.subarray(0, p.pos);
    const ops: SimdOp[] = [];
    while (!p.empty && ops.length < MAX_OPS) ops.push(decodeOp(p));
    return { head: Uint8Array.from(head), ops };
  },
  encode,
  simplify(o) {
    const out: SimdOp[] = [];
    o.vals.forEach((v, i) => {
      if (v.sel !== 1) out.push({ ...o, vals: o.vals.map((x, j) => (j === i ? { sel: 1, v: 1 } : x)) });
    });
    return out;
  },
  describe: (o) => `${o.name}${o.n.length ? ` ${o.n.join(" ")}` : ""}${o.vals.length ? ` [${o.vals.map((v) => v.v).join(", ")}]` : ""}`,
  run(prog, log) {
    const n = native();
    if (!defs) {
      defaultImpl = n.aether_simd_impl();
      defs = [{ name: "scalar", impl: IMPL.scalar, wrap32: false }];
      if (n.aether_simd_supported(IMPL.avx2)) defs.push({ name: "avx2", impl: IMPL.avx2, wrap32: false });
      if (n.aether_simd_supported(IMPL.avx512)) defs.push({ name: "avx512", impl: IMPL.avx512, wrap32: false });
      defs.push({ name: "auto-32B-aligned", impl: -1, wrap32: true });
    }
    // The head was kept as bytes; decode it again for its values (the ops were decoded once already).
    const head = decodeHead(new Producer(prog.head));
    const len = 2 ** head.qubits;
    const [mre, mim] = fill(len, head.seed, head.dist);
    for (const pt of head.patches) {
      const a = pt.imag & 1 ? mim : mre;
      if (pt.val.bits !== undefined) new Uint32Array(a.buffer)[pt.at % len] = pt.val.bits;
      else a[pt.at % len] = pt.val.v;
    }
    log?.(`state: ${head.qubits} qubits, seed 0x${head.seed.toString(16)}, distribution ${head.dist % 6}, ${head.patches.length} patches`);
    prog.ops.forEach((o, i) => {
      log?.(`op ${i}: ${simdTarget.describe(o)}`);
      const runs = open(defs!, head.qubits, mre, mim, defaultImpl);
      try {
        runOp(o, runs, head.qubits, mre, mim, defaultImpl);
        mre.set(runs[0]!.re);
        mim.set(runs[0]!.im);
      } finally {
        close(runs);
      }
    });
    log?.("done: no finding");
  },
};
