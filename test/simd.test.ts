// The SIMD state-vector kernels through the FFI, as users call them: every kernel of every implementation this
// CPU runs against a float64 reference on fresh random states, every argument precondition refused with its own
// error, and the run-time choice (CPU probe, AETHER_SIMD) as a child process sees it. Cases that would crash if
// a check were missing (a misaligned view reaching an aligned vector load) run in a child process.
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { AetherError, native } from "../cli/native/ffi.ts";
import { QKERNELS, QState, simd, SIMD_WIDTH, type SimdImpl } from "../cli/native/qstate.ts";
import { checkKernel, fillRandom, randomUnitary, ref, relError, rng, TOLERANCE } from "../cli/lib/qref.ts";
import { aether, runSnippet } from "./helpers/run.ts";

const IMPLS = simd.available();
const MAX_QUBITS = 20;
const rand = rng(0x5173d);

function expectCode(fn: () => unknown, code: string, message?: RegExp): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(AetherError);
  expect((caught as AetherError).code).toBe(code);
  if (message) expect((caught as AetherError).message).toMatch(message);
}

/** Run fn on a fresh pair of states of each size 1..max, destroying them afterwards. */
function eachSize(max: number, fn: (n: number, s: QState, t: QState) => void): void {
  for (let n = 1; n <= max; n++) {
    const s = QState.create(n), t = QState.create(n);
    try {
      fn(n, s, t);
    } finally {
      s.destroy();
      t.destroy();
    }
  }
}

describe("the run-time choice", () => {
  test("the probe agrees with /proc/cpuinfo, and the default is the widest supported implementation", () => {
    const flags = new Set((/^flags\s*:(.*)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "").trim().split(/\s+/));
    expect(simd.supported("scalar")).toBe(true);
    expect(simd.supported("avx2")).toBe(flags.has("avx2") && flags.has("fma"));
    expect(simd.supported("avx512")).toBe(flags.has("avx512f") && flags.has("avx2") && flags.has("fma"));
    if (process.env.AETHER_SIMD === undefined) {
      expect(simd.impl()).toBe(IMPLS[IMPLS.length - 1]!);
      expect(simd.reason()).toMatch(/^probed: /);
    }
  });

  const childImpl = (env: string) =>
    runSnippet(
      `import { QState, simd } from "aether-memory";
       const s = QState.create(8);
       console.log(JSON.stringify({ impl: simd.impl(), reason: simd.reason(), state: s.impl }));
       s.destroy();`,
      { env: { AETHER_SIMD: env } },
    );

  for (const impl of ["scalar", "avx2", "avx512"] as const) {
    test(`AETHER_SIMD=${impl} forces ${impl} where the CPU has it`, () => {
      const r = childImpl(impl);
      expect(r.code).toBe(0);
      const got = JSON.parse(r.stdout);
      if (simd.supported(impl)) {
        expect(got).toEqual({ impl, reason: `AETHER_SIMD=${impl}`, state: impl });
      } else {
        expect(got.reason).toMatch(new RegExp(`^AETHER_SIMD=${impl} ignored \\(this CPU or OS lacks`));
      }
    });
  }

  test("an unknown AETHER_SIMD value is ignored with a reason", () => {
    const r = childImpl("sse9");
    expect(r.code).toBe(0);
    const got = JSON.parse(r.stdout);
    expect(got.impl).toBe(IMPLS[IMPLS.length - 1]);
    expect(got.reason).toMatch(/^AETHER_SIMD=sse9 ignored \(not scalar, avx2, avx512 or auto\); probed: /);
  });

  test("a state shorter than a vector runs the scalar code inside the same call", () => {
    for (const impl of IMPLS) {
      for (let n = 1; n <= 5; n++) {
        const s = QState.create(n, { impl });
        try {
          expect(s.impl).toBe(2 ** n < SIMD_WIDTH[impl] ? "scalar" : impl);
        } finally {
          s.destroy();
        }
      }
    }
  });
});

describe("create and wrap", () => {
  test("create starts in |0...0> with 64-byte-aligned arrays, for 1 to 30 qubits", () => {
    for (const n of [1, 2, 5, 12, 20]) {
      const s = QState.create(n);
      expect(s.qubits).toBe(n);
      expect(s.length).toBe(2 ** n);
      expect(Number(native().aether_qstate_re(s.handle)) % 64).toBe(0);
      expect(Number(native().aether_qstate_im(s.handle)) % 64).toBe(0);
      expect(s.re[0]).toBe(1);
      expect(s.re.subarray(1).every((x) => x === 0)).toBe(true);
      expect(s.im.every((x) => x === 0)).toBe(true);
      expect(s.norm2()).toBe(1);
      s.destroy();
    }
    const big = QState.create(30); // 8 GiB of address space, zero pages until touched
    expect(big.length).toBe(2 ** 30);
    big.destroy();
  });

  test("a wrapped state works on the caller's arrays in place", () => {
    const re = simd.alignedArray(64), im = simd.alignedArray(64);
    fillRandom(re, rand);
    fillRandom(im, rand);
    const s = QState.wrap(re, im);
    expect(s.owned).toBe(false);
    expect(s.re).toBe(re);
    const before = ref.norm2(re, im);
    expect(Math.abs(s.norm2() - before) / before).toBeLessThan(1e-12);
    s.normalize();
    expect(Math.abs(ref.norm2(re, im) - 1)).toBeLessThan(1e-6);
    s.destroy();
  });

  test("destroy is idempotent and a destroyed state refuses every call", () => {
    const s = QState.create(4);
    s.destroy();
    s.destroy();
    expect(s.destroyed).toBe(true);
    expectCode(() => s.norm2(), "AETHER_ERR_NOT_INITIALIZED");
    expectCode(() => s.applyCnot(0, 1), "AETHER_ERR_NOT_INITIALIZED");
  });
});

for (const impl of IMPLS) {
  describe(`${impl}: every kernel against the float64 reference`, () => {
    test(`norm2, normalize, inner_product, scale, probabilities on 1..${MAX_QUBITS} qubits`, () => {
      eachSize(MAX_QUBITS, (n, s, t) => {
        for (const k of ["norm2", "normalize", "inner_product", "scale", "probabilities"] as const) {
          const c = checkKernel(k, impl, s, t, rand);
          if (c.error >= TOLERANCE || Number.isNaN(c.error)) throw new Error(`${k} on ${n} qubits: error ${c.error}`);
          expect(c.ran).toBe(2 ** n < SIMD_WIDTH[impl] ? "scalar" : impl);
        }
      });
    });

    test(`apply_gate_1q with a random unitary at every target, 1..${MAX_QUBITS} qubits`, () => {
      eachSize(MAX_QUBITS, (n, s, t) => {
        for (let target = 0; target < n; target++) {
          const c = checkKernel("apply_gate_1q", impl, s, t, rand, { target, control: 0 });
          if (!(c.error < TOLERANCE)) throw new Error(`gate on qubit ${target} of ${n}: error ${c.error}`);
        }
      });
    });

    test(`apply_cnot at every (control, target) up to 10 qubits, and at the edges up to ${MAX_QUBITS}`, () => {
      eachSize(MAX_QUBITS, (n, s, t) => {
        if (n < 2) return;
        // Beyond 10 qubits: 0, both sides of the AVX2 and AVX-512 vector boundaries (2..5), and the top qubit.
        const qs = n <= 10 ? [...Array(n).keys()] : [0, 2, 3, 4, 5, n - 1];
        for (const control of qs) {
          for (const target of qs) {
            if (control === target) continue;
            const c = checkKernel("apply_cnot", impl, s, t, rand, { control, target });
            // A permutation of the amplitudes: exact.
            if (c.error !== 0) throw new Error(`cnot(${control}, ${target}) on ${n} qubits: error ${c.error}`);
          }
        }
      });
    });

    test("normalize leaves norm 1 within 1e-6; unitary gates keep the norm; CNOT twice is the identity", () => {
      eachSize(MAX_QUBITS, (n, s) => {
        fillRandom(s.re, rand);
        fillRandom(s.im, rand);
        s.normalize({ impl });
        const norm = ref.norm2(s.re, s.im);
        if (!(Math.abs(norm - 1) < 1e-6)) throw new Error(`norm after normalize on ${n} qubits: ${norm}`);
        for (let target = 0; target < n; target++) s.applyGate1q(target, randomUnitary(rand), { impl });
        const after = ref.norm2(s.re, s.im);
        if (!(Math.abs(after - 1) < 1e-5)) throw new Error(`norm after ${n} unitary gates: ${after}`);
        if (n >= 2) {
          const re = Float32Array.from(s.re), im = Float32Array.from(s.im);
          s.applyCnot(n - 1, 0, { impl }).applyCnot(n - 1, 0, { impl });
          expect(relError([s.re, s.im], [re, im])).toBe(0);
        }
      });
    });

    test("norm2 and inner_product accumulate in float64: 2^20 amplitudes agree with a compensated sum to 1e-11", () => {
      const s = QState.create(20, { impl }), t = QState.create(20, { impl });
      for (const st of [s, t]) {
        // all positive: no cancellation, so a float32 accumulator's error (about 1e-6 here) would show
        for (const a of [st.re, st.im]) for (let i = 0; i < a.length; i++) a[i] = Math.fround(0.5 + rand());
      }
      const want = ref.norm2(s.re, s.im);
      expect(Math.abs(s.norm2() - want) / want).toBeLessThan(1e-11);
      const [wr, wi] = ref.inner(s.re, s.im, t.re, t.im);
      const got = s.innerProduct(t);
      expect(Math.abs(got.re - wr) / Math.abs(wr)).toBeLessThan(1e-11);
      expect(Math.abs(got.im - wi)).toBeLessThan(1e-11 * Math.abs(wr));
      s.destroy();
      t.destroy();
    });

    test("outputs are poisoned before the call and every element is written", () => {
      for (const n of [1, 3, 4, 5, 9]) {
        const s = QState.create(n, { impl }), t = QState.create(n, { impl });
        fillRandom(s.re, rand);
        fillRandom(s.im, rand);
        fillRandom(t.re, rand);
        fillRandom(t.im, rand);
        const n2 = new Float64Array([Number.NaN]);
        expect(native().aether_qstate_norm2(s.handle, n2)).toBe(0);
        expect(Math.abs(n2[0]! - ref.norm2(s.re, s.im)) / ref.norm2(s.re, s.im)).toBeLessThan(1e-12);
        const ip = new Float64Array([Number.NaN, Number.NaN]);
        expect(native().aether_qstate_inner_product(s.handle, t.handle, ip)).toBe(0);
        const [wr, wi] = ref.inner(s.re, s.im, t.re, t.im);
        expect(Math.abs(ip[0]! - wr) + Math.abs(ip[1]! - wi)).toBeLessThan(1e-9);
        // a buffer one longer than needed on each side: the guards must survive, the inside be fully written
        const buf = new Float32Array(s.length + 2).fill(Number.NaN);
        const out = buf.subarray(1, 1 + s.length);
        s.probabilities(out);
        const want = ref.probabilities(s.re, s.im);
        for (let i = 0; i < s.length; i++) {
          if (!(Math.abs(out[i]! - want[i]!) <= 1e-6 * want[i]!)) throw new Error(`probabilities[${i}] of ${n} qubits: ${out[i]} vs ${want[i]}`);
        }
        expect(Number.isNaN(buf[0]!) && Number.isNaN(buf[s.length + 1]!)).toBe(true);
        s.destroy();
        t.destroy();
      }
    });

    test("kernels on wrapped arrays stay inside them (canaries on both sides), at 64- and 32-byte alignment", () => {
      const CANARY = -7.25;
      for (const offset of [16, 8]) {
        for (const n of [1, 3, 4, 5, 6, 10]) {
          const len = 2 ** n;
          const [bre, bim] = [simd.alignedArray(len + 32, 64).fill(CANARY), simd.alignedArray(len + 32, 64).fill(CANARY)];
          const [re, im] = [bre.subarray(offset, offset + len), bim.subarray(offset, offset + len)];
          const s = QState.wrap(re, im);
          if (impl !== "avx512" || offset === 16) s.pin(impl);
          else expectCode(() => s.pin(impl), "AETHER_ERR_MISALIGNED", /avx512 needs 64-byte aligned arrays/);
          const ran = s.impl;
          if (impl === "avx512" && offset === 8) expect(ran).toBe(len < 8 ? "scalar" : "avx2");
          fillRandom(re, rand);
          fillRandom(im, rand);
          s.normalize().scale(0.6, 0.8).applyGate1q(0, randomUnitary(rand)).applyGate1q(n - 1, randomUnitary(rand));
          if (n > 1) s.applyCnot(0, n - 1).applyCnot(n - 1, 0);
          s.norm2();
          s.innerProduct(s);
          s.probabilities();
          for (const b of [bre, bim]) {
            const bad = [...b.subarray(0, offset), ...b.subarray(offset + len)].filter((x) => x !== CANARY);
            if (bad.length) throw new Error(`${impl} wrote outside a ${len}-float state at offset ${offset}: ${bad.length} floats`);
          }
          expect(Math.abs(ref.norm2(re, im) - 1)).toBeLessThan(1e-5);
          s.destroy();
        }
      }
    });
  });
}

describe("misuse is refused with its error, before any vector load", () => {
  test("out-of-range qubit counts and qubit indices", () => {
    for (const q of [0, 31, 64, -1, 2.5]) expectCode(() => QState.create(q), "AETHER_ERR_OUT_OF_RANGE", /num_qubits \d+ is not in \[1, 30\]/);
    const s = QState.create(3);
    try {
      expectCode(() => s.applyGate1q(3, [1, 0, 0, 0, 0, 0, 1, 0]), "AETHER_ERR_OUT_OF_RANGE", /target qubit 3 is not in \[0, 3\)/);
      expectCode(() => s.applyGate1q(-1, [1, 0, 0, 0, 0, 0, 1, 0]), "AETHER_ERR_OUT_OF_RANGE");
      expectCode(() => s.applyCnot(3, 0), "AETHER_ERR_OUT_OF_RANGE", /control qubit 3/);
      expectCode(() => s.applyCnot(0, 7), "AETHER_ERR_OUT_OF_RANGE", /target qubit 7/);
      expectCode(() => s.applyCnot(1, 1), "AETHER_ERR_INVALID_ARGUMENT", /control and target are both qubit 1/);
    } finally {
      s.destroy();
    }
  });

  test("odd and out-of-range lengths", () => {
    for (const len of [3, 6, 12, 24, 1000]) {
      expectCode(() => QState.wrap(simd.alignedArray(len), simd.alignedArray(len)), "AETHER_ERR_NOT_POWER_OF_TWO", /is not a power of two/);
    }
    expectCode(() => QState.wrap(simd.alignedArray(1), simd.alignedArray(1)), "AETHER_ERR_OUT_OF_RANGE", /length 1 is not in \[2, 2\^30\]/);
  });

  test("mismatched lengths", () => {
    expectCode(() => QState.wrap(simd.alignedArray(8), simd.alignedArray(16)), "AETHER_ERR_LENGTH_MISMATCH", /re has 8 floats and im has 16/);
    const a = QState.create(3), b = QState.create(4);
    try {
      expectCode(() => a.innerProduct(b), "AETHER_ERR_LENGTH_MISMATCH", /3 and 4 qubits/);
      expectCode(() => a.probabilities(new Float32Array(7)), "AETHER_ERR_LENGTH_MISMATCH", /out has 7 floats but the 3-qubit state has 8/);
      expectCode(() => a.probabilities(new Float32Array(16)), "AETHER_ERR_LENGTH_MISMATCH");
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test("overlapping arrays", () => {
    const big = simd.alignedArray(24);
    expectCode(() => QState.wrap(big.subarray(0, 16), big.subarray(8, 24)), "AETHER_ERR_OVERLAP", /overlap/);
    const s = QState.create(4);
    try {
      expectCode(() => s.probabilities(s.re), "AETHER_ERR_OVERLAP", /overlaps the state/);
    } finally {
      s.destroy();
    }
  });

  test("zero and non-finite states and arguments leave the state untouched", () => {
    const s = QState.create(6);
    try {
      s.re.fill(0);
      expectCode(() => s.normalize(), "AETHER_ERR_ZERO_NORM", /every amplitude is zero/);
      for (const bad of [Number.NaN, Number.POSITIVE_INFINITY]) {
        fillRandom(s.re, rand);
        fillRandom(s.im, rand);
        s.im[37] = bad;
        const copy = Float32Array.from(s.re);
        for (const impl of IMPLS) expectCode(() => s.normalize({ impl }), "AETHER_ERR_NON_FINITE", /NaN or an infinity/);
        expect(s.re).toEqual(copy);
      }
      expectCode(() => s.scale(Number.NaN, 0), "AETHER_ERR_NON_FINITE");
      expectCode(() => s.applyGate1q(0, [1, 0, Number.POSITIVE_INFINITY, 0, 0, 0, 1, 0]), "AETHER_ERR_NON_FINITE", /matrix element 2/);
      expectCode(() => s.applyGate1q(0, [1, 0, 0, 0]), "AETHER_ERR_INVALID_ARGUMENT");
    } finally {
      s.destroy();
    }
  });

  test("a state of subnormal amplitudes normalizes to norm 1", () => {
    for (const impl of IMPLS) {
      const s = QState.create(8, { impl });
      for (let i = 0; i < s.length; i++) s.re[i] = (i % 7) * 1e-44;
      s.normalize();
      expect(Math.abs(ref.norm2(s.re, s.im) - 1)).toBeLessThan(1e-6);
      s.destroy();
    }
  });

  test("misaligned views (in a child: a missed check would fault on an aligned load)", () => {
    const r = runSnippet(`
      import { QState, simd } from "aether-memory";
      const out = {};
      const a = simd.alignedArray(64 + 16, 64), b = simd.alignedArray(64, 64);
      const tryWrap = (name, re, im) => {
        try { QState.wrap(re, im).destroy(); out[name] = "accepted"; } catch (e) { out[name] = e.code + ": " + e.message; }
      };
      tryWrap("re+4", a.subarray(1, 65), b);
      tryWrap("re+16", a.subarray(4, 68), b);
      tryWrap("im+8", b, a.subarray(2, 66));
      tryWrap("re+32", a.subarray(8, 72), b);
      const s = QState.create(6, { impl: "scalar" });
      for (const impl of simd.available()) s.pin(impl);
      out.pinned = s.impl;
      s.destroy();
      console.log(JSON.stringify(out));
    `);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out["re+4"]).toMatch(/^AETHER_ERR_MISALIGNED: aether_qstate_wrap: re \(0x[0-9a-f]+\) is not 32-byte aligned/);
    expect(out["re+16"]).toMatch(/^AETHER_ERR_MISALIGNED: .*re .* is not 32-byte aligned/);
    expect(out["im+8"]).toMatch(/^AETHER_ERR_MISALIGNED: .*im .* is not 32-byte aligned/);
    expect(out["re+32"]).toBe("accepted");
  });

  test("an implementation the CPU lacks is refused", () => {
    const s = QState.create(6);
    try {
      for (const impl of ["avx2", "avx512"] as SimdImpl[]) {
        if (!simd.supported(impl)) expectCode(() => s.pin(impl), "AETHER_ERR_UNSUPPORTED");
        else expect(s.pin(impl).impl).toBe(impl);
      }
    } finally {
      s.destroy();
    }
  });

  test("an unknown implementation name is refused, not silently taken as scalar", () => {
    const s = QState.create(6);
    try {
      s.pin("auto");
      const before = s.re.slice();
      expectCode(() => s.normalize({ impl: "bogus" as SimdImpl }), "AETHER_ERR_INVALID_ARGUMENT");
      expectCode(() => s.pin("toString" as SimdImpl), "AETHER_ERR_INVALID_ARGUMENT");
      expectCode(() => simd.supported("" as SimdImpl), "AETHER_ERR_INVALID_ARGUMENT");
      expect(s.pinned).toBe("auto");
      expect(s.re).toEqual(before);
    } finally {
      s.destroy();
    }
  });
});

describe("aether simd, aether info, aether check", () => {
  test("aether simd --json checks every kernel of every implementation", () => {
    const r = aether(["simd", "--qubits", "12", "--seed", "7", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.verdict).toBe("pass");
    expect(j.qubits).toBe(12);
    expect(j.seed).toBe(7);
    expect(j.results).toHaveLength(QKERNELS.length * IMPLS.length);
    for (const row of j.results) {
      expect(row.error).toBeLessThan(1e-5);
      expect(row.gbps).toBeGreaterThan(0);
    }
    expect(new Set(j.results.map((x: { impl: string }) => x.impl))).toEqual(new Set(IMPLS));
  });

  test("aether simd prints one row per kernel and implementation", () => {
    const r = aether(["simd", "--qubits", "8", "--impl", "scalar"]);
    expect(r.code).toBe(0);
    for (const k of QKERNELS) expect(r.stdout).toMatch(new RegExp(`^${k}\\s+scalar\\s+\\d\\.\\de[-+]\\d+`, "m"));
    expect(r.stdout).toMatch(/7\/7 kernel runs within 1e-5 of the float64 reference/);
  });

  test("bad options are usage errors (exit 2, one line)", () => {
    for (const args of [["--impl", "sse9"], ["--qubits", "40"], ["--qubits", "0"], ["--qubits", "x"]]) {
      const r = aether(["simd", ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
    }
  });

  test("aether info shows the chosen implementation", () => {
    const r = aether(["info", "--json"], { env: { AETHER_SIMD: "scalar" } });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).simd).toMatchObject({ impl: "scalar", reason: "AETHER_SIMD=scalar", available: IMPLS });
    const text = aether(["info"]);
    expect(text.stdout).toMatch(/^simd\s+(scalar|avx2|avx512) \(/m);
  });

  test("aether check includes the SIMD kernels", () => {
    const r = aether(["check", "--only", "simd", "--json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.results[0].id).toBe("simd");
    expect(j.results[0].verdict).toBe("pass");
    expect(j.results[0].data.misuseRefused).toBe(4);
  });
});
