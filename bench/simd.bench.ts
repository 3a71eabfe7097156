// simd.bench.ts: the SIMD state-vector kernels, per kernel and implementation, at 2^12 amplitudes (32 KiB per
// state: in L1/L2) and 2^24 (128 MiB: in memory), against three baselines measured in the same run:
//   - the machine's streaming bandwidth over the same footprint (a read pass, a copy, an in-place update), from
//     which each kernel's memory-bound limit is derived, so a kernel is reported as a fraction of it;
//   - the scalar reference (the same kernel body, one lane, -O2 -fno-tree-vectorize);
//   - numpy doing the same normalize (Debian's python3-numpy if installed; skipped with a message otherwise).
// Every figure is a median over ROUNDS rounds (default 7) with its range; within a round the implementations
// run in rotating order, so drift on a shared machine falls on all of them alike. Kernel times are the median of
// repeated calls timed in C (aether_bench_qstate: no FFI cost); one tinybench line shows the cost from Bun.
//
//   bun bench/simd.bench.ts                 # SIMD_BENCH_ROUNDS=15 for tighter ranges
import { Bench } from "tinybench";
import { kernelBytes, fillRandom, rng } from "../cli/lib/qref.ts";
import { QState, simd, type QKernel, type SimdImpl } from "../cli/native/qstate.ts";
import { cpuModel } from "../cli/native/system.ts";

const ROUNDS = Math.max(1, Number(process.env.SIMD_BENCH_ROUNDS ?? 7));
const SIZES = [12, 24];
const IMPLS = simd.available();

interface Config {
  label: string;
  kernel: QKernel;
  target?: (n: number) => number;
  control?: (n: number) => number;
}
const CONFIGS: Config[] = [
  { label: "norm2", kernel: "norm2" },
  { label: "normalize", kernel: "normalize" },
  { label: "inner_product", kernel: "inner_product" },
  { label: "scale", kernel: "scale" },
  { label: "gate t=0", kernel: "apply_gate_1q", target: () => 0 },
  { label: "gate t=n-1", kernel: "apply_gate_1q", target: (n) => n - 1 },
  { label: "cnot c=0 t=n-1", kernel: "apply_cnot", control: () => 0, target: (n) => n - 1 },
  { label: "cnot c=n-1 t=0", kernel: "apply_cnot", control: (n) => n - 1, target: () => 0 },
  { label: "probabilities", kernel: "probabilities" },
];

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const range = (xs: number[], digits = 1) => `[${Math.min(...xs).toFixed(digits)}-${Math.max(...xs).toFixed(digits)}]`;
const pad = (s: string, n: number) => s.padEnd(n);
const lpad = (s: string, n: number) => s.padStart(n);

/** Memory-bound time (ns) of a kernel on a state of B bytes, from bandwidths in bytes/ns:
 * read = B / t(read pass); update = 2B / t(in-place rewrite); copy = 2B / t(copy). */
function limitNs(c: Config, n: number, bw: { read: number; update: number; copy: number }): number {
  const B = 8 * n;
  switch (c.kernel) {
    case "norm2":
      return B / bw.read;
    case "inner_product":
      return (2 * B) / bw.read;
    case "normalize":
      return B / bw.read + (2 * B) / bw.update; // a read pass, then an in-place rewrite
    case "scale":
    case "apply_gate_1q":
      return (2 * B) / bw.update;
    case "apply_cnot": {
      // A cache line holds 16 floats: with the control bit among the low 4, every line is rewritten;
      // above, only the half of the lines whose control bit is set.
      const control = c.control!(Math.log2(n));
      return (control < 4 ? 2 * B : B) / bw.update;
    }
    case "probabilities":
      return B / 2 / bw.read + B / bw.copy; // re read; im read and probabilities written like a copy
  }
}

// ---- numpy: the same normalize (sum of squares, then one multiply per array, in place), single-threaded.
const NUMPY = `
import json, sys, time, numpy as np
n, reps = int(sys.argv[1]), int(sys.argv[2])
rng = np.random.default_rng(1)
re = rng.uniform(-1, 1, n).astype(np.float32); im = rng.uniform(-1, 1, n).astype(np.float32)
variants = {
  "dot": lambda: float(np.dot(re, re)) + float(np.dot(im, im)),
  "einsum": lambda: float(np.einsum("i,i->", re, re)) + float(np.einsum("i,i->", im, im)),
}
out = {"version": np.__version__}
for name, norm2 in variants.items():
  ts = []
  for _ in range(reps + 1):
    t0 = time.perf_counter_ns()
    k = np.float32(1.0 / np.sqrt(norm2()))
    np.multiply(re, k, out=re); np.multiply(im, k, out=im)
    ts.append(time.perf_counter_ns() - t0)
  ts = sorted(ts[1:]); out[name] = ts[len(ts) // 2]
print(json.dumps(out))
`;
function findPython(): string | undefined {
  for (const py of [process.env.SIMD_BENCH_PYTHON, "/usr/bin/python3", "python3"]) {
    if (!py) continue;
    const r = Bun.spawnSync({ cmd: [py, "-c", "import numpy"], stdout: "ignore", stderr: "ignore" });
    if (r.exitCode === 0) return py;
  }
  return undefined;
}
const PYTHON = findPython();
function numpyNormalize(n: number, reps: number): { ns: number; variant: string; version: string } | undefined {
  if (!PYTHON) return undefined;
  const env = { ...process.env, OPENBLAS_NUM_THREADS: "1", OMP_NUM_THREADS: "1", MKL_NUM_THREADS: "1" };
  const r = Bun.spawnSync({ cmd: [PYTHON, "-c", NUMPY, String(n), String(reps)], env, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) return undefined;
  const j = JSON.parse(r.stdout.toString());
  const variant = j.dot <= j.einsum ? "dot" : "einsum";
  return { ns: j[variant], variant, version: j.version };
}

// ---- the run
console.log(`simd.bench: ${cpuModel()}; default ${simd.impl()} (${simd.reason()}); ${ROUNDS} rounds; medians [min-max]`);
console.log("(one thread; the machine may be shared, so read the ranges, not only the medians)\n");
const rand = rng(2024);

for (const q of SIZES) {
  const n = 2 ** q;
  const B = 8 * n;
  const s = QState.create(q), t = QState.create(q);
  for (const st of [s, t]) {
    fillRandom(st.re, rand);
    fillRandom(st.im, rand);
    st.normalize();
  }
  const reps = q <= 12 ? 2000 : 9;
  const bw = { read: [] as number[], copy: [] as number[], update: [] as number[] };
  const ns = new Map<string, number[]>(); // `${label}/${impl}` -> per-round medians
  const np: number[] = [];
  let npInfo: { variant: string; version: string } | undefined;
  for (let round = 0; round < ROUNDS; round++) {
    bw.read.push(B / simd.benchStream("read", B, reps).p50Ns);
    bw.copy.push((2 * B) / simd.benchStream("copy", B, reps).p50Ns);
    bw.update.push((2 * B) / simd.benchStream("update", B, reps).p50Ns);
    for (const c of CONFIGS) {
      for (let k = 0; k < IMPLS.length; k++) {
        const impl = IMPLS[(k + round) % IMPLS.length]!;
        const r = s.bench(c.kernel, reps, { impl, other: t, target: c.target?.(q) ?? 0, control: c.control?.(q) ?? 0 });
        const key = `${c.label}/${impl}`;
        ns.set(key, [...(ns.get(key) ?? []), r.p50Ns]);
      }
    }
    const p = numpyNormalize(n, q <= 12 ? 2000 : 7);
    if (p) {
      np.push(p.ns);
      npInfo = p;
    }
  }
  const bwm = { read: median(bw.read), copy: median(bw.copy), update: median(bw.update) };
  // A kernel's fraction of its memory-bound limit, round by round: the limit from the bandwidth measured in the
  // same round, so a slow round (another tenant on the machine) lowers both sides alike.
  const fractions = (c: Config, xs: number[]) =>
    xs.map((x, r) => limitNs(c, n, { read: bw.read[r]!, copy: bw.copy[r]!, update: bw.update[r]! }) / x);
  console.log(`== 2^${q} amplitudes: ${(B / 1024).toLocaleString()} KiB per state ==`);
  console.log(
    `stream (a state-shaped pair of arrays, ${simd.impl()} loads): read ${bwm.read.toFixed(1)} GB/s ${range(bw.read)}, ` +
      `copy ${bwm.copy.toFixed(1)} GB/s ${range(bw.copy)}, in-place update ${bwm.update.toFixed(1)} GB/s ${range(bw.update)}`,
  );
  console.log(
    [pad("kernel", 16), pad("impl", 7), lpad("per call", 11), lpad("GB/s", 7), pad(" range", 14), lpad("of limit", 9), pad(" range", 11), lpad("x scalar", 9), pad(" range", 14)].join(" "),
  );
  for (const c of CONFIGS) {
    const scalar = ns.get(`${c.label}/scalar`)!;
    for (const impl of IMPLS) {
      const xs = ns.get(`${c.label}/${impl}`)!;
      const m = median(xs);
      const bytes = kernelBytes(c.kernel, n);
      const gbps = xs.map((x) => bytes / x);
      const ratios = xs.map((x, i) => scalar[i]! / x);
      const fracs = fractions(c, xs);
      console.log(
        [
          pad(c.label, 16),
          pad(impl, 7),
          lpad(m >= 1e6 ? `${(m / 1e6).toFixed(2)} ms` : `${(m / 1e3).toFixed(2)} us`, 11),
          lpad((bytes / m).toFixed(1), 7),
          pad(` ${range(gbps)}`, 14),
          lpad(`${(median(fracs) * 100).toFixed(0)}%`, 9),
          pad(` ${range(fracs.map((f) => f * 100), 0)}`, 11),
          lpad(`${median(ratios).toFixed(2)}x`, 9),
          pad(` ${range(ratios, 2)}`, 14),
        ].join(" "),
      );
    }
  }
  const ours = ns.get(`normalize/${simd.impl()}`)!;
  if (np.length && npInfo) {
    const ratios = np.map((x, i) => x / ours[i]!);
    console.log(
      `numpy ${npInfo.version} (${PYTHON}, ${npInfo.variant} + multiply, 1 thread): normalize ${(median(np) / 1e3).toFixed(2)} us ${range(np.map((x) => x / 1e3), 2)}; ` +
        `aether ${simd.impl()} is ${median(ratios).toFixed(2)}x faster ${range(ratios, 2)}`,
    );
  } else {
    console.log("numpy: skipped (no python3 with numpy; on Debian: apt-get install -y python3-numpy)");
  }

  // targets (reported, not asserted)
  const best = simd.impl();
  const fracOf = (label: string) => median(fractions(CONFIGS.find((c) => c.label === label)!, ns.get(`${label}/${best}`)!));
  if (q >= 24) {
    for (const label of ["normalize", "gate t=0", "gate t=n-1"]) {
      const f = fracOf(label);
      console.log(`target: ${label} (${best}) at >= 85% of its memory-bound limit: ${(f * 100).toFixed(0)}% ${f >= 0.85 ? "MET" : "NOT MET"}`);
    }
  } else if (IMPLS.includes("avx2")) {
    const below = CONFIGS.map((c) => {
      const ratios = ns.get(`${c.label}/avx2`)!.map((x, i) => ns.get(`${c.label}/scalar`)![i]! / x);
      return [c.label, median(ratios)] as const;
    });
    const minR = Math.min(...below.map(([, r]) => r));
    const miss = below.filter(([, r]) => r < 3).map(([l, r]) => `${l} ${r.toFixed(2)}x`);
    console.log(`target: in cache, AVX2 >= 3x scalar for every kernel: lowest ${minR.toFixed(2)}x ${miss.length ? `NOT MET (${miss.join(", ")})` : "MET"}`);
  }
  if (np.length) {
    const r = median(np.map((x, i) => x / ours[i]!));
    console.log(`target: normalize >= 1.5x numpy: ${r.toFixed(2)}x ${r >= 1.5 ? "MET" : "NOT MET"}`);
  }
  console.log();
  s.destroy();
  t.destroy();
}

// From Bun, per call (FFI included), with tinybench: normalize on 2^12 amplitudes.
{
  const states = (IMPLS as SimdImpl[]).map((impl) => {
    const s = QState.create(12, { impl });
    fillRandom(s.re, rand);
    fillRandom(s.im, rand);
    return s;
  });
  const bench = new Bench({ time: 200 });
  for (const s of states) bench.add(`normalize 2^12 ${s.impl}`, () => void s.normalize());
  await bench.run();
  for (const task of bench.tasks) {
    const r = task.result as unknown as { latency?: { p50: number } };
    if (r.latency) console.log(`from Bun (tinybench, FFI included): ${task.name}: ${(r.latency.p50 * 1e3).toFixed(2)} us per call (p50)`);
  }
  for (const s of states) s.destroy();
}
