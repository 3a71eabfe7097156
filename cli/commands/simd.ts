import { Command, Option } from "clipanion";
import { AetherCommand, parseCount, UsageError } from "../lib/command.ts";
import { color, formatBytes, formatNs, printJson, table, verdictText } from "../lib/output.ts";
import { checkKernel, defaultArgs, kernelBytes, rng, TOLERANCE, fillRandom, type KernelCheck } from "../lib/qref.ts";
import { isSimdImpl, QKERNELS, QState, simd, type SimdImpl } from "../native/qstate.ts";

export const SIMD_MAX_QUBITS = 26;

export interface SimdRow extends KernelCheck {
  nsPerCall: number; // median call
  gbps: number; // kernelBytes / median call
  reps: number;
  speedup?: number; // vs the scalar reference, when it ran too
  skipped?: string; // why the kernel could not run at this size
}

/** Check and time every kernel with each implementation on random states of `qubits` qubits. */
export function runSimd(qubits: number, impls: SimdImpl[], seed: number, opts: { seconds?: number } = {}): SimdRow[] {
  const budgetNs = (opts.seconds ?? 0.08) * 1e9;
  const rand = rng(seed);
  const rows: SimdRow[] = [];
  const s = QState.create(qubits), t = QState.create(qubits);
  try {
    for (const impl of impls) {
      for (const kernel of QKERNELS) {
        if (kernel === "apply_cnot" && qubits < 2) {
          rows.push({ kernel, impl, ran: s.pin(impl).impl, error: 0, ok: true, skipped: "CNOT needs 2 qubits", nsPerCall: 0, gbps: 0, reps: 0 });
          s.pin("auto");
          continue;
        }
        const c = checkKernel(kernel, impl, s, t, rand);
        // Timing on a fresh normalized state, so repeated in-place kernels stay in range.
        fillRandom(s.re, rand);
        fillRandom(s.im, rand);
        s.normalize();
        const { target, control } = defaultArgs(kernel, qubits);
        const args = { impl, other: t, target, control };
        const once = s.bench(kernel, 1, args).p50Ns || 1;
        const reps = Math.max(3, Math.min(5000, Math.round(budgetNs / once)));
        const r = s.bench(kernel, reps, args);
        const ns = r.p50Ns || r.nsPerOp;
        rows.push({ ...c, nsPerCall: ns, gbps: kernelBytes(kernel, s.length) / ns, reps });
      }
    }
  } finally {
    s.destroy();
    t.destroy();
  }
  for (const r of rows) {
    const base = rows.find((b) => b.kernel === r.kernel && b.impl === "scalar");
    if (base && !r.skipped) r.speedup = base.nsPerCall / r.nsPerCall;
  }
  return rows;
}

export function parseImpls(value: string | undefined): SimdImpl[] {
  if (value === undefined || value === "all") return simd.available();
  const names = value.split(",").map((v) => v.trim());
  for (const n of names) {
    if (!isSimdImpl(n)) throw new UsageError(`--impl expects scalar, avx2, avx512 or all (or a comma list), got '${n}'`);
  }
  return [...new Set(names)] as SimdImpl[];
}

export class SimdCommand extends AetherCommand {
  static override paths = [["simd"]];
  static override usage = Command.Usage({
    description: "check every SIMD state-vector kernel against a float64 reference and measure it",
    details: `
      Runs each kernel (norm2, normalize, inner_product, scale, apply_gate_1q, apply_cnot, probabilities) once
      on fresh random states with each implementation (scalar reference, AVX2+FMA, AVX-512F: all that this CPU
      supports unless --impl names some), compares the result with a float64 reference computed from the same
      float32 inputs, and times it in C (median of repeated calls). Prints the relative error and GB/s per
      kernel and implementation, and the speed-up over the scalar reference. Exits 1 if any error exceeds 1e-5,
      or if --impl names an implementation this CPU cannot run.

      The gate is applied to the top qubit and CNOT has control 0 and target n-1; \`bun test test/simd.test.ts\`
      covers every other position. The default implementation (see \`aether info\`) is chosen at start from
      CPUID/XGETBV and can be forced with AETHER_SIMD=scalar|avx2|avx512.
    `,
    examples: [
      ["Every implementation at 2^20 amplitudes", "aether simd"],
      ["AVX2 only, 24 qubits, as JSON", "aether simd --qubits 24 --impl avx2 --json"],
      ["Replay a run", "aether simd --seed 1234"],
    ],
  });

  qubits = Option.String("--qubits", "20", { description: `qubits per state, 1..${SIMD_MAX_QUBITS} (default 20)` });
  impl = Option.String("--impl", { description: "scalar, avx2, avx512, a comma list, or all (default: all supported)" });
  seed = Option.String("--seed", { description: "seed of the random states (default: random, printed)" });
  json = Option.Boolean("--json", false, { description: "print JSON" });

  async execute(): Promise<number> {
    const qubits = parseCount("--qubits", this.qubits, 1, SIMD_MAX_QUBITS);
    const impls = parseImpls(this.impl);
    const seed = this.seed !== undefined ? parseCount("--seed", this.seed, 0, 0xffffffff) : (Math.random() * 2 ** 32) >>> 0;
    const missing = impls.filter((i) => !simd.supported(i));
    if (missing.length) {
      this.err(`aether simd: this CPU or OS cannot run ${missing.join(", ")} (supported: ${simd.available().join(", ")})`);
      return 1;
    }
    const rows = runSimd(qubits, impls, seed);
    const failed = rows.filter((r) => !r.ok);
    const ran = rows.filter((r) => !r.skipped);
    const info = simd.info();
    const n = 2 ** qubits;
    if (this.json) {
      printJson({
        verdict: failed.length ? "fail" : "pass",
        qubits,
        amplitudes: n,
        stateBytes: 8 * n,
        seed,
        tolerance: TOLERANCE,
        default: info.impl,
        reason: info.reason,
        available: info.available,
        results: rows,
      });
      return failed.length ? 1 : 0;
    }
    this.out(
      `${qubits} qubits: ${n} amplitudes, ${formatBytes(8 * n)} per state; default ${color.bold(info.impl)} (${info.reason}); seed ${seed}`,
    );
    const head = ["kernel", "impl", "rel. error", "per call", "GB/s", "x scalar"];
    const body = rows.map((r) =>
      r.skipped ? [r.kernel, r.impl, color.dim("-"), color.dim("-"), color.dim("-"), color.dim(r.skipped)] : [
      r.kernel,
      r.ran === r.impl ? r.impl : `${r.impl}->${r.ran}`,
      r.ok ? r.error.toExponential(1) : color.red(r.error.toExponential(1)),
      formatNs(r.nsPerCall),
      r.gbps.toFixed(1),
      r.speedup !== undefined ? `${r.speedup.toFixed(1)}x` : "-",
    ]);
    this.out(table([head.map((h) => color.dim(h)), ...body], [2, 3, 4, 5]));
    const verdict = failed.length ? "fail" : "pass";
    this.out(
      `${verdictText(verdict)}  ${ran.length - failed.length}/${ran.length} kernel runs within ${TOLERANCE.toExponential(0)} of the float64 reference` +
        (failed.length ? `; failed: ${failed.map((f) => `${f.kernel}/${f.impl}`).join(", ")}` : ""),
    );
    return failed.length ? 1 : 0;
  }
}
