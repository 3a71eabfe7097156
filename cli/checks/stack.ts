// Stack safety's self-check: libaether is built with -fstack-usage -fcallgraph-info=su (build/stack/) and gated
// (no exported function may need more than STACK_GATE_BYTES, recurse without a guard, or use alloca/VLA of
// unknown size), then the runtime guard is driven past the thread's real stack and must stop it gracefully.
//
// Why 16 KiB: it is AETHER_STACK_SAFETY_MARGIN, the room aether_stack_probe keeps in reserve. A caller whose
// probe passed can then make any libaether call (the probe's own failure report included) without leaving the
// margin, so the guard's promise holds for the library's own code. Calls into libc are charged 4 KiB each
// (STACK_GATE_EXTERNAL): the deepest glibc function libaether calls, pthread_create, uses 3.5 KiB and
// vsnprintf 2 KiB (bench/libc_stack.c measures them). The deepest exported function is at about half the limit.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyzeStack, checkGate, displayName, findStackFiles, gatedFunctions, loadCallGraph } from "../lib/callgraph.ts";
import { formatBytes } from "../lib/output.ts";
import { buildStackVariant, exportsOf } from "../commands/stack.ts";
import { memory } from "../native/memory.ts";
import { STACK_OVERFLOW_MESSAGE, STACK_TEST_FRAME, stack } from "../native/stack.ts";
import type { CheckDef, CheckResult } from "./types.ts";

export const STACK_GATE_BYTES = 16384;
export const STACK_GATE_EXTERNAL = 4096;

export const stackCheck: CheckDef = {
  component: "stack safety",
  id: "stack",
  run(): CheckResult {
    const problems: string[] = [];
    // Static: the gate over libaether's exported functions.
    const built = buildStackVariant();
    const files = findStackFiles([built.dir]);
    const analysis = analyzeStack(loadCallGraph(files.su, files.ci), { externalStack: STACK_GATE_EXTERNAL });
    const gated = gatedFunctions(analysis, exportsOf(built.library));
    if (gated.length === 0) problems.push("no exported function found in the stack build");
    for (const v of checkGate(analysis, gated, STACK_GATE_BYTES)) problems.push(`${displayName(analysis.graph, v.function)}: ${v.reason}: ${v.detail}`);
    let deepest = { id: "", bytes: 0 };
    for (const id of gated) {
      const b = analysis.depths.get(id)!.bytes;
      if (b !== null && b > deepest.bytes) deepest = { id, bytes: b };
    }
    const guarded = analysis.cycles.filter((c) => c.guarded).length;

    // Runtime: a recursion deeper than the thread's stack, stopped by the probe; its report captured in a file.
    memory.init();
    const info = stack.info();
    const depth = Math.ceil(info.size / STACK_TEST_FRAME) + 64;
    const dir = mkdtempSync(join(tmpdir(), "aether-stack-"));
    const log = join(dir, "stack.log");
    let reached = 0;
    try {
      memory.setOption("log_file", log);
      const r = stack.recurseTest(depth);
      memory.setOption("log_file", "");
      reached = r.reached;
      if (r.error === null) problems.push(`a recursion of ${depth} x 4 KiB on a ${info.size}-byte stack was not stopped`);
      else if (r.error.code !== "AETHER_ERR_STACK_OVERFLOW") problems.push(`the recursion failed with ${r.error.code}, not AETHER_ERR_STACK_OVERFLOW`);
      if (!readFileSync(log, "utf8").split("\n").includes(STACK_OVERFLOW_MESSAGE)) problems.push(`the probe did not report "${STACK_OVERFLOW_MESSAGE}"`);
      const ok = stack.recurseTest(16);
      if (ok.error !== null || ok.reached !== 16) problems.push(`a 16-level recursion failed: ${ok.error?.message ?? `reached ${ok.reached}`}`);
    } finally {
      memory.setOption("log_file", "");
      rmSync(dir, { recursive: true, force: true });
    }
    const deepName = deepest.id ? displayName(analysis.graph, deepest.id) : "-";
    return {
      verdict: problems.length ? "fail" : "pass",
      figure:
        `${gated.length} exported functions within ${formatBytes(STACK_GATE_BYTES)} (deepest ${deepName} ${formatBytes(deepest.bytes)}), ` +
        `${guarded} recursion guarded; probe stopped ${depth} x 4 KiB at level ${reached} of a ${formatBytes(info.size)} stack`,
      problems,
      data: { gateBytes: STACK_GATE_BYTES, externalStack: STACK_GATE_EXTERNAL, exported: gated.length, deepest: deepName, deepestBytes: deepest.bytes, recursionDepth: depth, reached, stackBytes: info.size },
    };
  },
};
