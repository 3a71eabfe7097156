// The SIMD kernels' self-check: every kernel of every implementation this CPU runs agrees with the float64
// reference on random states, misuse is refused with its error, and the vector code is timed against the
// scalar reference in the same run.
import { runSimd } from "../commands/simd.ts";
import { AetherError } from "../native/ffi.ts";
import { QState, simd } from "../native/qstate.ts";
import { TOLERANCE } from "../lib/qref.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const QUBITS = 16;

/** Each misuse must throw its own error code. */
function misuse(problems: string[]): number {
  const cases: [string, string, () => unknown][] = [
    ["normalize a zero state", "AETHER_ERR_ZERO_NORM", () => {
      const s = QState.create(4);
      try {
        s.re.fill(0);
        s.normalize();
      } finally {
        s.destroy();
      }
    }],
    ["wrap a misaligned view", "AETHER_ERR_MISALIGNED", () => {
      const a = simd.alignedArray(17, 64), b = simd.alignedArray(16, 64);
      QState.wrap(a.subarray(1), b);
    }],
    ["wrap an odd length", "AETHER_ERR_NOT_POWER_OF_TWO", () => QState.wrap(simd.alignedArray(12), simd.alignedArray(12))],
    ["gate on qubit n", "AETHER_ERR_OUT_OF_RANGE", () => {
      const s = QState.create(3);
      try {
        s.applyGate1q(3, [1, 0, 0, 0, 0, 0, 1, 0]);
      } finally {
        s.destroy();
      }
    }],
  ];
  let refused = 0;
  for (const [what, code, fn] of cases) {
    try {
      fn();
      problems.push(`${what} was accepted`);
    } catch (e) {
      if (e instanceof AetherError && e.code === code) refused++;
      else problems.push(`${what}: expected ${code}, got ${(e as Error).message}`);
    }
  }
  return refused;
}

export const simdCheck: CheckDef = {
  component: "SIMD kernels",
  id: "simd",
  run(): CheckResult {
    const problems: string[] = [];
    const impls = simd.available();
    const rows = runSimd(QUBITS, impls, 0x5eed, { seconds: 0.01 });
    for (const r of rows.filter((r) => !r.ok)) problems.push(`${r.kernel}/${r.impl}: relative error ${r.error} > ${TOLERANCE}`);
    const refused = misuse(problems);
    const chosen = simd.impl();
    const worst = Math.max(...rows.map((r) => r.error));
    const gate = rows.find((r) => r.kernel === "apply_gate_1q" && r.impl === chosen);
    const speed = gate && chosen !== "scalar" ? `; gate on 2^${QUBITS}: ${gate.gbps.toFixed(0)} GB/s, ${gate.speedup!.toFixed(1)}x scalar` : "";
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${rows.length / impls.length} kernels x ${impls.join("/")} within ${TOLERANCE.toExponential(0)} (worst ${worst.toExponential(0)}), ${refused}/4 misuses refused; ${chosen} chosen${speed}`,
      problems,
      data: { chosen, reason: simd.reason(), impls, worstError: worst, misuseRefused: refused, rows },
    };
  },
};
