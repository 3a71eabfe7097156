// `aether bench` as CI pipelines use it: the result schema of a quick run of every suite (shape, not speed), the
// gate (pass, fail, a missing figure, malformed targets files: exit 2), the comparison with a previous result,
// the github-action-benchmark format against the action's schema, the progress display, and the latency
// histogram and FFI targets in C that the suites measure with. Speeds are never asserted.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SUITES } from "../bench/suites/index.ts";
import { compare, parseBaseline, BaselineError, regressionPct } from "../cli/lib/bench/compare.ts";
import { githubActionBenchmark } from "../cli/lib/bench/formats.ts";
import { Progress } from "../cli/lib/bench/progress.ts";
import { finalize } from "../cli/lib/bench/runner.ts";
import { evaluate, parseTargets, TargetsError } from "../cli/lib/bench/targets.ts";
import { SCHEMA, type BenchDocument, type Figure, type FigureInput, type Suite } from "../cli/lib/bench/types.ts";
import { benchCall, benchQStateApi, ffiTargets } from "../cli/native/bench-calls.ts";
import { benchAlloc } from "../cli/native/bench.ts";
import { AetherError, native } from "../cli/native/ffi.ts";
import { Histogram, QUANTILES } from "../cli/native/histogram.ts";
import { QState } from "../cli/native/qstate.ts";
import { aether, type Ran } from "./helpers/run.ts";

// Benchmarks run in child processes; on a busy shared machine some take more than the 5 s default.
setDefaultTimeout(60_000);

const SUITE_NAMES = SUITES.map((s) => s.name);
const tmp = mkdtempSync(join(tmpdir(), "aether-bench-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function json<T = unknown>(r: Ran): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout.slice(0, 300)} / stderr: ${r.stderr.slice(0, 300)}`);
  }
}

function writeTargets(name: string, body: unknown): string {
  const p = join(tmp, name);
  writeFileSync(p, typeof body === "string" ? body : JSON.stringify(body));
  return p;
}

/** Every property a figure of the common schema must have, checked one by one. */
function expectFigure(f: Figure, suite: string, all: Map<string, Figure>): void {
  const where = `figure ${f.name}`;
  expect(f.name.startsWith(`${suite}/`), where).toBe(true);
  expect(f.suite, where).toBe(suite);
  expect(typeof f.label === "string" && f.label.length > 0, where).toBe(true);
  expect(["latency", "throughput", "time"], where).toContain(f.kind);
  expect(typeof f.unit === "string" && f.unit.length > 0, where).toBe(true);
  expect(["lower", "higher"], where).toContain(f.better);
  expect(["c", "bun", "process"], where).toContain(f.measured);
  for (const k of ["value", "min", "max"] as const) expect(Number.isFinite(f[k]), `${where}.${k}`).toBe(true);
  expect(f.min, where).toBeLessThanOrEqual(f.value);
  expect(f.value, where).toBeLessThanOrEqual(f.max);
  expect(f.samples.length, where).toBe(f.reps);
  expect(f.reps, where).toBeGreaterThanOrEqual(3);
  if (f.baseline) {
    const b = all.get(f.baseline.name);
    expect(b, `${where}: baseline ${f.baseline.name} is in the result`).toBeDefined();
    expect(b!.unit, where).toBe(f.unit);
    expect(f.baseline.value, where).toBe(b!.value);
    expect(f.baseline.ratio > 0 && Number.isFinite(f.baseline.ratio), where).toBe(true);
    expect(f.baseline.ratioMin, where).toBeLessThanOrEqual(f.baseline.ratio);
    expect(f.baseline.ratio, where).toBeLessThanOrEqual(f.baseline.ratioMax);
  }
  if (f.kind === "latency") expect(f.unit, where).toBe("ns");
  if (f.percentiles) {
    const names = QUANTILES.map(([n]) => n);
    expect(Object.keys(f.percentiles).sort(), where).toEqual([...names].sort());
    for (const n of names) expect(f.percentiles[n] >= 0 && Number.isFinite(f.percentiles[n]), `${where} ${n}`).toBe(true);
    // medians over repetitions of each quantile: still ordered
    for (let i = 1; i < names.length; i++) expect(f.percentiles[names[i]!], `${where} ${names[i]}`).toBeGreaterThanOrEqual(f.percentiles[names[i - 1]!]);
  }
}

describe("a quick run of every suite", () => {
  let r: Ran;
  let doc: BenchDocument;
  beforeAll(() => {
    r = aether(["bench", "--quick", "--format", "json"], { timeoutMs: 110_000 });
    doc = json<BenchDocument>(r);
  }, 120_000);

  test("exits 0 and, on a pipe, prints nothing but the result", () => {
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
  });

  test("records the environment", () => {
    expect(doc.schema).toBe(SCHEMA);
    expect(doc.quick).toBe(true);
    const e = doc.environment;
    expect(e.cpu.model.length).toBeGreaterThan(0);
    expect(Array.isArray(e.cpu.flags)).toBe(true);
    expect(e.cpu.cores).toBeGreaterThanOrEqual(1);
    expect(e.kernel.release.length).toBeGreaterThan(0);
    expect(e.compiler.length).toBeGreaterThan(0);
    expect(["release", "asan", "ubsan", "tsan", "msan", "custom"]).toContain(e.library.variant);
    expect(e.bun.version).toBe(Bun.version);
    expect(e.git.commit === null || /^[0-9a-f]{40}$/.test(e.git.commit)).toBe(true);
    expect(e.nsPerTick).toBeGreaterThan(0);
  });

  test("runs every suite, each with figures in the common schema", () => {
    expect(doc.suites.map((s) => s.name)).toEqual(SUITE_NAMES);
    const all = new Map(doc.suites.flatMap((s) => s.figures.map((f) => [f.name, f] as const)));
    for (const s of doc.suites) {
      expect(s.figures.length + s.skipped.length, `suite ${s.name}`).toBeGreaterThan(0);
      expect(s.reps).toBe(3);
      for (const f of s.figures) expectFigure(f, s.name, all);
      for (const k of s.skipped) expect(k.name.startsWith(`${s.name}/`) && k.reason.length > 0).toBe(true);
    }
    expect(new Set(all.keys()).size).toBe(doc.suites.reduce((a, s) => a + s.figures.length, 0));
  });

  test("measures each subject against a baseline of the same run, and latencies with percentiles", () => {
    const figs = doc.suites.flatMap((s) => s.figures);
    const has = (name: string) => figs.find((f) => f.name === name);
    // the allocator against glibc, in C and from Bun
    expect(has("alloc/pair/16B/safe")?.baseline?.name).toBe("alloc/pair/16B/glibc");
    expect(has("alloc/pair/16B/safe")?.percentiles).toBeDefined();
    expect(has("alloc/pair/16B/safe")?.measured).toBe("c");
    expect(has("alloc/bun/64B/safe")?.baseline?.name).toBe("alloc/bun/64B/glibc");
    expect(has("alloc/bun/64B/safe")?.measured).toBe("bun");
    // the bindings against pure JavaScript, and the native floor
    for (const c of ["nop", "args", "bigint", "struct"]) {
      expect(has(`ffi/call/${c}/ffi`)?.baseline?.name).toBe(`ffi/call/${c}/js`);
      expect(has(`ffi/c/${c}`)?.measured).toBe("c");
    }
    expect(has("ffi/single/nop")?.percentiles).toBeDefined();
    // SIMD kernels against the scalar reference; the safety checks against the kernels called directly
    expect(has("simd/kernel/q12/normalize/avx2") ?? doc.suites.find((s) => s.name === "simd")!.skipped.find((k) => k.name.includes("avx2"))).toBeDefined();
    expect(has("simd/safety/q16/normalize/checked")?.baseline?.name).toBe("simd/safety/q16/normalize/direct");
    // device pools against a raw backend allocation per request, in C and from Bun
    expect(has("devpool/pair/256B/pool")?.baseline?.name).toBe("devpool/pair/256B/raw");
    expect(has("devpool/bun/256B/pool")?.baseline?.name).toBe("devpool/bun/256B/raw");
    expect(has("devpool/single/256B/pool")?.percentiles).toBeDefined();
    // real programs against plain glibc
    const run = doc.suites.find((s) => s.name === "run")!;
    if (run.figures.length) expect(run.figures.some((f) => f.baseline?.name.endsWith("/glibc"))).toBe(true);
  });
});

// ------------------------------------------------------------------------------------------ gates ---

function figureInput(name: string, samples: number[], extra: Partial<FigureInput> = {}): FigureInput {
  return { name, label: name, kind: "latency", unit: "ns", better: "lower", samples, measured: "c", ...extra };
}

/** A result of one synthetic suite "alloc" (figure names as the real suite's), without measuring anything. */
function syntheticDoc(inputs: FigureInput[], opts: { skipped?: { name: string; reason: string }[]; quick?: boolean; model?: string } = {}): BenchDocument {
  const figures = finalize("alloc", inputs);
  return {
    schema: SCHEMA,
    tool: { name: "aether", version: "test" },
    started: new Date(0).toISOString(),
    seconds: 1,
    quick: opts.quick ?? false,
    environment: {
      cpu: { model: opts.model ?? "Test CPU", flags: [], features: {}, cores: 2, online: 2 },
      memory: { totalBytes: 1 },
      kernel: { release: "6", version: "v", machine: "x86_64" },
      os: "test",
      compiler: "cc",
      library: { path: "/lib.so", variant: "release", version: "0", flags: "" },
      simd: "scalar",
      bun: { version: Bun.version, revision: "" },
      git: { commit: null, dirty: null, branch: null },
      loadAverage: [0, 0, 0],
      nsPerTick: 1,
    },
    suites: [{ name: "alloc", title: "t", seconds: 1, reps: 3, figures, skipped: opts.skipped ?? [], notes: [] }],
  };
}

const pct = (p50: number, p99: number) => ({ p50, p75: p50, p90: p50, p95: p99, p99, "p99.5": p99, "p99.9": p99, max: p99 * 2 });
const SAMPLE = syntheticDoc(
  [
    figureInput("pair/16B/glibc", [10, 11, 12], { percentiles: pct(10, 20) }),
    figureInput("pair/16B/safe", [25, 22, 30], { baseline: "pair/16B/glibc", percentiles: pct(25, 60) }),
    figureInput("threads/64B/1/safe", [100, 100, 100], { kind: "throughput", unit: "pairs/s", better: "higher" }),
    figureInput("threads/64B/2/safe", [150, 170, 160], { kind: "throughput", unit: "pairs/s", better: "higher", baseline: "threads/64B/1/safe" }),
  ],
  { skipped: [{ name: "alloc/pair/*/avx9", reason: "no such unit here" }] },
);

const target = (over: Record<string, unknown>) => ({ id: "t1", figure: "alloc/pair/16B/safe", comparison: "absolute", threshold: 100, ...over });
const targetsFile = (...targets: Record<string, unknown>[]) => parseTargets(JSON.stringify({ version: 1, targets }), "t.json", SUITE_NAMES);

describe("gate: evaluation", () => {
  test("ratios are medians of per-repetition ratios", () => {
    const f = SAMPLE.suites[0]!.figures.find((x) => x.name === "alloc/pair/16B/safe")!;
    expect(f.value).toBe(25);
    expect(f.baseline!.ratio).toBeCloseTo(2.5, 10); // 25/10, 22/11 = 2, 30/12 = 2.5 -> median 2.5
    expect(f.baseline!.ratioMin).toBeCloseTo(2, 10);
  });

  test("absolute targets pass and fail on the figure's median or a percentile, in its direction", () => {
    const g = evaluate(
      SAMPLE,
      targetsFile(
        target({ id: "median-ok", threshold: 25 }),
        target({ id: "median-fail", threshold: 24.9 }),
        target({ id: "p99-ok", stat: "p99", threshold: 60, unit: "ns" }),
        target({ id: "p99-fail", stat: "p99", threshold: 59 }),
        target({ id: "rate-ok", figure: "alloc/threads/64B/2/safe", threshold: 160 }),
        target({ id: "rate-fail", figure: "alloc/threads/64B/2/safe", threshold: 161 }),
        target({ id: "explicit-op", threshold: 30, op: ">=" }),
      ),
      false,
    );
    const v = Object.fromEntries(g.rows.map((r) => [r.id, r.verdict]));
    expect(v).toEqual({ "median-ok": "pass", "median-fail": "fail", "p99-ok": "pass", "p99-fail": "fail", "rate-ok": "pass", "rate-fail": "fail", "explicit-op": "fail" });
    expect(g.rows.find((r) => r.id === "rate-ok")!.op).toBe(">=");
    expect(g.rows.find((r) => r.id === "p99-ok")!.measured).toBe(60);
    expect(g.failed).toBe(4);
    expect(g.passed).toBe(3);
  });

  test("ratio targets compare the ratio to the baseline", () => {
    const g = evaluate(
      SAMPLE,
      targetsFile(
        target({ id: "r-ok", comparison: "ratio", threshold: 2.5 }),
        target({ id: "r-fail", comparison: "ratio", threshold: 2.0 }),
        target({ id: "scale-ok", figure: "alloc/threads/64B/2/safe", comparison: "ratio", threshold: 1.6 }),
        target({ id: "scale-fail", figure: "alloc/threads/64B/2/safe", comparison: "ratio", threshold: 1.61 }),
      ),
      false,
    );
    expect(g.rows.map((r) => [r.id, r.verdict, r.unit])).toEqual([
      ["r-ok", "pass", "x"],
      ["r-fail", "fail", "x"],
      ["scale-ok", "pass", "x"],
      ["scale-fail", "fail", "x"],
    ]);
  });

  test("quick evaluates only quick targets; a suite that did not run and a figure the suite could not measure are skipped", () => {
    const file = targetsFile(
      target({ id: "quick", quick: true }),
      target({ id: "slow" }),
      target({ id: "other-suite", figure: "ffi/call/nop/ffi", quick: true }),
      target({ id: "unmeasurable", figure: "alloc/pair/16B/avx9", quick: true }),
    );
    const g = evaluate(SAMPLE, file, true);
    expect(g.rows.map((r) => [r.id, r.verdict])).toEqual([
      ["quick", "pass"],
      ["other-suite", "skip"],
      ["unmeasurable", "skip"],
    ]);
    expect(g.rows[1]!.reason).toContain("suite ffi was not run");
    expect(g.rows[2]!.reason).toBe("no such unit here");
    expect(g.skipped).toBe(2);
  });

  test("a missing figure, a percentile of a figure without any, a ratio without a baseline, a wrong unit: errors", () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [target({ figure: "alloc/pair/999B/safe" }), /target "t1" names figure alloc\/pair\/999B\/safe, which suite alloc did not produce .*alloc\/pair\/16B\/safe/],
      [target({ figure: "alloc/threads/64B/2/safe", stat: "p99" }), /has no percentiles/],
      [target({ figure: "alloc/pair/16B/glibc", comparison: "ratio" }), /has no baseline/],
      [target({ unit: "ms" }), /is in ms, but alloc\/pair\/16B\/safe is in ns/],
    ];
    for (const [t, msg] of cases) expect(() => evaluate(SAMPLE, targetsFile(t), false)).toThrow(msg);
  });
});

describe("gate: targets files", () => {
  const bad: [string, unknown, RegExp][] = [
    ["not JSON", "{ version: 1", /not valid JSON/],
    ["an array", [], /expected an object/],
    ["wrong version", { version: 2, targets: [target({})] }, /"version" must be 1/],
    ["no targets", { version: 1, targets: [] }, /"targets" must be a non-empty array/],
    ["an unknown top-level key", { version: 1, targets: [target({})], extra: 1 }, /unknown key "extra"/],
    ["a misspelt key", { version: 1, targets: [{ ...target({}), treshold: 5 }] }, /target 1 \("t1"\): unknown key "treshold"/],
    ["no id", { version: 1, targets: [{ figure: "alloc/x", comparison: "ratio", threshold: 1 }] }, /target 1: "id" must be/],
    ["a duplicate id", { version: 1, targets: [target({}), target({})] }, /target 2 \("t1"\): the id is used twice/],
    ["an unknown suite", { version: 1, targets: [target({ figure: "nosuch/x" })] }, /figure "nosuch\/x" is not in a known suite/],
    ["a bad comparison", { version: 1, targets: [target({ comparison: "fast" })] }, /"comparison" must be "absolute" or "ratio"/],
    ["a negative threshold", { version: 1, targets: [target({ threshold: -1 })] }, /"threshold" must be a positive number/],
    ["a string threshold", { version: 1, targets: [target({ threshold: "100" })] }, /"threshold" must be a positive number/],
    ["an unknown statistic", { version: 1, targets: [target({ stat: "p42" })] }, /"stat" must be one of value, p50/],
    ["a ratio with a statistic", { version: 1, targets: [target({ comparison: "ratio", stat: "p99" })] }, /drop "stat"/],
    ["a bad op", { version: 1, targets: [target({ op: "<" })] }, /"op" must be "<=" or ">="/],
    ["quick not a boolean", { version: 1, targets: [target({ quick: "yes" })] }, /"quick" must be true or false/],
  ];
  test.each(bad)("%s is refused with a message naming the problem", (_name, body, msg) => {
    const text = typeof body === "string" ? body : JSON.stringify(body);
    expect(() => parseTargets(text, "t.json", SUITE_NAMES)).toThrow(TargetsError);
    expect(() => parseTargets(text, "t.json", SUITE_NAMES)).toThrow(msg);
  });

  test("the checked-in bench/targets.json is valid, names figures of known suites, and has quick targets", () => {
    const file = parseTargets(readFileSync(join(import.meta.dir, "..", "bench", "targets.json"), "utf8"), "bench/targets.json", SUITE_NAMES);
    expect(file.targets.filter((t) => t.quick).length).toBeGreaterThanOrEqual(3);
    expect(file.targets.every((t) => t.source && t.source.length > 10)).toBe(true);
  });

  test.each(bad.filter(([n]) => ["not JSON", "a misspelt key", "an unknown suite"].includes(n)))(
    "the CLI: %s is exit 2, one line, before anything is measured",
    (name, body) => {
      const p = writeTargets(`bad-${name.replace(/\W+/g, "-")}.json`, body);
      const t0 = performance.now();
      const r = aether(["bench", "--gate", p]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toStartWith(`aether bench: ${p}: `);
      expect(r.stderr).not.toContain("    at ");
      expect(performance.now() - t0).toBeLessThan(30_000); // refused up front, not after a full run
    },
  );

  test("the CLI: a gate that no target of the run applies to is exit 2 before anything runs", () => {
    const other = writeTargets("other-suite.json", {
      version: 1,
      targets: [{ id: "x", figure: "ffi/single/nop", comparison: "absolute", stat: "p50", threshold: 1e9, unit: "ns", quick: true }],
    });
    const r = aether(["bench", "alloc", "--quick", "--gate", other]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toContain("no quick target applies to the suites run (alloc)");
    expect(r.stdout).toBe("");
  });

  test("the CLI: an output path that is a directory is exit 2 before anything runs", () => {
    const dirHtml = join(tmp, "dir.html");
    mkdirSync(dirHtml, { recursive: true });
    for (const [flag, path] of [["--json", tmp], ["--report", dirHtml]]) {
      const r = aether(["bench", "ffi", "--quick", flag!, path!]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${flag} ${path} is a directory`);
    }
  });

  test("the CLI: a targets file that does not exist is exit 2", () => {
    const r = aether(["bench", "--gate", join(tmp, "nope.json")]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("nope.json: no such file");
  });
});

describe("gate: the CLI end to end", () => {
  const pass = () =>
    writeTargets("pass.json", {
      version: 1,
      targets: [
        { id: "lat", figure: "alloc/pair/16B/safe", comparison: "absolute", stat: "p99", threshold: 1e9, unit: "ns", quick: true },
        { id: "vs-glibc", figure: "alloc/pair/16B/safe", comparison: "ratio", threshold: 1e6, quick: true },
        { id: "not-quick", figure: "alloc/pair/4096B/safe", comparison: "ratio", threshold: 1e6 },
      ],
    });

  test("all targets met: exit 0 and a table of target, measured, threshold, verdict", () => {
    const r = aether(["bench", "alloc", "--quick", "--gate", pass()]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/target\s+figure\s+measured\s+threshold\s+verdict/);
    expect(r.stdout).toMatch(/lat\s+alloc\/pair\/16B\/safe p99\s+[\d.]+ (ns|µs|ms)\s+<= 1\.00 s\s+pass/);
    expect(r.stdout).toMatch(/vs-glibc\s+alloc\/pair\/16B\/safe ratio\s+[\d.]+x\s+<= 1000000x\s+pass/);
    expect(r.stdout).not.toContain("not-quick");
    expect(r.stdout).toContain("all 2 target(s) met");
  }, 60_000);

  test("--gate=FILE works too, and the gate is in --format json", () => {
    const r = aether(["bench", "alloc", "--quick", `--gate=${pass()}`, "--format", "json"]);
    expect(r.code).toBe(0);
    const d = json<BenchDocument>(r);
    expect(d.gate!.rows.map((x) => [x.id, x.verdict])).toEqual([
      ["lat", "pass"],
      ["vs-glibc", "pass"],
    ]);
  }, 60_000);

  test("a target not met: exit 1, the failing row says FAIL", () => {
    const p = writeTargets("fail.json", {
      version: 1,
      targets: [
        { id: "impossible", figure: "alloc/pair/16B/safe", comparison: "absolute", stat: "p50", threshold: 0.0001, quick: true },
        { id: "fine", figure: "alloc/pair/16B/safe", comparison: "absolute", threshold: 1e9, quick: true },
      ],
    });
    const r = aether(["bench", "alloc", "--quick", "--gate", p]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/impossible\s+alloc\/pair\/16B\/safe p50\s+\S+ \S+\s+<= 0\.00 ns\s+FAIL/);
    expect(r.stdout).toMatch(/fine\s+.*pass/);
    expect(r.stdout).toContain("1 of 2 target(s) not met");
  }, 60_000);

  test("a figure the run did not produce: exit 2, one line naming it", () => {
    const p = writeTargets("missing.json", {
      version: 1,
      targets: [{ id: "typo", figure: "alloc/pair/16B/safee", comparison: "absolute", threshold: 1, quick: true }],
    });
    const r = aether(["bench", "--quick", "--gate", p]);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(`target "typo" names figure alloc/pair/16B/safee, which suite alloc did not produce`);
  }, 60_000);

  test("--quick --gate without suites measures only what the quick targets name, with their baselines", () => {
    const r = aether(["bench", "--quick", "--gate", pass(), "--format", "json"]);
    expect(r.code).toBe(0);
    const d = json<BenchDocument>(r);
    expect(d.suites.map((s) => s.name)).toEqual(["alloc"]);
    expect(d.suites[0]!.figures.map((f) => f.name).sort()).toEqual(["alloc/pair/16B/glibc", "alloc/pair/16B/safe", "alloc/pair/16B/unchecked"]);
  }, 60_000);
});

// ------------------------------------------------------------------------------ baseline comparison ---

describe("--baseline: comparison with a previous result", () => {
  test("regression in percent, in each figure's own direction", () => {
    expect(regressionPct(2, 2.5, "lower")).toBeCloseTo(25, 10);
    expect(regressionPct(2, 1.5, "lower")).toBeCloseTo(-25, 10);
    expect(regressionPct(2, 1.6, "higher")).toBeCloseTo(25, 10);
    expect(regressionPct(2, 4, "higher")).toBeCloseTo(-50, 10);
  });

  test("ratios that got worse beyond the limit fail; values are compared for information; added and removed are listed", () => {
    const now = syntheticDoc([
      figureInput("pair/16B/glibc", [10, 10, 10]),
      figureInput("pair/16B/safe", [30, 30, 30], { baseline: "pair/16B/glibc" }), // ratio 3.0
      figureInput("threads/64B/1/safe", [100, 100, 100], { kind: "throughput", unit: "pairs/s", better: "higher" }),
      figureInput("threads/64B/2/safe", [190, 190, 190], { kind: "throughput", unit: "pairs/s", better: "higher", baseline: "threads/64B/1/safe" }), // 1.9
      figureInput("pair/256B/glibc", [10, 10, 10]),
    ]);
    const before = syntheticDoc(
      [
        figureInput("pair/16B/glibc", [20, 20, 20]),
        figureInput("pair/16B/safe", [50, 50, 50], { baseline: "pair/16B/glibc" }), // ratio 2.5: now 20% worse
        figureInput("threads/64B/1/safe", [100, 100, 100], { kind: "throughput", unit: "pairs/s", better: "higher" }),
        figureInput("threads/64B/2/safe", [150, 150, 150], { kind: "throughput", unit: "pairs/s", better: "higher", baseline: "threads/64B/1/safe" }), // 1.5: now better
        figureInput("pair/4096B/glibc", [10, 10, 10]),
      ],
      { model: "Other CPU", quick: true },
    );
    const c = compare(now, before, "prev.json", 10);
    const row = (n: string) => c.rows.find((r) => r.figure === n)!;
    expect(row("alloc/pair/16B/safe")).toMatchObject({ compared: "ratio", previous: 2.5, current: 3, verdict: "fail" });
    expect(row("alloc/pair/16B/safe").regressionPct).toBeCloseTo(20, 10);
    expect(row("alloc/threads/64B/2/safe")).toMatchObject({ compared: "ratio", verdict: "pass" });
    expect(row("alloc/threads/64B/2/safe").regressionPct).toBeLessThan(0);
    expect(row("alloc/pair/16B/glibc")).toMatchObject({ compared: "value", verdict: "info", regressionPct: -50 });
    expect(c.failed).toBe(1);
    expect(c.added).toEqual(["alloc/pair/256B/glibc"]);
    expect(c.removed).toEqual(["alloc/pair/4096B/glibc"]);
    expect(c.warnings.join(" ")).toContain("another CPU (Other CPU)");
    expect(c.warnings.join(" ")).toContain("quick run");
    expect(compare(now, before, "prev.json", 25).failed).toBe(0);
  });

  test("a file that is not an aether bench result is refused", () => {
    expect(() => parseBaseline("[1]", "x.json")).toThrow(BaselineError);
    expect(() => parseBaseline(JSON.stringify({ schema: "other/1", suites: [] }), "x.json")).toThrow(/not an `aether bench --json` result/);
    expect(() => parseBaseline(JSON.stringify({ schema: SCHEMA, suites: [{ name: "a", figures: [{ name: "a/x" }] }] }), "x.json")).toThrow(/lacks a name, a numeric value/);
    expect(() => parseBaseline("{", "x.json")).toThrow(/not valid JSON/);
  });

  test("the CLI: --json FILE then --baseline FILE; a doctored previous result that was far better fails with exit 1", () => {
    const prev = join(tmp, "prev.json");
    const first = aether(["bench", "alloc", "--quick", "--json", prev]);
    expect(first.code).toBe(0);
    expect(first.stdout).toContain("alloc: Safe allocator"); // --json FILE keeps the human output on stdout
    const saved = JSON.parse(readFileSync(prev, "utf8")) as BenchDocument;
    expect(saved.schema).toBe(SCHEMA);

    const same = aether(["bench", "alloc", "--quick", "--baseline", prev, "--max-regression", "100000"]);
    expect(same.code).toBe(0);
    expect(same.stdout).toMatch(/no ratio regressed by more than 100000%/);

    // The previous run claimed the safe allocator was 1000x faster relative to glibc than anything real.
    for (const s of saved.suites) for (const f of s.figures) if (f.baseline && f.better === "lower") f.baseline.ratio /= 1000;
    const doctored = join(tmp, "doctored.json");
    writeFileSync(doctored, JSON.stringify(saved));
    const worse = aether(["bench", "alloc", "--quick", "--baseline", doctored, "--max-regression", "50", "--format", "json"]);
    expect(worse.code).toBe(1);
    const d = json<BenchDocument>(worse);
    expect(d.comparison!.failed).toBeGreaterThan(0);
    expect(d.comparison!.rows.find((r) => r.figure === "alloc/pair/16B/safe")!.verdict).toBe("fail");
  }, 60_000);

  test("the CLI: a malformed baseline is exit 2 before anything runs; --max-regression needs --baseline", () => {
    const p = join(tmp, "garbage.json");
    writeFileSync(p, "{\"schema\": \"nope\"}");
    const r = aether(["bench", "alloc", "--baseline", p]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not an `aether bench --json` result");
    const r2 = aether(["bench", "alloc", "--max-regression", "5"]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toContain("--max-regression needs --baseline FILE");
  });
});

// ------------------------------------------------------------------------ github-action-benchmark ---

/** The action's custom tools read an array of {name: string, unit: string, value: number, range?: string,
 * extra?: string} (benchmark-action/github-action-benchmark, "customSmallerIsBetter" / "customBiggerIsBetter"). */
function expectGabEntries(list: unknown): void {
  expect(Array.isArray(list)).toBe(true);
  for (const e of list as Record<string, unknown>[]) {
    expect(Object.keys(e).every((k) => ["name", "unit", "value", "range", "extra"].includes(k))).toBe(true);
    expect(typeof e.name === "string" && (e.name as string).length > 0).toBe(true);
    expect(typeof e.unit === "string" && (e.unit as string).length > 0).toBe(true);
    expect(typeof e.value === "number" && Number.isFinite(e.value)).toBe(true);
    if ("range" in e) expect(typeof e.range).toBe("string");
    if ("extra" in e) expect(typeof e.extra).toBe("string");
  }
  const names = (list as { name: string }[]).map((e) => e.name);
  expect(new Set(names).size).toBe(names.length);
}

describe("--format github-action-benchmark", () => {
  test("each figure goes to the tool of its direction, with its ratio as a further entry", () => {
    const out = githubActionBenchmark(SAMPLE);
    expect(Object.keys(out).sort()).toEqual(["customBiggerIsBetter", "customSmallerIsBetter"]);
    expectGabEntries(out.customSmallerIsBetter);
    expectGabEntries(out.customBiggerIsBetter);
    expect(out.customSmallerIsBetter.map((e) => e.name)).toEqual(["alloc/pair/16B/glibc", "alloc/pair/16B/safe", "alloc/pair/16B/safe vs alloc/pair/16B/glibc"]);
    expect(out.customBiggerIsBetter.map((e) => e.name)).toEqual(["alloc/threads/64B/1/safe", "alloc/threads/64B/2/safe", "alloc/threads/64B/2/safe vs alloc/threads/64B/1/safe"]);
    const safe = out.customSmallerIsBetter[1]!;
    expect(safe).toMatchObject({ unit: "ns", value: 25, range: "± 4" });
    expect(safe.extra).toContain("p99 60 ns");
    expect(out.customSmallerIsBetter[2]).toMatchObject({ unit: "x", value: 2.5 });
  });

  test("the CLI prints the action's JSON and nothing else", () => {
    const r = aether(["bench", "ffi", "--quick", "--format", "github-action-benchmark"]);
    expect(r.code).toBe(0);
    const out = json<Record<string, unknown>>(r);
    expect(Object.keys(out).sort()).toEqual(["customBiggerIsBetter", "customSmallerIsBetter"]);
    expectGabEntries(out.customSmallerIsBetter);
    expectGabEntries(out.customBiggerIsBetter);
    const smaller = out.customSmallerIsBetter as { name: string; unit: string }[];
    expect(smaller.find((e) => e.name === "ffi/call/nop/ffi")?.unit).toBe("ns");
    expect(smaller.find((e) => e.name === "ffi/call/nop/ffi vs ffi/call/nop/js")?.unit).toBe("x");
  }, 60_000);

  test("--format customSmallerIsBetter / customBiggerIsBetter print the bare array that tool reads", () => {
    for (const tool of ["customSmallerIsBetter", "customBiggerIsBetter"]) {
      const r = aether(["bench", "ffi", "--quick", "--reps", "1", "--format", tool]);
      expect(r.code).toBe(0);
      const list = json<unknown>(r);
      expectGabEntries(list);
      if (tool === "customSmallerIsBetter") expect((list as { name: string }[]).some((e) => e.name === "ffi/call/nop/ffi")).toBe(true);
    }
  }, 120_000);
});

// ------------------------------------------------------------------------------- the command line ---

describe("the command line", () => {
  test("--help describes the command with examples", () => {
    const r = aether(["bench", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("$ aether bench");
    for (const o of ["--quick", "--gate", "--baseline", "--max-regression", "--format", "--report", "--json"]) expect(r.stdout).toContain(o);
  }, 60_000);

  test("--list names every suite", () => {
    const r = aether(["bench", "--list"]);
    expect(r.code).toBe(0);
    for (const s of SUITE_NAMES) expect(r.stdout).toMatch(new RegExp(`^${s}\\s`, "m"));
  });

  const usage: [string, string[], RegExp][] = [
    ["an unknown suite", ["bench", "allocc"], /unknown suite 'allocc' \(suites: alloc, /],
    ["a bad format", ["bench", "--format", "xml"], /--format expects human, json or github-action-benchmark/],
    ["zero repetitions", ["bench", "--reps", "0"], /--reps must be in \[1, 1000\]/],
    ["a report that is not HTML", ["bench", "--report", "out.txt"], /--report expects a file ending in \.html/],
    ["a bad percentage", ["bench", "--baseline", "x.json", "--max-regression", "lots"], /--max-regression expects a percentage/],
    ["bare --json with another format", ["bench", "--json", "--format", "human"], /conflicts with --format human/],
  ];
  test.each(usage)("%s: exit 2, one line", (_n, args, msg) => {
    const r = aether(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(msg);
  });

  test("a bare --json prints the JSON result", () => {
    const r = aether(["bench", "simd", "--quick", "--json", "--reps", "3"]);
    expect(r.code).toBe(0);
    expect(json<BenchDocument>(r).suites[0]!.name).toBe("simd");
  }, 60_000);

  test("aether check runs the quick gate as a component (its verdict is the gate's: the speed is not asserted here)", () => {
    const r = aether(["check", "--only", "bench", "--json"]);
    const d = json<{ results: { id: string; verdict: string; figure: string; problems: string[]; data: { rows: { verdict: string; measured: number }[] } }[] }>(r);
    expect(d.results).toHaveLength(1);
    const c = d.results[0]!;
    expect(c.id).toBe("bench");
    expect(["pass", "fail"]).toContain(c.verdict);
    expect(r.code).toBe(c.verdict === "pass" ? 0 : 1);
    expect(c.figure).toMatch(/^\d+\/\d+ quick targets met: alloc\/pair\/256B\/safe p99 \S+ (ns|µs|ms), ffi\/single\/nop p99 /);
    expect(c.data.rows.length).toBeGreaterThanOrEqual(3);
    expect(c.data.rows.every((x) => x.verdict !== "skip" && Number.isFinite(x.measured))).toBe(true);
    expect(c.problems.length).toBe(c.data.rows.filter((x) => x.verdict === "fail").length);
  }, 60_000);
});

describe("progress display", () => {
  const suites = [
    { name: "a", estimate: () => 2, steps: () => 2 },
    { name: "b", estimate: () => 2, steps: () => 1 },
  ] as unknown as Suite[];

  test("on a terminal: suite, case and time left, redrawn in place, erased at the end", () => {
    const writes: string[] = [];
    const p = new Progress(suites, true, { isTTY: true, columns: 120, write: (s) => writes.push(s) });
    p.startSuite(0);
    p.step("first case");
    p.step("second case");
    expect(p.fraction()).toBeCloseTo(0.25, 5); // one of a's two steps done: 1 of 4 estimated seconds
    p.startSuite(1);
    expect(p.fraction()).toBeCloseTo(0.5, 5);
    p.draw(true);
    p.clear();
    const text = writes.join("");
    expect(text).toContain("bench a (1/2) first case");
    expect(text).toMatch(/bench b \(2\/2\)\s+~\d+s left/);
    expect(writes.every((w) => w.startsWith("\r\x1b[K"))).toBe(true);
    expect(writes.at(-1)).toBe("\r\x1b[K");
  });

  test("not on a terminal: nothing at all", () => {
    const writes: string[] = [];
    const p = new Progress(suites, true, { isTTY: false, write: (s) => writes.push(s) });
    p.startSuite(0);
    p.step("x");
    p.clear();
    expect(writes).toEqual([]);
  });
});

// ----------------------------------------------------------------------- the measuring tools in C ---

describe("latency histogram (C)", () => {
  test("quantiles within 1/64 of the exact ones, exact min, max and below 4 ns", () => {
    const h = new Histogram();
    try {
      for (let i = 1; i <= 10000; i++) h.record(i);
      expect(h.count).toBe(10000);
      expect(h.mean).toBeCloseTo(5000.5, 0);
      const [q0, q50, q99, q1] = h.quantiles([0, 0.5, 0.99, 1]);
      expect(q0).toBe(1);
      expect(q1).toBe(10000);
      expect(Math.abs(q50! - 5000) / 5000).toBeLessThan(1 / 64);
      expect(Math.abs(q99! - 9900) / 9900).toBeLessThan(1 / 64);
      h.reset().record(0.25, 3).record(3.5);
      expect(h.quantiles([0.5, 1])).toEqual([0.25, 3.5]);
      expect(h.meanBetween(0, 0.75)).toBeCloseTo(0.25, 10);
      expect(h.meanBetween(0.25, 0.75)).toBeCloseTo(0.25, 10);
      expect(h.meanBetween(0, 1)).toBeCloseTo((0.25 * 3 + 3.5) / 4, 10);
    } finally {
      h.destroy();
    }
  });

  test("merging adds the counts; add_last takes the distribution a timed loop left behind", () => {
    const a = new Histogram(), b = new Histogram();
    try {
      a.record(100, 10);
      b.record(1000, 30);
      a.merge(b);
      expect(a.count).toBe(40);
      const [q25, q26] = a.quantiles([0.25, 0.26]); // the 10th value of 40 is the last 100, the 11th the first 1000
      expect(Math.abs(q25! - 100) / 100).toBeLessThan(1 / 64);
      expect(Math.abs(q26! - 1000) / 1000).toBeLessThan(1 / 64);
      const r = benchAlloc("safe", 64, 5000);
      a.reset().addLast();
      expect(a.count).toBe(r.samples);
      expect(a.quantiles([1])[0]!).toBeCloseTo(r.maxNs, -1);
      expect(a.percentiles().p50).toBeGreaterThanOrEqual(0);
    } finally {
      a.destroy();
      b.destroy();
    }
  });

  test("misuse is refused: destroyed handles, bad values, bad quantiles", () => {
    const h = new Histogram();
    const code = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        return (e as AetherError).code;
      }
      return "none";
    };
    expect(code(() => h.record(-1))).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(code(() => h.record(Number.NaN))).toBe("AETHER_ERR_OUT_OF_RANGE");
    expect(code(() => h.record(1, 0))).toBe("AETHER_ERR_INVALID_ARGUMENT");
    expect(code(() => h.quantiles([1.5]))).toBe("AETHER_ERR_OUT_OF_RANGE");
    const raw = new BigUint64Array(1);
    native().aether_histogram_create(raw);
    const p = Number(raw[0]) as unknown as Parameters<ReturnType<typeof native>["aether_histogram_reset"]>[0];
    native().aether_histogram_destroy(p);
    expect(native().aether_histogram_reset(p)).toBe(-8); // NOT_INITIALIZED, without touching the unmapped memory
    expect(String(native().aether_last_error())).toContain("is not a live histogram");
    native().aether_histogram_destroy(p); // twice: a no-op
    expect(native().aether_histogram_count(p)).toBe(0n);
    h.destroy();
  });
});

describe("FFI targets and call loops (C)", () => {
  test("the targets compute what they say", () => {
    const t = ffiTargets();
    expect(t.nop()).toBeUndefined();
    expect(t.args(new Uint8Array(8), 3, 0.5) % 1).toBe(0.5);
    expect(t.u64(5n, 7n)).toBe(5n ^ BigInt.asUintN(64, 7n * 0x9e3779b97f4a7c15n));
    const out = new Uint8Array(80);
    expect(t.fill(out)).toBe(0);
    expect(new DataView(out.buffer).getFloat64(16, true)).toBe(3);
  });

  test("aether_bench_call times each kind; a bad kind or count is refused", () => {
    for (const k of ["nop", "args", "u64", "fill"] as const) {
      const r = benchCall(k, 10_000);
      expect(r.ops).toBe(10_000);
      expect(r.samples).toBe(10_000);
      expect(r.nsPerOp).toBeGreaterThan(0);
    }
    const out = new Uint8Array(80);
    expect(native().aether_bench_call(7, 10n, out)).toBe(-1);
    expect(native().aether_bench_call(0, 0n, out)).toBe(-4);
  });

  test("aether_bench_qstate_api runs the public kernels and refuses what they refuse", () => {
    const s = QState.create(8);
    try {
      s.normalize();
      const r = benchQStateApi(s, "apply_gate_1q", 50, { target: 3 });
      expect(r.ops).toBe(50);
      expect(Math.abs(s.norm2() - 1)).toBeLessThan(1e-4);
      expect(() => benchQStateApi(s, "apply_gate_1q", 5, { target: 8 })).toThrow(/target qubit 8 is not in \[0, 8\)/);
      expect(() => benchQStateApi(s, "apply_cnot", 5, { control: 2, target: 2 })).toThrow(AetherError);
      expect(benchQStateApi(s, "probabilities", 5).ops).toBe(5);
    } finally {
      s.destroy();
    }
  });
});
