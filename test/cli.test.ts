// The aether command line as users run it: help, version, info, check, run, and the error policy (one line,
// exit 2 for usage mistakes, never a stack trace).
import { describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pkg from "../package.json" with { type: "json" };
import { aether, ROOT } from "./helpers/run.ts";

describe("help and version", () => {
  test("--version prints the package version", () => {
    const r = aether(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(pkg.version);
  });

  test("--help lists every command", () => {
    const r = aether(["--help"]);
    expect(r.code).toBe(0);
    for (const c of ["check", "info", "build", "run"]) expect(r.stdout).toContain(`aether ${c}`);
  });

  test.each(["check", "info", "build", "run"])("aether %s --help describes the command", (c) => {
    const r = aether([c, "--help"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`$ aether ${c}`);
    expect(r.stdout.toLowerCase()).toContain("examples");
  });
});

describe("usage errors: one line, exit 2", () => {
  const cases: [string, string[], RegExp][] = [
    ["unknown command", ["frobnicate"], /^aether: /],
    ["unknown flag", ["info", "--frob"], /^aether: .*--frob/],
    ["bad enum value", ["build", "--variant", "fast"], /^aether: /],
    ["missing script", ["run", "does-not-exist.ts"], /^aether run: script not found: does-not-exist\.ts/],
    ["not a script, not on PATH", ["run", "README.md"], /^aether run: program not found on PATH: README\.md/],
    ["not executable", ["run", "./README.md"], /^aether run: \.\/README\.md is not executable/],
    ["unknown component", ["check", "--only", "nope"], /^aether check: unknown component 'nope'/],
    ["nothing after --", ["run", "--"], /^aether run: missing or misplaced arguments \(see 'aether run --help'\)/],
    ["a directory as the program", ["run", "--", "/tmp"], /^aether run: \/tmp is a directory, not a program/],
    ["a command group alone", ["pools"], /^aether pools: give one of: pools demo, pools replay/],
    ["run: an unwritable --report", ["run", "--report", "/no/such/dir/r.json", "--", "true"], /^aether run: --report \/no\/such\/dir\/r\.json: ENOENT/],
  ];
  test.each(cases)("%s", (_name, args, pattern) => {
    const r = aether(args);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(pattern);
    expect(r.stderr).not.toContain("    at ");
  });
});

describe("library selection", () => {
  test("a sanitizer variant that is missing, or loaded without its runtime, says what to do: exit 1, one line", () => {
    // ASan must be the process's first library: without LD_PRELOAD its runtime would abort the process instead
    const built = existsSync(join(ROOT, "build", "asan", "libaether-asan.so"));
    const r = aether(["info"], { env: { AETHER_VARIANT: "asan", AETHER_LIB: undefined, LD_PRELOAD: undefined } });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    if (built)
      expect(r.stderr).toMatch(/cannot load .*libaether-asan\.so: its runtime is not loaded \(the asan library needs LD_PRELOAD=\$\(gcc -print-file-name=libasan\.so\)\)/);
    else
      expect(r.stderr).toMatch(/libaether \(asan\) not found at .*build\/asan\/libaether-asan\.so: run `npx aether build --variant asan`/);
  });

  test("the msan variant is refused in Bun with the reason (MemorySanitizer needs the whole process instrumented)", () => {
    const built = existsSync(join(ROOT, "build", "msan", "libaether-msan.so"));
    const r = aether(["info"], { env: { AETHER_VARIANT: "msan", AETHER_LIB: undefined, LD_PRELOAD: undefined } });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(built ? /cannot load .*libaether-msan\.so into Bun: MemorySanitizer needs every line of the process instrumented/ : /libaether \(msan\) not found/);
  });

  test("AETHER_LIB pointing nowhere is named", () => {
    const r = aether(["info"], { env: { AETHER_LIB: "/nonexistent/libaether.so" } });
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe("aether info: libaether (custom) not found at /nonexistent/libaether.so: check AETHER_LIB");
  });

  test("an unknown AETHER_VARIANT is named", () => {
    const r = aether(["info"], { env: { AETHER_VARIANT: "turbo" } });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("AETHER_VARIANT=turbo is not one of release, asan, ubsan, tsan, msan");
  });
});

describe("info", () => {
  test("--json reports the library, the CPU and the tools", () => {
    const r = aether(["info", "--json"]);
    expect(r.code).toBe(0);
    const info = JSON.parse(r.stdout);
    // the variant under test (aether sanitize runs this suite against the sanitizer builds)
    const variant = process.env.AETHER_VARIANT ?? "release";
    const file = variant === "release" ? "libaether.so" : `libaether-${variant}.so`;
    expect(info.library.path).toBe(process.env.AETHER_LIB ?? join(ROOT, "build", variant, file));
    expect(info.library.variant).toBe(variant);
    expect(info.library.version).toBe(pkg.version);
    expect(info.library.flags).toContain("-fvisibility=hidden");
    expect(info.library.compiler).toMatch(/GNU|Clang/);
    expect(Object.keys(info.cpu.features)).toEqual(["sse4.2", "avx2", "fma", "avx512f", "avx512bw", "avx512vl"]);
    // the probe must agree with the kernel's view of the CPU
    const flags = require("node:fs").readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)?.[1] ?? "";
    expect(info.cpu.features.avx2).toBe(/\bavx2\b/.test(flags));
    expect(info.cpu.features.avx512f).toBe(/\bavx512f\b/.test(flags));
    expect(info.cpu.features["sse4.2"]).toBe(/\bsse4_2\b/.test(flags));
    expect(info.bun).toBe(Bun.version);
    expect(info.tools).toHaveProperty("clang");
    expect(info.tools.runtimes).toHaveProperty("asan");
  });

  test("plain output has no colour codes when NO_COLOR is set", () => {
    const r = aether(["info"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("\x1b[");
    expect(r.stdout).toContain("libaether.so");
  });
});

describe("check", () => {
  test("the allocator check passes and --json carries its figures", () => {
    const r = aether(["check", "--only", "alloc", "--json"]);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.verdict).toBe("pass");
    const alloc = out.results.find((x: { id: string }) => x.id === "alloc");
    expect(alloc.verdict).toBe("pass");
    expect(alloc.data.errorKindsCaught).toBe(6);
    expect(alloc.data.pairNs).toBeGreaterThan(0);
    expect(r.stderr).toBe("");
  });
});

describe("run (script mode)", () => {
  test("options are validated and applied; --fail-on-error, --leaks off, --json and --report", () => {
    const dir = mkdtempSync(join(tmpdir(), "aether-run-"));
    try {
      const script = join(dir, "opts.ts");
      writeFileSync(
        script,
        `import { memory } from "aether-memory";
         console.log("redzone", memory.getOption("redzone"), "quarantine", memory.getOption("quarantine_bytes"));
         const p = memory.safeMalloc(10);
         memory.safeFree(p);
         memory.safeFree(p);
         memory.safeMalloc(33);`,
      );
      for (const bad of [["--quarantine", "abc"], ["--redzone", "5"], ["--log", join(dir, "no", "such", "x.log")]]) {
        const r = aether(["run", ...bad, script]);
        expect(r.code).toBe(2);
        expect(r.stderr.trim().split("\n")).toHaveLength(1);
        expect(r.stdout).toBe("");
      }
      const log = join(dir, "diag.log");
      const set = aether(["run", "--redzone", "64", "--quarantine", "1k", "--log", log, "--leaks", "off", script]);
      expect(set.stdout.trim()).toBe("redzone 64 quarantine 1024");
      expect(set.code).toBe(0); // an error without --fail-on-error, and the leak is not checked
      expect(readFileSync(log, "utf8")).toMatch(/^AETHER MEMORY ERROR: Double free detected at 0x[0-9a-f]+$/m);
      expect(set.stderr).not.toContain("leaked");
      const fail = aether(["run", "--fail-on-error", "--leaks", "off", script]);
      expect(fail.code).toBe(1);
      const report = join(dir, "r.json");
      const j = aether(["run", "--json", "--report", report, script]);
      expect(j.code).toBe(1); // the 33-byte block leaked
      const parsed = JSON.parse(j.stderr.slice(j.stderr.indexOf("{")));
      expect(parsed).toEqual(JSON.parse(readFileSync(report, "utf8")));
      expect(parsed.totalErrors).toBe(1);
      expect(parsed.errorsByKind).toEqual({ "double-free": 1 });
      expect(parsed.processes[0].leaks.count).toBe(1);
      expect(parsed.processes[0].leaks.largest[0].size).toBe(33);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the specification's example exits 0 and reports no leaks", () => {
    const r = aether(["run", "examples/leak-check.ts"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("examples/leak-check.ts finished: 0 memory error(s), 0 leak(s)");
    expect(r.stderr).not.toContain("leaked");
  });

  test("a leaking script prints the leak report and exits 1", () => {
    const r = aether(["run", "examples/leak-check.ts", "leak"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^AETHER MEMORY: 1 allocation\(s\) leaked: 0x[0-9a-f]+ \(100 bytes\); 100 bytes in total$/m);
  });

  test("a script anywhere can import the API; errors are counted; a throw exits 1", () => {
    const dir = mkdtempSync(join(tmpdir(), "aether-run-"));
    try {
      const script = join(dir, "user.ts");
      writeFileSync(
        script,
        `import { memory } from "aether-memory";
         const p = memory.safeMalloc(10);
         memory.safeFree(p);
         memory.safeFree(p);
         console.log("args:", process.argv.slice(2).join(","));
         if (process.argv[2] === "throw") throw new Error("boom");`,
      );
      const ok = aether(["run", script, "a", "b"]);
      expect(ok.stdout.trim()).toBe("args: a,b");
      expect(ok.stderr).toMatch(/^AETHER MEMORY ERROR: Double free detected at 0x[0-9a-f]+$/m);
      expect(ok.stderr).toContain("finished: 1 memory error(s), 0 leak(s)");
      expect(ok.code).toBe(0);
      const bad = aether(["run", script, "throw"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("threw: Error: boom");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
