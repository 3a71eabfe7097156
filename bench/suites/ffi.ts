// ffi: the per-call cost of the bindings themselves. C targets that do next to nothing, called from Bun through
// bun:ffi, against a pure-JavaScript function doing the same thing, and against the same call made from C
// through a function pointer (the native floor).
//   call/<case>/{ffi,js}   batches of 256 calls timed by tinybench: mean cost per call, batch-mean percentiles
//       nop      no arguments, no result
//       args     a pointer (a Uint8Array), an int32 and a double in, a double out
//       bigint   two u64 in as BigInt, one out as BigInt
//       struct   an 80-byte struct filled by C and decoded into a JS object (what every wrapper that returns a
//                struct does); JS: the same object built from a JS object
//   c/<case>               the same target called from C in a loop (one FFI call for the whole loop)
//   single/{nop,js,safe-pair,glibc-pair}  one call per timed sample: true per-call percentiles (they include the
//                timer's own cost, so they are upper bounds), for the cross-language latency target
import { benchCall, ffiTargets, type CallKind } from "../../cli/native/bench-calls.ts";
import { readBenchResult, BENCH_RESULT_BYTES } from "../../cli/native/bench.ts";
import { memory } from "../../cli/native/memory.ts";
import { glibcMalloc, inBun, inC, type BunCase } from "../../cli/lib/bench/measure.ts";
import type { Suite, SuiteContext } from "../../cli/lib/bench/types.ts";

const B = 256;
let sink: unknown;

const CASES: { name: string; kind: CallKind; label: string }[] = [
  { name: "nop", kind: "nop", label: "a no-op call" },
  { name: "args", kind: "args", label: "pointer + int32 + double in, double out" },
  { name: "bigint", kind: "u64", label: "two u64 in and one out, as BigInt" },
  { name: "struct", kind: "fill", label: "an 80-byte struct filled and decoded" },
];

export const ffiSuite: Suite = {
  name: "ffi",
  title: "FFI bindings",
  description:
    "The cost of one call through bun:ffi into libaether: a no-op, pointer/number arguments, BigInt arguments, a " +
    "struct filled by C and decoded in JavaScript; each against a pure-JavaScript function doing the same, and " +
    "against the same call made from C (the native floor). Single calls (one per timed sample) give the per-call " +
    "tail the cross-language latency target is about.",
  estimate: (quick) => (quick ? 2 : 30),
  steps: () => CASES.length + 2,
  run(ctx) {
    memory.init();
    const t = ffiTargets();
    const bytes = new Uint8Array(64);
    const fillBuf = new ArrayBuffer(BENCH_RESULT_BYTES);
    const fillView = new Uint8Array(fillBuf);
    const jsSource = { ops: 1, elapsedNs: 3, nsPerOp: 3, opsPerSec: 1e9 / 3, p50Ns: 1.5, p90Ns: 2.5, p99Ns: 3.5, p999Ns: 4.5, maxNs: 1, samples: 1 };
    const jsNop = (): void => {
      sink = undefined;
    };
    const jsArgs = (p: Uint8Array, i: number, x: number): number => (p.byteOffset & 0xff) + i + x;
    const jsU64 = (a: bigint, b: bigint): bigint => a ^ BigInt.asUintN(64, b * 0x9e3779b97f4a7c15n);
    const jsStruct = () => ({ ...jsSource, ops: jsSource.ops + 1 });
    const ffiCalls: Record<string, BunCase> = {
      nop: { batch: B, fn: () => { for (let i = 0; i < B; i++) t.nop(); } },
      args: { batch: B, fn: () => { let s = 0; for (let i = 0; i < B; i++) s += t.args(bytes, i, 0.5); sink = s; } },
      bigint: { batch: B, fn: () => { let a = 1n; for (let i = 0; i < B; i++) a = t.u64(a, 7n) as bigint; sink = a; } },
      struct: { batch: B, fn: () => { for (let i = 0; i < B; i++) { t.fill(fillView); sink = readBenchResult(fillBuf); } } },
    };
    const jsCalls: Record<string, BunCase> = {
      nop: { batch: B, fn: () => { for (let i = 0; i < B; i++) jsNop(); } },
      args: { batch: B, fn: () => { let s = 0; for (let i = 0; i < B; i++) s += jsArgs(bytes, i, 0.5); sink = s; } },
      bigint: { batch: B, fn: () => { let a = 1n; for (let i = 0; i < B; i++) a = jsU64(a, 7n); sink = a; } },
      struct: { batch: B, fn: () => { for (let i = 0; i < B; i++) sink = jsStruct(); } },
    };
    const timeMs = ctx.quick ? 15 : 200;
    const creps = ctx.quick ? 100_000 : 5_000_000;

    for (const c of CASES.filter((x) => ctx.wants(`call/${x.name}/`) || ctx.wants(`c/${x.name}`))) {
      ctx.step(c.name);
      const m = inBun(ctx.reps, { ffi: ffiCalls[c.name]!, js: jsCalls[c.name]! }, timeMs);
      const floor = inC(ctx.reps, { c: () => benchCall(c.kind, creps) });
      ctx.add({
        name: `call/${c.name}/ffi`,
        label: `${c.label}: from Bun through bun:ffi (batches of ${B})`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: m.ffi.samples,
        percentiles: m.ffi.percentiles,
        baseline: `call/${c.name}/js`,
        measured: "bun",
        params: { batch: B },
      });
      ctx.add({
        name: `call/${c.name}/js`,
        label: `${c.label}: the same in pure JavaScript (batches of ${B})`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: m.js.samples,
        percentiles: m.js.percentiles,
        measured: "bun",
        params: { batch: B },
      });
      // No percentiles: a call from C costs less than one tick of this clock, so they would show the clock.
      ctx.add({
        name: `c/${c.name}`,
        label: `${c.label}: from C through a function pointer (mean of an untimed loop)`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: floor.c.samples,
        measured: "c",
        params: { calls: creps },
      });
    }

    if (ctx.wants("single/")) single(ctx);
    void sink;
  },
};

/** One call per timed sample: the per-call tail, as the cross-language latency target means it. */
function single(ctx: SuiteContext): void {
  ctx.step("single calls");
  const t = ffiTargets();
  const jsNop = (): void => {
    sink = undefined;
  };
  const libc = glibcMalloc();
  try {
    const { malloc, free } = libc.symbols;
    const single = inBun(
      ctx.reps,
      {
        nop: { batch: 1, fn: () => t.nop() },
        js: { batch: 1, fn: () => jsNop() },
        "safe-pair": { batch: 1, fn: () => memory.safeFree(memory.safeMalloc(64)) },
        "glibc-pair": { batch: 1, fn: () => free(malloc(64)) },
      },
      // enough single calls for a p99.9 (tinybench keeps and sorts every one, so no more than that)
      ctx.quick ? 1 : 20,
      { iterations: ctx.quick ? 20_000 : 200_000 },
    );
    // No ratios here: the timer's own cost is in every sample, so a ratio would mostly compare timers (the
    // batched call/* figures give the ratios).
    const add = (name: keyof typeof single, label: string) =>
      ctx.add({
        name: `single/${name}`,
        label: `${label}, timed alone (the timer's cost included: an upper bound)`,
        kind: "latency",
        unit: "ns",
        better: "lower",
        samples: single[name].samples,
        percentiles: single[name].percentiles,
        measured: "bun",
        params: { batch: 1 },
      });
    add("nop", "one no-op call from Bun through bun:ffi");
    add("js", "one pure-JavaScript no-op call");
    add("safe-pair", "one aether_safe_malloc(64)+aether_safe_free pair from Bun");
    add("glibc-pair", "one glibc malloc(64)+free pair through bun:ffi");
  } finally {
    libc.close();
  }
}
