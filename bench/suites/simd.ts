// simd: the SIMD state-vector kernels.
//   kernel/q12/<kernel>/<impl>    one call on 2^12 amplitudes (32 KiB: in cache), timed in C per call, against the
//                                 scalar reference (-O2 -fno-tree-vectorize) in the same run
//   safety/q{12,16}/<kernel>/{checked,direct}  the public, validated entry point (aether_qstate_normalize...)
//                                 against the kernel called directly, in the same timed loop: the cost of the checks
//   bandwidth/q24/<kernel>        GB/s at 2^24 amplitudes (128 MiB per state, in memory) with the default
//                                 implementation, against its memory-bound limit from the machine's streaming
//                                 bandwidth measured in the same repetition (ratio = fraction of the limit)
//   stream/q24/{read,update}      that streaming bandwidth
//   bun/q12/normalize             one normalize call from Bun (tinybench), against the same call timed in C
// Every value of a latency is a repetition's interquartile mean call (the cycle counter's own cost subtracted).
import { fillRandom, kernelBytes, rng } from "../../cli/lib/qref.ts";
import { benchQStateApi } from "../../cli/native/bench-calls.ts";
import { QState, simd, type QKernel, type SimdImpl } from "../../cli/native/qstate.ts";
import { alternate, inBun, inC, joinReps, typical, type Measured } from "../../cli/lib/bench/measure.ts";
import type { Suite, SuiteContext } from "../../cli/lib/bench/types.ts";

const KERNELS_FULL: { name: string; kernel: QKernel; target?: number }[] = [
  { name: "norm2", kernel: "norm2" },
  { name: "normalize", kernel: "normalize" },
  { name: "inner_product", kernel: "inner_product" },
  { name: "scale", kernel: "scale" },
  { name: "gate", kernel: "apply_gate_1q", target: 0 },
  { name: "cnot", kernel: "apply_cnot", target: 11 },
  { name: "probabilities", kernel: "probabilities" },
];
const KERNELS_QUICK = KERNELS_FULL.filter((k) => k.name === "normalize" || k.name === "gate");
const SAFETY = ["norm2", "normalize", "gate"];

function fresh(q: number, seed: number): QState {
  const s = QState.create(q);
  const r = rng(seed);
  fillRandom(s.re, r);
  fillRandom(s.im, r);
  s.normalize();
  return s;
}

export const simdSuite: Suite = {
  name: "simd",
  title: "SIMD state-vector kernels",
  description:
    "Each kernel per call on an in-cache state (2^12 amplitudes) with every implementation this CPU runs, against " +
    "the scalar reference; the validated public entry points against the kernels called directly (the cost of " +
    "the safety checks); and, in a full run, GB/s on a 2^24-amplitude state against the memory-bound limit from " +
    "the streaming bandwidth measured in the same repetitions.",
  estimate: (quick) => (quick ? 1.5 : 40),
  steps: (quick) => (quick ? KERNELS_QUICK.length : KERNELS_FULL.length) + 2 + (quick ? 0 : 1),
  run(ctx) {
    const impls = simd.available();
    const best = simd.impl();
    for (const i of ["avx2", "avx512"] as SimdImpl[])
      if (!impls.includes(i)) ctx.skip(`kernel/q12/*/${i}`, `this CPU or OS cannot run ${i}`);
    const kernels = (ctx.quick && !ctx.filtered ? KERNELS_QUICK : KERNELS_FULL).filter((k) => ctx.wants(`kernel/q12/${k.name}/`));
    const q = 12;
    const s = fresh(q, 1), o = fresh(q, 2);
    const calls = ctx.quick ? 300 : 3000;
    try {
      for (const k of kernels) {
        ctx.step(`${k.name} 2^${q}`);
        const args = { other: o, target: k.target ?? 0, control: 0 };
        const m = inC(
          ctx.reps,
          Object.fromEntries(impls.map((impl) => [impl, () => s.bench(k.kernel, calls, { ...args, impl })])) as Record<SimdImpl, () => ReturnType<QState["bench"]>>,
          typical,
        );
        for (const impl of impls) {
          ctx.add({
            name: `kernel/q${q}/${k.name}/${impl}`,
            label: `${k.kernel} on 2^${q} amplitudes, ${impl}${impl === "scalar" ? " (the reference)" : ""}, typical call in C (interquartile mean)`,
            kind: "latency",
            unit: "ns",
            better: "lower",
            samples: m[impl].samples,
            percentiles: m[impl].percentiles,
            baseline: impl === "scalar" ? undefined : `kernel/q${q}/${k.name}/scalar`,
            measured: "c",
            params: { qubits: q, impl, calls, bytes: kernelBytes(k.kernel, 2 ** q) },
          });
        }
      }

      if (ctx.wants(`safety/q${q}/`)) {
        ctx.step(`safety checks 2^${q}`);
        safety(ctx, s, o, q, calls, best);
      }
      if (ctx.wants("safety/q16/")) {
        ctx.step("safety checks 2^16");
        const big = fresh(16, 4);
        try {
          safety(ctx, big, big, 16, ctx.quick ? 200 : 1000, best);
        } finally {
          big.destroy();
        }
      }

      if (ctx.wants("bun/")) fromBun(ctx, s, q, calls, best);
    } finally {
      s.destroy();
      o.destroy();
    }

    if (ctx.quick && !ctx.filtered) {
      ctx.note("bandwidth at 2^24 amplitudes is measured in a full run only");
      return;
    }
    if (ctx.wants("bandwidth/") || ctx.wants("stream/")) {
      ctx.step("bandwidth 2^24");
      bandwidth(ctx.reps, ctx.add, best);
    }
  },
};

function fromBun(ctx: SuiteContext, s: QState, q: number, calls: number, best: SimdImpl): void {
  ctx.step("from Bun");
  // One repetition of each at a time, alternated, so both see the same phases of a busy machine.
  const bun: Measured[] = [], c: Measured[] = [];
  for (let r = 0; r < ctx.reps; r++) {
    const pair = [
      () => bun.push(inBun(1, { normalize: { batch: 1, fn: () => void s.normalize() } }, ctx.quick ? 20 : 200, { iterations: ctx.quick ? 2_000 : 20_000 }).normalize),
      () => c.push(inC(1, { c: () => s.bench("normalize", calls) }, typical).c),
    ];
    for (const f of r % 2 ? pair.reverse() : pair) f();
  }
  const fromBun = { normalize: joinReps(bun) };
  const inCnorm = { c: joinReps(c) };
  ctx.add({
    name: `bun/q${q}/normalize`,
    label: `QState.normalize() on 2^${q} amplitudes from Bun (FFI and checks included), one call per sample`,
    kind: "latency",
    unit: "ns",
    better: "lower",
    samples: fromBun.normalize.samples,
    percentiles: fromBun.normalize.percentiles,
    baseline: `bun/q${q}/normalize-c`,
    measured: "bun",
    params: { qubits: q, impl: best },
  });
  ctx.add({
    name: `bun/q${q}/normalize-c`,
    label: `normalize on 2^${q} amplitudes timed in C (${best})`,
    kind: "latency",
    unit: "ns",
    better: "lower",
    samples: inCnorm.c.samples,
    percentiles: inCnorm.c.percentiles,
    measured: "c",
    params: { qubits: q, impl: best },
  });
}

/** The validated public entry points against the kernels called directly, alternated, on a state of q qubits. */
function safety(ctx: SuiteContext, s: QState, o: QState, q: number, calls: number, best: SimdImpl): void {
  const sreps = Math.max(ctx.reps, ctx.quick ? 7 : 11);
  for (const name of SAFETY) {
    const k = KERNELS_FULL.find((x) => x.name === name)!;
    const args = { other: o, target: k.target ?? 0, control: 0 };
    const m = inC(
      sreps,
      {
        checked: () => benchQStateApi(s, k.kernel, calls, args),
        direct: () => s.bench(k.kernel, calls, args),
      },
      typical,
    );
    for (const v of ["checked", "direct"] as const) {
      ctx.add({
        name: `safety/q${q}/${name}/${v}`,
        label:
          v === "checked"
            ? `${k.kernel} on 2^${q} amplitudes through the public entry point, every precondition checked (${best})`
            : `${k.kernel} on 2^${q} amplitudes, the kernel called directly (${best})`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: m[v].samples,
        percentiles: m[v].percentiles,
        baseline: v === "checked" ? `safety/q${q}/${name}/direct` : undefined,
        measured: "c",
        params: { qubits: q, impl: best, calls },
      });
    }
  }
}

/** GB/s of normalize and a gate on 2^24 amplitudes against their memory-bound limits, repetition by repetition. */
function bandwidth(reps: number, add: SuiteContext["add"], impl: SimdImpl): void {
  const q = 24, n = 2 ** q, B = 8 * n; // bytes of one state (re + im)
  const s = fresh(q, 3);
  try {
    const sreps = 5;
    const bw = alternate(reps, {
      read: () => B / simd.benchStream("read", B, sreps).p50Ns,
      update: () => (2 * B) / simd.benchStream("update", B, sreps).p50Ns,
      normalize: () => kernelBytes("normalize", n) / s.bench("normalize", sreps).p50Ns,
      gate: () => kernelBytes("apply_gate_1q", n) / s.bench("apply_gate_1q", sreps, { target: 0 }).p50Ns,
    });
    // Memory-bound time of each kernel from that repetition's bandwidths (bytes per ns = GB/s):
    // normalize = a read pass + an in-place rewrite; a gate = one in-place rewrite.
    const limit = {
      normalize: bw.read.map((r, i) => kernelBytes("normalize", n) / (B / r + (2 * B) / bw.update[i]!)),
      gate: bw.update.map((u) => kernelBytes("apply_gate_1q", n) / ((2 * B) / u)),
    };
    for (const k of ["normalize", "gate"] as const) {
      add({
        name: `bandwidth/q${q}/${k}`,
        label: `${k === "gate" ? "apply_gate_1q (t=0)" : k} on 2^${q} amplitudes (${B / 2 ** 20} MiB per state), ${impl}, GB/s`,
        kind: "throughput",
        unit: "GB/s",
        better: "higher",
        samples: bw[k],
        baseline: `bandwidth/q${q}/${k}-limit`,
        measured: "c",
        params: { qubits: q, impl },
      });
      add({
        name: `bandwidth/q${q}/${k}-limit`,
        label: `the memory-bound limit of ${k} at 2^${q} amplitudes, from the streaming bandwidth of the same repetition`,
        kind: "throughput",
        unit: "GB/s",
        better: "higher",
        samples: limit[k],
        measured: "c",
        params: { qubits: q },
      });
    }
    for (const k of ["read", "update"] as const) {
      add({
        name: `stream/q${q}/${k}`,
        label: `streaming ${k === "read" ? "read" : "in-place read+write"} over a state-shaped pair of arrays, ${impl} loads`,
        kind: "throughput",
        unit: "GB/s",
        better: "higher",
        samples: bw[k],
        measured: "c",
        params: { bytes: B },
      });
    }
  } finally {
    s.destroy();
  }
}
