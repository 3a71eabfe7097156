// aether sanitize: each sanitizer is armed (a deliberately broken driver is reported, with its kind and the
// first frame in our code), the quick native scenarios are clean, a Bun suite file runs under a preloaded
// runtime, reports of every format are parsed and folded, suppressions need reasons, and mistakes are usage
// errors. Builds of the four sanitizer variants are incremental: the first run on a fresh clone builds them.
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dedupe, parseFrame, parseReports, whereOf } from "../cli/lib/sanitize/reports.ts";
import { apiPresent, matches, NATIVE, suiteFiles } from "../cli/lib/sanitize/scenarios.ts";
import { parseSuppressions, SUPPRESSIONS_FILE, loadSuppressions } from "../cli/lib/sanitize/suppressions.ts";
import { aether, ROOT } from "./helpers/run.ts";

const FIX = join(ROOT, "test", "fixtures", "sanitize");
/** The native scenarios of the components this tree has (others join when their API lands in aether.h). */
const PRESENT = NATIVE.filter((s) => !s.requires || apiPresent(s.requires));
const BUILDS = 300_000; // up to four variant builds and four driver compiles on a shared 2-core machine

/** A sanitize run's JSON; the command prints nothing else on stdout with --json. */
function sanitizeJson(args: string[], env: Record<string, string | undefined> = {}) {
  const out = mkdtempSync(join(tmpdir(), "aether-sanitize-"));
  const r = aether(["sanitize", "--json", "--out", out, ...args], { env, timeoutMs: BUILDS });
  try {
    return { code: r.code, stderr: r.stderr, json: JSON.parse(r.stdout), out };
  } catch {
    throw new Error(`not JSON (exit ${r.code}): ${r.stdout.slice(0, 500)}\n${r.stderr.slice(-2000)}`);
  }
}

describe("every sanitizer is armed, and the quick scenarios are clean", () => {
  // One run: each sanitizer gets the quick native scenarios (which must pass with no report) and its own
  // deliberately broken drivers (whose reports must be exactly the expected ones).
  type Expect = { file: string; findings: [kind: string, where: RegExp][] };
  const cases: Record<"asan" | "ubsan" | "tsan" | "msan", Expect[]> = {
    asan: [
      { file: "heap_overflow.c", findings: [["heap-buffer-overflow", /^csrc\/qstate_(kernels\.h|scalar\.c):\d+ in norm2_scalar$/]] },
      // LeakSanitizer (on for the native drivers): the state and its arrays, allocated inside libaether
      { file: "leak.c", findings: [["direct leak", /^csrc\/qstate\.c:\d+ in \w+$/], ["indirect leak", /^csrc\/qstate\.c:\d+ in aether_qstate_create$/]] },
    ],
    ubsan: [{ file: "signed_overflow.c", findings: [["signed-integer-overflow", /^test\/fixtures\/sanitize\/signed_overflow\.c:11 in main$/]] }],
    tsan: [{ file: "data_race.c", findings: [["data race", /^csrc\/qstate_(kernels\.h|scalar\.c|avx2\.c|avx512\.c):\d+ in scale_\w+$/]] }],
    msan: [{ file: "uninit_read.c", findings: [["use-of-uninitialized-value", /^csrc\/qstate(_kernels\.h|\.c|_\w+\.c):\d+ in \w+$/]] }],
  };

  test(
    "an overflow and a leak (ASan), a signed overflow (UBSan), a race (TSan), an uninitialized read (MSan): each reported, exit 1",
    () => {
      const drivers = Object.entries(cases).flatMap(([s, list]) => list.flatMap((c) => ["--driver", `${s}:${join(FIX, c.file)}`]));
      const r = sanitizeJson(["--asan", "--ubsan", "--tsan", "--msan", "--keep-going", "--quick", ...drivers]);
      const quick = PRESENT.filter((s) => s.quickArgs).map((s) => s.id);
      try {
        expect(r.code).toBe(1);
        expect(r.json.verdict).toBe("fail");
        expect(r.json.sanitizers.map((x: { sanitizer: string }) => x.sanitizer)).toEqual(["asan", "ubsan", "tsan", "msan"]);
        for (const run of r.json.sanitizers) {
          const list = cases[run.sanitizer as keyof typeof cases];
          const broken = list.map((c) => `extra/${c.file.replace(/\.c$/, "")}`);
          expect(run.verdict).toBe("fail");
          if (run.scenarios.length === 0) {
            // The only acceptable way not to report: this machine cannot run the sanitizer, said in one line.
            expect(run.reason).toMatch(/needs (gcc|clang)|has no \w+Sanitizer runtime|does not run here|cannot build/);
            expect(run.reason).not.toContain("\n");
            continue;
          }
          expect(run.hooks).toBeGreaterThan(0); // the library itself is instrumented
          expect(run.suite).toBe("not run (quick)");
          expect(run.scenarios.map((x: { id: string }) => x.id)).toEqual([...quick, ...broken]);
          for (const x of run.scenarios.filter((x: { id: string }) => !broken.includes(x.id))) {
            expect(x.reports).toBe(0);
            expect(x.detail).toMatch(/^ok /);
            expect(x.verdict).toBe("pass");
          }
          const expected = list.flatMap((c) => c.findings.map(([kind, where]) => ({ kind, where, scenario: `native extra/${c.file.replace(/\.c$/, "")}` })));
          expect(run.findings).toHaveLength(expected.length);
          for (const e of expected) {
            const f = run.findings.find((x: { kind: string; scenarios: string[] }) => x.kind === e.kind && x.scenarios.includes(e.scenario));
            expect(f, `${run.sanitizer}: no ${e.kind} from ${e.scenario} in ${JSON.stringify(run.findings)}`).toBeDefined();
            expect(f.where).toMatch(e.where);
            expect(f.scenarios).toEqual([e.scenario]);
            expect(existsSync(f.log)).toBe(true);
            const full = readFileSync(f.log, "utf8");
            expect(full).toContain(run.sanitizer === "ubsan" ? "runtime error: signed integer overflow" : e.kind.endsWith("leak") ? "LeakSanitizer" : run.title);
          }
        }
      } finally {
        rmSync(r.out, { recursive: true, force: true });
      }
    },
    BUILDS,
  );
});

describe("clean runs", () => {
  test(
    "a Bun suite file (cli) under the preloaded ASan runtime, with the asan library: passes, no report, exit 0",
    () => {
      if (process.env.AETHER_SANITIZE_SUITE) {
        // Inside a sanitizer run of this suite, a second suite run would nest: the command refuses, by design.
        const r = aether(["sanitize", "--asan", "--only", "suite/cli"]);
        expect(r.code).toBe(2);
        expect(r.stderr).toContain("runs inside the");
        return;
      }
      const r = sanitizeJson(["--asan", "--only", "suite/cli"]);
      try {
        const run = r.json.sanitizers[0];
        if (run.findings.length === 0 && run.scenarios.length === 0) {
          expect(run.reason).toMatch(/needs gcc|has no \w+Sanitizer runtime|does not run here/);
          return;
        }
        expect(run.suite).toBe("ran");
        expect(run.scenarios).toHaveLength(1);
        expect(run.scenarios[0].id).toBe("suite/cli");
        expect(run.scenarios[0].detail).toMatch(/^\d+ pass, 0 fail$/);
        expect(Number(run.scenarios[0].detail.split(" ")[0])).toBeGreaterThan(10);
        // test/cli.test.ts asserts that `aether info` reports the variant under test (AETHER_VARIANT) as the
        // library in use: passing under this run means every aether process it started loaded the asan library.
        expect(readFileSync(run.scenarios[0].output, "utf8")).toContain("(pass) info > --json reports the library");
        expect(run.findings).toEqual([]);
        expect(r.code).toBe(0);
      } finally {
        rmSync(r.out, { recursive: true, force: true });
      }
    },
    BUILDS,
  );
});

// ------------------------------------------------------------------------------------------ reports ---
const ASAN = `=================================================================
==18531==ERROR: AddressSanitizer: heap-buffer-overflow on address 0x60a00000007c at pc 0x7f86721e2c79 bp 0x7ffd0cf5b630 sp 0x7ffd0cf5b628
READ of size 4 at 0x60a00000007c thread T0
    #0 0x7f86721e2c78 in norm2_scalar /repo/csrc/qstate_kernels.h:46
    #1 0x7f86721d8d1f in do_normalize /repo/csrc/qstate.c:250
    #2 0x564924e0a446 in main test/fixtures/sanitize/heap_overflow.c:16
    #3 0x7f8671845249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58

0x60a00000007c is located 0 bytes to the right of 60-byte region [0x60a000000040,0x60a00000007c)
allocated by thread T0 here:
    #0 0x7f8671ab7ffd in __interceptor_posix_memalign ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:145
    #1 0x564924e0a2de in main test/fixtures/sanitize/heap_overflow.c:11

SUMMARY: AddressSanitizer: heap-buffer-overflow /repo/csrc/qstate_kernels.h:46 in norm2_scalar
Shadow bytes around the buggy address:
  0x0c147fff7fb0: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
`;

const TSAN = `==================
WARNING: ThreadSanitizer: data race (pid=18550)
  Read of size 8 at 0x7b9400000000 by thread T1:
    #0 _mm512_load_ps /usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:422 (libaether-tsan.so+0x11acf)
    #1 scale_avx512 /repo/csrc/qstate_kernels.h:79 (libaether-tsan.so+0x11acf)
    #2 aether_qstate_scale /repo/csrc/qstate.c:297 (libaether-tsan.so+0xe318)

  Previous write of size 8 at 0x7b9400000000 by thread T2:
    #0 _mm512_store_ps /usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:448 (libaether-tsan.so+0x11b2b)

SUMMARY: ThreadSanitizer: data race /usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:422 in _mm512_load_ps
==================
==================
WARNING: ThreadSanitizer: data race (pid=18550)
  Read of size 8 at 0x7b9400001100 by thread T1:
    #0 _mm512_load_ps /usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:422 (libaether-tsan.so+0x11aee)
    #1 scale_avx512 /repo/csrc/qstate_kernels.h:79 (libaether-tsan.so+0x11aee)

SUMMARY: ThreadSanitizer: data race /usr/lib/gcc/x86_64-linux-gnu/12/include/avx512fintrin.h:422 in _mm512_load_ps
==================
ThreadSanitizer: reported 2 warnings
`;

const MSAN = `==18605==WARNING: MemorySanitizer: use-of-uninitialized-value
    #0 0x7fb89b4d5b99 in norm2_avx512 /repo/csrc/qstate_kernels.h:58:3
    #1 0x7fb89b4cd44e in do_normalize /repo/csrc/qstate.c:250:21
    #5 0x5624a79142c0 in _start (/tmp/uninit_read+0x1e2c0) (BuildId: 993a6da762e51b0cf4c3e26db1344cc0da978de3)

  Uninitialized value was created by a heap allocation
    #0 0x5624a7940f73 in posix_memalign (/tmp/uninit_read+0x4af73) (BuildId: 993a6da762e51b0cf4c3e26db1344cc0da978de3)

SUMMARY: MemorySanitizer: use-of-uninitialized-value /repo/csrc/qstate_kernels.h:58:3 in norm2_avx512
Exiting
`;

const UBSAN = `test/fixtures/sanitize/signed_overflow.c:11:13: runtime error: signed integer overflow: 1048576 * 4096 cannot be represented in type 'int'
    #0 0x5616bb4971c6 in main test/fixtures/sanitize/signed_overflow.c:11
    #1 0x7fd052845249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58
/repo/csrc/layout.c:40:7: runtime error: shift exponent 64 is too large for 64-bit type 'long unsigned int'
`;

const LSAN = `
=================================================================
==20411==ERROR: LeakSanitizer: detected memory leaks

Direct leak of 16 byte(s) in 1 object(s) allocated from:
    #0 0x7fdb2a2b89cf in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x55979779519e in main /repo/test/native/unit_alloc.c:3
    #2 0x7fdb2a045249 in __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58

Indirect leak of 7 byte(s) in 1 object(s) allocated from:
    #0 0x7fdb2a2b89cf in __interceptor_malloc ../../../../src/libsanitizer/asan/asan_malloc_linux.cpp:69
    #1 0x5597977951ac in keep /tmp/elsewhere.c:9

SUMMARY: AddressSanitizer: 23 byte(s) leaked in 2 allocation(s).
`;

const CHECK = `FATAL: ThreadSanitizer CHECK failed: ../../../../src/libsanitizer/sanitizer_common/sanitizer_deadlock_detector.h:67 "((n_all_locks_)) < (((sizeof(all_locks_with_contexts_)/sizeof((all_locks_with_contexts_)[0]))))" (0x40, 0x40) (tid=5)
    #0 __tsan::CheckUnwind() ../../../../src/libsanitizer/tsan/tsan_rtl.cpp:627 (libtsan.so.2+0x9ac6d)
`;

describe("reports: every format, the first frame in our code, repeats folded", () => {
  const parse = (text: string) => parseReports(text, "log", "/repo");

  test("ASan: kind from the report, frame in csrc (not the interceptor), headline without pc/bp/sp", () => {
    const [r, ...rest] = parse(ASAN);
    expect(rest).toEqual([]);
    expect(r!.sanitizer).toBe("asan");
    expect(r!.kind).toBe("heap-buffer-overflow");
    expect(whereOf(r!.frame)).toBe("csrc/qstate_kernels.h:46 in norm2_scalar");
    expect(r!.headline).toBe("AddressSanitizer: heap-buffer-overflow on address 0x60a00000007c");
    expect(r!.text).toContain("SUMMARY: AddressSanitizer");
  });

  test("TSan: two reports of one race fold into one finding counted twice; the intrinsic header is skipped", () => {
    const reports = parse(TSAN);
    expect(reports).toHaveLength(2);
    expect(reports.map((r) => [r.kind, whereOf(r.frame)])).toEqual([
      ["data race", "csrc/qstate_kernels.h:79 in scale_avx512"],
      ["data race", "csrc/qstate_kernels.h:79 in scale_avx512"],
    ]);
    const f = dedupe(reports.map((report) => ({ report, scenario: "native x" })));
    expect(f).toHaveLength(1);
    expect(f[0]!.count).toBe(2);
    expect(f[0]!.headline).toBe("ThreadSanitizer: data race");
  });

  test("MSan, UBSan (two errors, classified), LSan (one finding per leak), a runtime CHECK failure", () => {
    expect(parse(MSAN).map((r) => [r.sanitizer, r.kind, whereOf(r.frame)])).toEqual([
      ["msan", "use-of-uninitialized-value", "csrc/qstate_kernels.h:58 in norm2_avx512"],
    ]);
    expect(parse(UBSAN).map((r) => [r.sanitizer, r.kind, whereOf(r.frame)])).toEqual([
      ["ubsan", "signed-integer-overflow", "test/fixtures/sanitize/signed_overflow.c:11 in main"],
      ["ubsan", "shift", "(no stack)"],
    ]);
    expect(parse(LSAN).map((r) => [r.kind, r.headline, whereOf(r.frame)])).toEqual([
      ["direct leak", "Direct leak of 16 byte(s) in 1 object(s)", "test/native/unit_alloc.c:3 in main"],
      ["indirect leak", "Indirect leak of 7 byte(s) in 1 object(s)", "/tmp/elsewhere.c:9 in keep"],
    ]);
    const [c] = parse(CHECK);
    expect(c!.sanitizer).toBe("tsan");
    expect(c!.kind).toBe("runtime CHECK failure");
    expect(c!.headline).toContain("sanitizer_deadlock_detector.h:67");
  });

  test("several reports in one log, and frames of every shape", () => {
    expect(parse(`${ASAN}\n${MSAN}\n${UBSAN}`).map((r) => r.sanitizer)).toEqual(["asan", "msan", "ubsan", "ubsan"]);
    expect(parse("all good\nnothing to see\n")).toEqual([]);
    expect(parseFrame("    #3 0x5624a79142c0 in _start (/tmp/x+0x1e2c0) (BuildId: 993a6d)")).toEqual({ index: 3, function: "_start", module: "/tmp/x+0x1e2c0" });
    expect(parseFrame("    #3 <null> <null> (0x7f25bf22fce7)")).toEqual({ index: 3, function: "", module: "0x7f25bf22fce7" });
    expect(parseFrame("    #1 0x7f in __sanitizer::CheckFailed(char const*, int) ../x/sanitizer_termination.cpp:86")).toMatchObject({
      function: "__sanitizer::CheckFailed(char const*, int)",
      file: "../x/sanitizer_termination.cpp",
      line: 86,
    });
  });
});

describe("suppressions and scenarios", () => {
  test("the project's file parses, and holds no suppression", () => {
    expect(existsSync(SUPPRESSIONS_FILE)).toBe(true);
    expect(loadSuppressions()).toEqual([]);
  });

  test("an entry needs a sanitizer, a type:pattern and a reason; MSan has none", () => {
    expect(parseSuppressions("tsan race:libfoo.so  # libfoo is not instrumented\n\n# a comment\n")).toEqual([
      { sanitizer: "tsan", rule: "race:libfoo.so", reason: "libfoo is not instrumented", line: 1 },
    ]);
    expect(() => parseSuppressions("tsan race:libfoo.so\n")).toThrow(/has no reason/);
    expect(() => parseSuppressions("race:libfoo.so # why\n")).toThrow(/expected '<asan\|lsan\|ubsan\|tsan> <type>:<pattern>/);
    expect(() => parseSuppressions("msan fun:foo # why\n")).toThrow(/MemorySanitizer has no run-time suppressions/);
  });

  test("a suppression without a reason stops aether sanitize (exit 2, one line)", () => {
    const saved = readFileSync(SUPPRESSIONS_FILE, "utf8");
    const dir = mkdtempSync(join(tmpdir(), "aether-supp-"));
    try {
      writeFileSync(SUPPRESSIONS_FILE, `${saved}asan interceptor_via_fun:foo\n`);
      const r = aether(["sanitize", "--asan", "--quick", "--out", dir]);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
      expect(r.stderr).toContain("has no reason");
    } finally {
      writeFileSync(SUPPRESSIONS_FILE, saved);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("every native driver exists; ids are unique; --only matches whole id segments; the suite is every test file", () => {
    for (const s of NATIVE) for (const f of s.sources) expect(existsSync(join(ROOT, f))).toBe(true);
    expect(new Set(NATIVE.map((s) => s.id)).size).toBe(NATIVE.length);
    expect(matches("alloc/unit", ["alloc"])).toBe(true);
    expect(matches("alloc/unit", ["alloc/unit"])).toBe(true);
    expect(matches("allocator/unit", ["alloc"])).toBe(false);
    expect(matches("suite/alloc", ["alloc"])).toBe(false);
    expect(suiteFiles()).toContain("test/sanitize.test.ts");
    expect(suiteFiles().every((f) => f.startsWith("test/") && f.endsWith(".test.ts"))).toBe(true);
  });

  test("--list names every scenario with its arguments", () => {
    const r = aether(["sanitize", "--list", "--json"]);
    expect(r.code).toBe(0);
    const ids = JSON.parse(r.stdout).map((x: { id: string }) => x.id);
    for (const s of PRESENT) expect(ids).toContain(s.id);
    for (const s of NATIVE.filter((x) => !PRESENT.includes(x))) expect(ids).not.toContain(s.id);
    expect(ids).toContain("suite/sanitize");
  });
});

describe("usage and missing tools", () => {
  test.each([
    [["--driver", "/nonexistent/x.c"], /--driver \/nonexistent\/x\.c: \/nonexistent\/x\.c does not exist/],
    [["--driver", "test/fixtures/sanitize/README"], /expected a C file/],
    [["--driver", "lsan:test/fixtures/sanitize/data_race.c"], /the sanitizer before ':' must be asan, ubsan, tsan or msan/],
    [["--only", "no-such-scenario"], /--only no-such-scenario matches no scenario/],
    [["--asan", "--driver", "msan:test/fixtures/sanitize/uninit_read.c"], /msan is not part of this run \(add --msan\)/],
    [["--bogus"], /Unsupported option name/],
  ])("%j is a usage error: exit 2, one line", (args, pattern) => {
    const r = aether(["sanitize", ...(args as string[])]);
    expect(r.code).toBe(2);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(pattern as RegExp);
  });

  test("inside a sanitizer run of the suite, a nested suite run is refused", () => {
    const r = aether(["sanitize", "--asan"], { env: { AETHER_SANITIZE_SUITE: "asan" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("only --drivers-only or --quick may run here");
  });

  test("a compiler that is not there is said in one line: a named sanitizer fails, an unnamed one is skipped", () => {
    // No clang, no gcc on this PATH (Bun itself is started by its full path).
    const env = { PATH: "/nonexistent" };
    const named = sanitizeJson(["--msan", "--drivers-only"], env);
    expect(named.code).toBe(1);
    expect(named.json.sanitizers[0].verdict).toBe("fail");
    expect(named.json.sanitizers[0].reason).toBe("MemorySanitizer needs clang, which is not installed (apt-get install -y clang-16 libclang-rt-16-dev)");
    const all = sanitizeJson(["--drivers-only", "--only", "alloc/unit"], env);
    expect(all.json.sanitizers.map((x: { verdict: string }) => x.verdict)).toEqual(["skip", "skip", "skip", "skip"]);
    expect(all.json.sanitizers[0].reason).toBe("AddressSanitizer needs gcc, which is not installed (apt-get install -y gcc)");
    expect(all.code).toBe(1); // nothing could run: not a pass
    for (const d of [named.out, all.out]) rmSync(d, { recursive: true, force: true });
  });
});
