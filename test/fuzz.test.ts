// aether fuzz: the committed corpora replay everywhere (plain gcc, Bun, Node), the engines find, catch and
// shrink failures, --repro tells what an input does, and the C targets and the Bun side read an input alike.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { binaryPath, gccSanitizers } from "../cli/lib/fuzz/build.ts";
import { allocTarget } from "../cli/lib/fuzz/builtin/alloc.ts";
import { devpoolTarget } from "../cli/lib/fuzz/builtin/devpool.ts";
import { poolTarget } from "../cli/lib/fuzz/builtin/pool.ts";
import { itemBytes, queueTarget } from "../cli/lib/fuzz/builtin/queue.ts";
import { simdTarget } from "../cli/lib/fuzz/builtin/simd.ts";
import { explainLoadFailure } from "../cli/lib/fuzz/jazzer.ts";
import { Encoder, mix64, Producer } from "../cli/lib/fuzz/producer.ts";
import { findClang } from "../cli/lib/tools.ts";
import { aether, NO_WORKERS_UNDER_TSAN, ROOT, runCmd, runSnippet, WITHOUT_SANITIZER } from "./helpers/run.ts";

// The queue and pool twins run their other threads as Bun Workers, synchronised through JavaScript atomics that
// ThreadSanitizer cannot see (Bun is not instrumented): under TSan their runs would report races that are not
// there, as every Worker test would, so they are skipped there; the C targets' corpora still replay under TSan.
const twinTest = test.skipIf(NO_WORKERS_UNDER_TSAN);

const CORPUS = join(ROOT, "fuzz", "corpus");
const files = (t: string) => readdirSync(join(CORPUS, t)).sort().map((f) => join(CORPUS, t, f));
const json = (s: string) => JSON.parse(s) as Record<string, any>;
const bigintSafe = (v: unknown) => JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? `${x}n` : x));

describe("the committed corpora", () => {
  test("every corpus replays without libFuzzer: gcc for the C targets, Bun and Node for the TypeScript ones", () => {
    const r = aether(["fuzz", "--regression", "--json"], { timeoutMs: 170_000 });
    expect(r.code).toBe(0);
    const out = json(r.stdout);
    expect(out.verdict).toBe("pass");
    const byTarget = new Map<string, number>();
    for (const row of out.results) byTarget.set(`${row.target} ${row.via.split(" ")[0]}`, row.inputs);
    for (const t of ["alloc", "simd", "elf", "layout", "trace", "audit", "devpool", "queue", "pool"]) expect(byTarget.get(`${t} gcc`)).toBe(files(t).length);
    for (const t of ["cli-numbers", "callgraph"]) {
      expect(byTarget.get(`${t} bun`)).toBe(files(t).length);
      expect(byTarget.get(`${t} node`)).toBe(files(t).length);
    }
    expect(byTarget.get("bench-targets bun")).toBe(files("bench-targets").length);
  }, 180_000);

  test("reproducers of the bugs found are committed and pass now", () => {
    expect(files("alloc").some((f) => f.endsWith("repro-check-all-huge-uaf-size"))).toBe(true);
    expect(files("cli-numbers").some((f) => f.endsWith("repro-usage-error-newline"))).toBe(true);
    const r = aether(["fuzz", "alloc", "--repro", "fuzz/corpus/alloc/repro-check-all-huge-uaf-size"], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    // The account names each operation: a huge block freed, written after the free, then check_all.
    expect(r.stdout).toMatch(/op 0: malloc[\s\S]*op 1: free[\s\S]*op 2: uaf_write[\s\S]*op 3: check_all/);
    expect(r.stdout).toContain("every check held");
  }, 130_000);
});

describe("the regression driver", () => {
  test("it names the input that failed, and the assertion's message", () => {
    const dir = mkdtempSync(join(tmpdir(), "aether-fuzz-driver-"));
    try {
      writeFileSync(
        join(dir, "t.c"),
        `#include "fuzz_helpers.h"
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  FUZZ_ASSERT_MSG(!(n >= 4 && memcmp(d, "boom", 4) == 0), "the input says %.4s", (const char *)d);
  return 0;
}`,
      );
      const exe = join(dir, "t");
      const cc = runCmd(["gcc", "-std=c11", `-I${join(ROOT, "fuzz")}`, join(dir, "t.c"), join(ROOT, "fuzz", "regression_driver.c"), "-o", exe]);
      expect(cc.code).toBe(0);
      mkdirSync(join(dir, "corpus"));
      writeFileSync(join(dir, "corpus", "a-fine"), "fine");
      writeFileSync(join(dir, "corpus", "b-boom"), "boom!");
      const ok = runCmd([exe, join(dir, "corpus", "a-fine")]);
      expect(ok.code).toBe(0);
      expect(ok.stderr).toContain("replayed 1 inputs (4 bytes)");
      const bad = runCmd([exe, join(dir, "corpus")]);
      expect(bad.code).not.toBe(0);
      expect(bad.stderr).toContain("FUZZ ASSERTION FAILED");
      expect(bad.stderr).toContain("the input says boom");
      const running = bad.stderr.split("\n").filter((l) => l.startsWith("running "));
      expect(running[running.length - 1]).toContain("b-boom");
      expect(runCmd([exe, join(dir, "empty-nothing-here")]).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("one input format for C and Bun", () => {
  test("the producer decodes as fuzz_helpers.h does, and the encoder inverts it", () => {
    const p = new Producer(Uint8Array.from([0x34, 0x12, 0xff, 0x05, 0x01, 0x00, 0x00]));
    expect(p.u16()).toBe(0x1234);
    expect(p.range(0, 255)).toBe(0xff); // one byte for a span < 256
    expect(p.range(10, 20)).toBe(10 + (5 % 11));
    expect(p.range64(0n, 70000n)).toBe(1n); // four bytes for a span >= 2^16
    expect(p.empty).toBe(true);
    expect(p.u32()).toBe(0); // past the end: zeros
    const e = new Encoder().u16(0x1234).range(0, 255, 0xff).range(10, 20, 15).range64(0n, 70000n, 1n).finish();
    expect(Array.from(e)).toEqual([0x34, 0x12, 0xff, 0x05, 0x01, 0x00, 0x00, 0x00]);
  }, 60_000);

  test("decode(encode(decode(x))) = decode(x) for every committed input of the C targets' builtin twins", () => {
    for (const [t, name] of [[allocTarget, "alloc"], [simdTarget, "simd"], [queueTarget, "queue"], [poolTarget, "pool"], [devpoolTarget, "devpool"]] as const) {
      for (const f of files(name)) {
        const prog = (t.decode as (d: Uint8Array) => unknown)(new Uint8Array(readFileSync(f)));
        const again = (t.decode as (d: Uint8Array) => unknown)((t.encode as (p: unknown) => Uint8Array)(prog));
        expect(bigintSafe(again)).toBe(bigintSafe(prog));
      }
    }
  }, 60_000);

  test("the C target and the builtin engine see the same operations in an input", () => {
    // The regression build exists after the replay test above (or is built here).
    const build = aether(["fuzz", "alloc", "simd", "--regression", "--json"], { timeoutMs: 120_000 });
    expect(build.code).toBe(0);
    const sans = gccSanitizers();
    for (const [t, name] of [[allocTarget, "alloc"], [simdTarget, "simd"]] as const) {
      const bin = binaryPath({ engine: "regression", sanitizers: sans }, name);
      for (const f of files(name).slice(0, 12)) {
        const c = runCmd([bin, "-v", f], { env: WITHOUT_SANITIZER }); // its own ASan+UBSan, not a preloaded runtime
        expect(c.code).toBe(0);
        const cOps = c.stdout.split("\n").filter((l) => /^op \d+: /.test(l)).map((l) => l.replace(/^op \d+: (\S+).*$/, "$1"));
        const tsOps = ((t.decode as (d: Uint8Array) => { ops: { name: string }[] })(new Uint8Array(readFileSync(f)))).ops.map((o) => o.name);
        expect(cOps).toEqual(tsOps);
      }
    }
  }, 130_000);
  twinTest("queue, pool and devpool: the C target and its builtin twin give the same account of every committed input", () => {
    // The twins log what the C targets' FUZZ_LOG lines say, so the two accounts of an input agree line for
    // line (addresses and handles, which differ between processes, aside): the same operations, taking the
    // same paths through the model (a block handed out again, a handle forged or held, a burst run or not).
    const build = aether(["fuzz", "queue", "pool", "devpool", "--regression", "--json"], { timeoutMs: 170_000 });
    expect(build.code).toBe(0);
    const norm = (l: string) => l.replace(/0x[0-9a-f]+/g, "0x?");
    const ts = runSnippet(`
      import { readFileSync } from "node:fs";
      import { BUILTIN_TARGETS } from "${join(ROOT, "cli/lib/fuzz/builtin/index.ts")}";
      import { corpusFiles } from "${join(ROOT, "cli/lib/fuzz/targets.ts")}";
      const out: Record<string, string[]> = {};
      for (const name of ["queue", "pool", "devpool"]) {
        const t = BUILTIN_TARGETS.find((x) => x.name === name)!;
        out[name] = [];
        for (const f of corpusFiles(name)) t.run(t.decode(new Uint8Array(readFileSync(f))), (l) => out[name]!.push(l));
      }
      console.log(JSON.stringify(out));
    `, { timeoutMs: 110_000 });
    expect(ts.stderr).toBe("");
    expect(ts.code).toBe(0);
    const twin = json(ts.stdout) as Record<string, string[]>;
    for (const name of ["queue", "pool", "devpool"]) {
      const bin = binaryPath({ engine: "regression", sanitizers: gccSanitizers() }, name);
      const c = runCmd([bin, "-v", join(CORPUS, name)], { env: WITHOUT_SANITIZER }); // the corpus in name order, as corpusFiles
      expect(c.code).toBe(0);
      const cLines = c.stdout.split("\n").filter(Boolean).map(norm);
      expect(cLines.filter((l) => l === "done: no finding").length).toBe(files(name).length);
      expect(cLines.length).toBeGreaterThan(files(name).length * 5);
      expect(twin[name]!.map(norm)).toEqual(cLines);
    }
  }, 300_000);

  test("the queue twin's item bytes are fuzz/queue.c's item_bytes (splitmix64 on 32-bit halves = fuzz_mix64)", () => {
    const reference = (id: number, elem: number) => {
      const out = new Uint8Array(elem);
      const st = { s: BigInt.asUintN(64, BigInt(id) * 0x9e3779b97f4a7c15n + BigInt(elem)) };
      const w = new DataView(new ArrayBuffer(8));
      for (let i = 0; i < elem; i += 8) {
        w.setBigUint64(0, mix64(st), true);
        out.set(new Uint8Array(w.buffer).subarray(0, Math.min(8, elem - i)), i);
      }
      if (elem >= 8) {
        w.setBigUint64(0, BigInt(id), true);
        out.set(new Uint8Array(w.buffer), 0);
      }
      return out;
    };
    for (const elem of [1, 3, 8, 16, 24, 64, 200, 4096])
      for (const id of [1, 2, 77, 65_535, 1_000_003]) {
        const got = new Uint8Array(elem + 5);
        itemBytes(id, elem, got, 5);
        expect(Array.from(got.subarray(5))).toEqual(Array.from(reference(id, elem)));
      }
  }, 60_000);
});

describe("the builtin engine", () => {
  test("the allocator and the SIMD kernels through the FFI pass their corpora and fresh programs", () => {
    const r = aether(["fuzz", "alloc", "simd", "cli-numbers", "--engine", "builtin", "--runs", "40", "--seed", "11", "--json"], { timeoutMs: 120_000 });
    expect(r.code).toBe(0);
    const out = json(r.stdout);
    expect(out.verdict).toBe("pass");
    for (const row of out.results) expect(row.execs).toBe(40);
  }, 130_000);

  twinTest("queue, pool and devpool through the FFI: every committed input, then fresh programs, pass", () => {
    // --runs past the corpus size: the engine runs the committed corpus first, then random and mutated inputs.
    const runs = Math.max(...["queue", "pool", "devpool"].map((t) => files(t).length)) + 150;
    const r = aether(["fuzz", "queue", "pool", "devpool", "--engine", "builtin", "--runs", String(runs), "--seed", "11", "--jobs", "2", "--json"], { timeoutMs: 170_000 });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = json(r.stdout);
    expect(out.verdict).toBe("pass");
    expect(out.results.map((x: { target: string }) => x.target).sort()).toEqual(["devpool", "pool", "queue"]);
    for (const row of out.results) expect(row.execs).toBe(runs);
  }, 180_000);

  // A bug planted in the wrapper each twin calls (test/fixtures/fuzz-plant.ts, preloaded into every process of
  // the run): the model must catch it, the engine shrink the program to the few operations that show it, and
  // the shrunk input must fail with the bug and pass without it. queue-pop's bug (a pop that loses the item
  // behind it) shows in the threaded bursts as soon as the consumer lags, so whether a given input trips it is
  // a matter of timing: only its finding and its shrunk program's size are checked, not a rerun.
  const PLANT = { BUN_OPTIONS: `--preload ${join(ROOT, "test", "fixtures", "fuzz-plant.ts")}` };
  const TWINS = { queue: queueTarget, pool: poolTarget, devpool: devpoolTarget } as Record<string, { decode(d: Uint8Array): { ops: unknown[] } }>;
  for (const [plant, target, message, maxOps, timed] of [
    ["queue", "queue", /FUZZ ASSERTION FAILED: op \d+: push_n\(\d+\) moved \d+ with room for \d+/, 1, false],
    ["queue-pop", "queue", /FUZZ ASSERTION FAILED: .*(burst: .*(lost|reordered)|try_pop: not item|head - tail)/, 3, true],
    ["pool", "pool", /FUZZ ASSERTION FAILED: op \d+: second free: AETHER_OK, not AETHER_ERR_DOUBLE_FREE/, 3, false],
    ["devpool", "devpool", /FUZZ ASSERTION FAILED: op \d+: AETHER_OK \(\), the model says AETHER_ERR_QUOTA_EXCEEDED/, 3, false],
  ] as const) {
    twinTest(`${target}: a planted bug (${plant}) is found, and its program shrunk to at most ${maxOps} operation(s)`, () => {
      const env = { ...PLANT, AETHER_FUZZ_PLANT: plant };
      const made: string[] = [];
      try {
        const r = aether(["fuzz", target, "--engine", "builtin", "--runs", "100000", "--seed", "1", "--json"], { env, timeoutMs: 110_000 });
        expect(r.code).toBe(1);
        const f = json(r.stdout).results[0].findings[0];
        made.push(join(ROOT, f.file), join(ROOT, f.minimized));
        expect(f.summary).toMatch(message);
        const full = TWINS[target]!.decode(new Uint8Array(readFileSync(join(ROOT, f.file)))).ops.length;
        const min = TWINS[target]!.decode(new Uint8Array(readFileSync(join(ROOT, f.minimized)))).ops.length;
        expect(min).toBeGreaterThan(0);
        expect(min).toBeLessThanOrEqual(maxOps);
        expect(min).toBeLessThanOrEqual(full);
        if (timed) return;
        expect(full).toBeGreaterThan(min); // the corpus holds no input this small that trips these bugs
        const repro = aether(["fuzz", target, "--engine", "builtin", "--repro", f.minimized], { env });
        expect(repro.code).toBe(1);
        expect(repro.stdout).toMatch(message);
        // Without the planted bug the same input passes: the model blamed the bug, not the program.
        const clean = aether(["fuzz", target, "--engine", "builtin", "--repro", f.minimized]);
        expect(clean.code).toBe(0);
        expect(clean.stdout).toContain("done: no finding");
      } finally {
        // Only what this test saved: fuzz/artifacts/<target>/ may hold a real finding.
        for (const file of made) rmSync(file, { force: true });
        const dir = join(ROOT, "fuzz", "artifacts", target);
        if (existsSync(dir) && readdirSync(dir).length === 0) rmSync(dir, { recursive: true });
      }
    }, 120_000);
  }

  test("an assertion failure is found and shrunk to the two operations that matter", () => {
    const r = aether(["fuzz", "selftest", "--engine", "builtin", "--runs", "100000", "--seed", "1", "--json"], { env: { AETHER_FUZZ_SELFTEST: "1" } });
    expect(r.code).toBe(1);
    const f = json(r.stdout).results[0].findings[0];
    expect(f.summary).toContain("FUZZ ASSERTION FAILED: 0x0f after 0xf0");
    expect(f.minimizedBytes).toBe(2);
    expect(Array.from(readFileSync(join(ROOT, f.minimized)))).toEqual([0xf0, 0x0f]);
    const repro = aether(["fuzz", "selftest", "--engine", "builtin", "--repro", f.minimized], { env: { AETHER_FUZZ_SELFTEST: "1" } });
    expect(repro.code).toBe(1);
    expect(repro.stdout).toContain("op 1: byte 0xf");
    expect(repro.stdout).toContain("0x0f after 0xf0");
    rmSync(join(ROOT, "fuzz", "artifacts", "selftest"), { recursive: true, force: true });
  }, 60_000);

  test("a crash of the process running the programs is caught, and its input shrunk", () => {
    const r = aether(["fuzz", "selftest", "--engine", "builtin", "--runs", "100000", "--seed", "3", "--json"], { env: { AETHER_FUZZ_SELFTEST: "1" } });
    expect(r.code).toBe(1);
    const f = json(r.stdout).results[0].findings[0];
    expect(f.summary).toContain("SIGABRT");
    expect(Array.from(readFileSync(join(ROOT, f.minimized)))).toEqual([0xaa, 0xab]);
    expect(f.reproduce).toBe(`aether fuzz selftest --engine builtin --repro ${f.minimized}`);
    rmSync(join(ROOT, "fuzz", "artifacts", "selftest"), { recursive: true, force: true });
  }, 60_000);
});

describe("libFuzzer", () => {
  const clang = findClang();
  test.skipIf(!clang?.libFuzzer)("a short run builds the target with sanitizers, replays its corpus and reports progress", () => {
    const r = aether(["fuzz", "layout", "--runs", "3000", "--json"], { timeoutMs: 170_000 });
    expect(r.code).toBe(0);
    const row = json(r.stdout).results[0];
    expect(row.engine).toBe("libfuzzer");
    expect(row.status).toBe("pass");
    expect(row.execs).toBeGreaterThanOrEqual(3000);
    expect(row.coverage).toBeGreaterThan(100);
    expect(row.corpus).toBeGreaterThan(0);
  }, 180_000);
});

describe("the command", () => {
  test("--list names every target, its engines and its corpus", () => {
    const r = aether(["fuzz", "--list", "--json"]);
    expect(r.code).toBe(0);
    const rows = json(r.stdout).targets as { name: string; engines: string[]; corpus: number }[];
    const get = (n: string) => rows.find((x) => x.name === n)!;
    for (const t of ["alloc", "simd", "queue", "pool", "devpool"]) expect(get(t).engines).toEqual(["libfuzzer", "builtin"]);
    expect(get("elf").engines).toEqual(["libfuzzer"]);
    expect(get("cli-numbers").engines).toEqual(["builtin", "jazzer"]);
    expect(get("callgraph").engines).toEqual(["builtin", "jazzer"]);
    for (const row of rows) expect(row.corpus).toBeGreaterThan(0);
    expect(rows.some((x) => x.name === "selftest")).toBe(false);
  }, 60_000);

  test("mistakes are one-line usage errors", () => {
    for (const args of [["fuzz", "nosuch"], ["fuzz", "--engine", "afl"], ["fuzz", "elf", "--engine", "builtin"], ["fuzz", "alloc", "--repro", "no/such/file"], ["fuzz", "--time", "0"],
      ["fuzz", "alloc", "--repro", "fuzz/corpus/alloc"], ["fuzz", "alloc", "--engine", "jazzer"]]) {
      const r = aether(args);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n").length).toBe(1);
    }
  }, 60_000);

  test("jazzer: a missing install or an addon that cannot load is said in one line", () => {
    const r = aether(["fuzz", "--engine", "jazzer"], { env: { AETHER_JAZZER_PATH: join(tmpdir(), "no-jazzer-here") } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/Jazzer\.js/);
    // The error Node prints for Jazzer.js 4.0.0's prebuilt addon on Debian 12 (glibc 2.36).
    const nodeError = `node:internal/modules/cjs/loader:1661
  return process.dlopen(module, path.toNamespacedPath(filename));
                 ^

Error: /lib/x86_64-linux-gnu/libc.so.6: version \`GLIBC_2.38' not found (required by /x/node_modules/@jazzer.js/fuzzer/prebuilds/fuzzer-linux-x64.node)`;
    const line = explainLoadFailure(nodeError, "4.0.0");
    expect(line).toMatch(/^Jazzer\.js 4\.0\.0's prebuilt addon needs glibc 2\.38, newer than this system's/);
    expect(line).not.toContain("\n");
  }, 60_000);

  test("jazzer: an installed package whose addon fails to load is detected by loading it", () => {
    const dir = mkdtempSync(join(tmpdir(), "aether-fake-jazzer-"));
    try {
      const core = join(dir, "@jazzer.js", "core"), fuzzer = join(dir, "@jazzer.js", "fuzzer");
      mkdirSync(core, { recursive: true });
      mkdirSync(fuzzer, { recursive: true });
      writeFileSync(join(core, "package.json"), JSON.stringify({ name: "@jazzer.js/core", version: "4.0.0", bin: { jazzer: "dist/cli.js" } }));
      writeFileSync(join(fuzzer, "package.json"), JSON.stringify({ name: "@jazzer.js/fuzzer", version: "4.0.0", main: "index.js" }));
      writeFileSync(join(fuzzer, "index.js"), "throw new Error(\"/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.38' not found (required by fuzzer-linux-x64.node)\");");
      const r = aether(["fuzz", "cli-numbers", "--engine", "jazzer"], { env: { AETHER_JAZZER_PATH: dir } });
      expect(r.code).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("needs glibc 2.38");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
