// `aether stress` as users run it: summaries (human and JSON), native threads and Workers, planted faults
// caught with exit 1 and one line, usage mistakes with exit 2, and its part of `aether check`.
import { describe, expect, test } from "bun:test";
import { aether, NO_WORKERS_UNDER_TSAN } from "./helpers/run.ts";

function json(args: string[]) {
  const r = aether(["stress", ...args, "--json"]);
  return { ...r, data: r.stdout.trim() ? JSON.parse(r.stdout) : null };
}

describe("aether stress: runs", () => {
  test("spsc --ops: exactly that many items, the summary fields, exit 0", () => {
    const r = json(["spsc", "--ops", "200k", "--capacity", "256", "--seed", "42"]);
    expect(r.code).toBe(0);
    expect(r.data).toMatchObject({ target: "spsc", mode: "native", producers: 1, consumers: 1, ops: 200 * 1024, violations: 0, violation: null, verdict: "pass", seed: 42, capacity: 256, elemSize: 8 });
    expect(r.data.opsPerSec).toBeGreaterThan(0);
    expect(r.data.durationS).toBeGreaterThan(0);
    expect(r.data.maxDepth).toBeGreaterThan(0);
    expect(r.data.maxDepth).toBeLessThanOrEqual(256);
  });

  test("mpmc with explicit producers and consumers, large items", () => {
    const r = json(["mpmc", "--producers", "3", "--consumers", "2", "--ops", "100000", "--elem-size", "48", "--capacity", "64"]);
    expect(r.code).toBe(0);
    expect(r.data).toMatchObject({ producers: 3, consumers: 2, threads: 5, ops: 100000, violations: 0 });
  });

  test("mpmc --threads splits into producers and consumers", () => {
    const r = json(["mpmc", "--threads", "3", "--ops", "20000"]);
    expect(r.data).toMatchObject({ producers: 2, consumers: 1, violations: 0 });
  });

  test("pool and alloc end with nothing in use and no leak", () => {
    for (const target of ["pool", "alloc"]) {
      const r = json([target, "--threads", "3", "--ops", "60000"]);
      expect(r.code).toBe(0);
      expect(r.data).toMatchObject({ target, threads: 3, violations: 0, verdict: "pass" });
      expect(r.data.ops).toBe(60000);
    }
  });

  test.each([["native"], ["workers"]])("--ops is exact and short runs see a depth, in %s mode", (mode) => {
    if (mode === "workers" && NO_WORKERS_UNDER_TSAN) return;
    for (const [target, ops] of [["pool", 1000], ["alloc", 999], ["mpmc", 1], ["mpmc", 7], ["spsc", 3]] as const) {
      const n = target === "spsc" ? "2" : "3";
      const r = json([target, "--ops", String(ops), ...(mode === "workers" ? ["--workers", n] : ["--threads", n])]);
      expect(r.code).toBe(0);
      expect(r.data.ops).toBe(ops);
      expect(r.data.maxDepth).toBeGreaterThan(0);
    }
  });

  test("all: every target in turn, human summary", () => {
    const r = aether(["stress", "all", "--duration", "0.2"]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    for (const t of ["spsc", "mpmc", "pool", "alloc"]) {
      const line = lines.find((l) => l.startsWith(`${t} `));
      expect(line).toBeDefined();
      expect(line).toContain("pass");
      expect(line).toMatch(/[\d,]+ ops in [\d.]+ s/);
      expect(line).toContain("0 violations");
    }
    expect(lines.find((l) => l.startsWith("spsc "))).toMatch(/max depth \d+/);
  });

  test("all --json: results for the four targets", () => {
    const r = json(["all", "--duration", "0.2"]);
    expect(r.code).toBe(0);
    expect(r.data.verdict).toBe("pass");
    expect(r.data.results.map((x: { target: string }) => x.target)).toEqual(["spsc", "mpmc", "pool", "alloc"]);
  });

  // Skipped under TSan only, where Bun's Workers deadlock by themselves (see NO_WORKERS_UNDER_TSAN); the native
  // stress drivers (stress/*) run every target under TSan.
  test.skipIf(NO_WORKERS_UNDER_TSAN)("--workers: Bun Workers through the FFI, for every target", () => {
    for (const [target, workers] of [["spsc", 2], ["mpmc", 3], ["pool", 2], ["alloc", 2]] as const) {
      const r = json([target, "--workers", String(workers), "--ops", "20000"]);
      expect(r.code).toBe(0);
      expect(r.data).toMatchObject({ target, mode: "workers", threads: workers, violations: 0 });
    }
  });
});

describe("aether stress: violations exit 1 with what, where and when", () => {
  test.each(([
    [["spsc", "--inject", "lose"], /^aether stress: spsc: FIFO order violated \(skipped ahead: lost or reordered\): expected seq 1000, got 1001 after 1000 ops$/],
    [["mpmc", "--inject", "lose", "--ops", "100000"], /^aether stress: mpmc: producer \d sent \d+ items but \d+ were received \(lost\) after \d+ ops$/],
    [["spsc", "--inject", "duplicate", "--workers", "2"], /^aether stress: spsc: FIFO order violated \(.*duplicated.*\): expected seq \d+, got 1000 at worker consumer 0 after \d+ ops$/],
    [["pool", "--inject", "share"], /^aether stress: pool: block 0x[0-9a-f]+ .*after \d+ ops/],
    [["alloc", "--inject", "share"], /^aether stress: alloc: block 0x[0-9a-f]+ .*(after \d+ ops|double free)/],
    // (the --workers case is left out under TSan only, where Bun's Workers deadlock by themselves)
  ] as [string[], RegExp][]).filter(([args]) => !(NO_WORKERS_UNDER_TSAN && args.includes("--workers"))))("%j", (args, re) => {
    const r = aether(["stress", ...args, "--duration", "10"]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split("\n").filter((l) => l.startsWith("aether stress:"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(re);
    expect(r.stdout).toContain("FAIL");
    expect(r.stdout).toMatch(/1 violation\b/);
  });

  test("--json carries the violation", () => {
    const r = json(["spsc", "--inject", "lose"]);
    expect(r.code).toBe(1);
    expect(r.data).toMatchObject({ verdict: "fail", violations: 1, inject: "lose" });
    expect(r.data.violation).toContain("expected seq 1000, got 1001");
  });
});

describe("aether stress: usage mistakes exit 2 in one line", () => {
  test.each([
    [["bogus"], "unknown target 'bogus'"],
    [["spsc", "--capacity", "100"], "--capacity 100 is not a power of two"],
    [["mpmc", "--capacity", "4"], "--capacity 4 is not in [8, 2^24]"],
    [["spsc", "--threads", "3"], "spsc runs on exactly 2 threads"],
    [["spsc", "--producers", "2"], "spsc takes exactly one producer and one consumer"],
    [["mpmc", "--threads", "4", "--producers", "2"], "either --threads or --producers/--consumers"],
    [["pool", "--threads", "2", "--workers", "2"], "either --threads (native threads) or --workers"],
    [["pool", "--producers", "2"], "--producers and --consumers are for queues"],
    [["spsc", "--elem-size", "0"], "--elem-size must be in [1, 4096]"],
    [["spsc", "--duration", "0"], "--duration expects seconds"],
    [["spsc", "--ops", "ten"], "--ops expects a whole number"],
    [["spsc", "--inject", "share"], "--inject share is for pool and alloc"],
    [["pool", "--inject", "lose"], "--inject lose is for queues"],
    [["all", "--inject", "lose"], "--inject needs one target"],
    [["spsc", "--inject", "melt"], "--inject must be one of"],
  ] as const)("%j", (args, text) => {
    const r = aether(["stress", ...args]);
    expect(r.code).toBe(2);
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain(text);
    expect(r.stderr).not.toContain("    at "); // no stack trace
  });

  test("--help describes the command", () => {
    const r = aether(["stress", "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--workers");
    expect(r.stdout).toContain("aether stress all");
  });
});

describe("aether check", () => {
  test("the stress component passes and says what it measured", () => {
    const r = aether(["check", "--only", "stress", "--json"]);
    expect(r.code).toBe(0);
    const data = JSON.parse(r.stdout);
    expect(data.verdict).toBe("pass");
    const res = data.results[0];
    expect(res).toMatchObject({ id: "stress", verdict: "pass" });
    expect(res.figure).toMatch(/spsc .*ops\/s.*0 violations$/);
    expect(res.data.runs).toHaveLength(5);
  });
});
