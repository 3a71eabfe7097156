// The safe allocator's self-check: correct use is silent and leak-free, every error kind is caught with the
// specification's wording, and the pair cost is measured against glibc in the same run.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Pointer } from "bun:ffi";
import { benchAlloc } from "../native/bench.ts";
import { ERROR_KINDS, memory, type ErrorKind } from "../native/memory.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const at = (p: Pointer, delta: number) => ((p as unknown as number) + delta) as unknown as Pointer;

/** Allocate, fill, verify, reallocate and free a few thousand blocks; return what went wrong. */
function correctUse(problems: string[]): number {
  let seed = 12345;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) % n);
  const blocks: { p: Pointer; size: number; fill: number }[] = [];
  let ops = 0;
  for (let i = 0; i < 3000; i++) {
    const size = i % 500 === 0 ? 1 << 20 : 1 + rand(4096);
    const p = memory.safeMalloc(size);
    if (!p) {
      problems.push(`safe_malloc(${size}) returned NULL`);
      return ops;
    }
    if ((p as unknown as number) % 16 !== 0) problems.push(`safe_malloc(${size}) returned ${p}, not 16-aligned`);
    const fill = i & 0xff;
    memory.view(p, size).fill(fill);
    blocks.push({ p, size, fill });
    ops++;
    if (blocks.length > 200 || rand(3) === 0) {
      const b = blocks.splice(rand(blocks.length), 1)[0]!;
      const v = memory.view(b.p, b.size);
      if (v[0] !== b.fill || v[b.size - 1] !== b.fill) problems.push(`block ${b.p} lost its contents`);
      if (rand(2) === 0) {
        const grown = b.size * 2 + 1;
        const q = memory.safeRealloc(b.p, grown);
        if (!q) problems.push(`safe_realloc to ${grown} returned NULL`);
        else {
          const w = memory.view(q, b.size);
          if (w[0] !== b.fill || w[b.size - 1] !== b.fill) problems.push("safe_realloc did not preserve data");
          memory.safeFree(q);
        }
      } else memory.safeFree(b.p);
      ops++;
    }
  }
  const z = memory.safeCalloc(100, 7);
  if (!z || memory.view(z, 700).some((x) => x !== 0)) problems.push("safe_calloc memory is not zeroed");
  memory.safeFree(z);
  const a = memory.alignedAlloc(4096, 100);
  if (!a || (a as unknown as number) % 4096 !== 0) problems.push("aligned_alloc(4096) is not 4096-aligned");
  memory.safeFree(a);
  if (memory.safeMalloc(0) !== null) problems.push("safe_malloc(0) did not return NULL");
  for (const b of blocks) memory.safeFree(b.p);
  return ops;
}

/** Trigger one error of each kind; the log must carry the exact message for each. */
function triggerEach(): Record<ErrorKind, RegExp> {
  const hex = "0x[0-9a-f]+";
  // double free
  const d = memory.safeMalloc(32)!;
  memory.safeFree(d);
  memory.safeFree(d);
  // invalid free: an interior pointer of a live block, and memory the allocator never handed out
  const live = memory.safeMalloc(64)!;
  memory.safeFree(at(live, 8));
  memory.safeFree(live);
  // overflow by one byte, underflow by one byte
  const o = memory.safeMalloc(24)!;
  memory.view(o, 25)[24] = 0x41;
  memory.safeFree(o);
  const u = memory.safeMalloc(24)!;
  memory.view(at(u, -1), 1)[0] = 0x41;
  memory.safeFree(u);
  // realloc of a freed pointer
  memory.safeRealloc(d, 64);
  // write after free, seen when the block leaves the quarantine
  const quarantine = memory.getOption("quarantine_bytes");
  const w = memory.safeMalloc(48)!;
  memory.safeFree(w);
  memory.view(w, 1)[0] = 0x41;
  memory.setOption("quarantine_bytes", 0);
  memory.safeFree(memory.safeMalloc(16));
  memory.setOption("quarantine_bytes", quarantine);
  return {
    "double-free": new RegExp(`^AETHER MEMORY ERROR: Double free detected at ${hex}$`, "m"),
    "invalid-free": new RegExp(`^AETHER MEMORY ERROR: Invalid free of ${hex} \\(bad magic: 0x[0-9a-f]{8}\\)$`, "m"),
    "buffer-underflow": new RegExp(`^AETHER MEMORY ERROR: Buffer underflow detected at ${hex}$`, "m"),
    "buffer-overflow": new RegExp(`^AETHER MEMORY ERROR: Buffer overflow detected at ${hex}$`, "m"),
    "invalid-realloc": new RegExp(`^AETHER MEMORY ERROR: Invalid realloc of ${hex}$`, "m"),
    "use-after-free": new RegExp(`^AETHER MEMORY ERROR: Use after free detected at ${hex}$`, "m"),
  };
}

export const allocCheck: CheckDef = {
  component: "safe allocator",
  id: "alloc",
  run(): CheckResult {
    const problems: string[] = [];
    memory.init();
    const leaksBefore = memory.liveBlocks(0).total;
    const usageBefore = memory.usage();
    const seq0 = memory.lastErrorSeq();
    const ops = correctUse(problems);
    const spurious = memory.errors(seq0);
    if (spurious.length) problems.push(`${spurious.length} error(s) reported on correct use, first: ${spurious[0]!.kind}`);
    const leaked = memory.liveBlocks(0).total - leaksBefore;
    if (leaked !== 0) problems.push(`${leaked} block(s) still live after freeing everything`);
    if (memory.usage() !== usageBefore) problems.push(`usage is ${memory.usage()} bytes, expected ${usageBefore}`);

    const dir = mkdtempSync(join(tmpdir(), "aether-check-"));
    const log = join(dir, "errors.log");
    const seq1 = memory.lastErrorSeq();
    let caught = 0;
    try {
      memory.setOption("log_file", log);
      const expected = triggerEach();
      memory.setOption("log_file", "");
      const text = readFileSync(log, "utf8");
      const events = memory.errors(seq1);
      for (const kind of ERROR_KINDS) {
        const seen = events.some((e) => e.kind === kind) && expected[kind].test(text);
        if (seen) caught++;
        else problems.push(`${kind} was not reported with the specification's message`);
      }
    } finally {
      memory.setOption("log_file", "");
      rmSync(dir, { recursive: true, force: true });
    }

    // Alternate subject and baseline and keep the median ratio: one slow moment of a shared machine cannot
    // decide the figure.
    const pairs: { safe: number; libc: number }[] = [];
    for (let i = 0; i < 5; i++) pairs.push({ safe: benchAlloc("safe", 64, 100_000).nsPerOp, libc: benchAlloc("libc", 64, 100_000).nsPerOp });
    pairs.sort((a, b) => a.safe / a.libc - b.safe / b.libc);
    const mid = pairs[2]!;
    const safe = { nsPerOp: mid.safe };
    const libc = { nsPerOp: mid.libc };
    const ratio = mid.safe / mid.libc;
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${caught}/${ERROR_KINDS.length} error kinds caught, ${ops} clean ops silent, 0 leaks; 64 B pair ${safe.nsPerOp.toFixed(1)} ns (${ratio.toFixed(1)}x glibc)`,
      problems,
      data: { errorKindsCaught: caught, cleanOps: ops, pairNs: safe.nsPerOp, glibcPairNs: libc.nsPerOp, ratio },
    };
  },
};
