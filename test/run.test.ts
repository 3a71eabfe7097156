// `aether run -- <program>`: heap bugs in small C programs are caught with the right kind at the right address,
// their clean twins run untouched, and real programs nobody here wrote behave exactly as without us.
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { aether, ROOT, runCmd } from "./helpers/run.ts";

const FIXTURES = join(ROOT, "test", "fixtures");
const BIN = join(ROOT, "build", "test-bin", "fixtures");

function compile(name: string, clean: boolean): string {
  const out = join(BIN, `${name}${clean ? "-clean" : ""}`);
  const r = runCmd(["gcc", "-O0", "-g", "-fno-omit-frame-pointer", "-Wno-free-nonheap-object", "-Wno-use-after-free",
    ...(clean ? ["-DCLEAN"] : []), join(FIXTURES, `${name}.c`), "-o", out]);
  if (r.code !== 0) throw new Error(`gcc ${name}: ${r.stderr}`);
  return out;
}

interface Report {
  exitCode: number;
  totalErrors: number;
  errorsByKind: Record<string, number>;
  mainReported: boolean;
  processes: {
    main: boolean;
    events: { kind: string; address: string; allocStack: { function?: string; location?: string }[] }[];
    leaks: { count: number; bytes: number; largest: { address: string; size: number; allocStack: { function?: string; location?: string }[] }[] };
  }[];
}

function runUnder(exe: string, extra: string[] = []): { code: number; stdout: string; stderr: string; report: Report } {
  const r = aether(["run", "--json", "--backtrace", ...extra, "--", exe]);
  const start = r.stderr.lastIndexOf("\n{\n") >= 0 ? r.stderr.lastIndexOf("\n{\n") + 1 : r.stderr.indexOf("{\n");
  const report = JSON.parse(r.stderr.slice(start)) as Report;
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.slice(0, start), report };
}

beforeAll(() => mkdirSync(BIN, { recursive: true }));

/** Compile a one-off C program written in the test itself into build/test-bin/fixtures/. */
function compileSource(name: string, source: string, flags: string[] = []): string {
  const src = join(BIN, `${name}.c`);
  writeFileSync(src, source);
  const exe = join(BIN, name);
  const r = runCmd(["gcc", "-O0", ...flags, src, "-o", exe]);
  if (r.code !== 0) throw new Error(`gcc ${name}: ${r.stderr}`);
  return exe;
}

const BUGS: [string, string][] = [
  ["overflow_one", "buffer-overflow"],
  ["overflow_many", "buffer-overflow"],
  ["underflow", "buffer-underflow"],
  ["double_free", "double-free"],
  ["free_stack", "invalid-free"],
  ["free_interior", "invalid-free"],
  ["realloc_freed", "invalid-realloc"],
  ["write_after_free", "use-after-free"],
  ["overflow_unfreed", "buffer-overflow"],
];

describe("heap bugs are caught, their clean twins are not touched", () => {
  test.each(BUGS)("%s: reported as %s at the program's own pointer", (name, kind) => {
    const { code, stdout, stderr, report } = runUnder(compile(name, false));
    const ptr = stdout.trim();
    expect(code).toBe(0);
    expect(report.totalErrors).toBe(1);
    expect(report.errorsByKind[kind]).toBe(1);
    const main = report.processes.find((p) => p.main)!;
    expect(main.events).toHaveLength(1);
    expect(main.events[0]!.kind).toBe(kind);
    expect(BigInt(main.events[0]!.address)).toBe(BigInt(ptr));
    // the diagnostic line appeared on the program's stderr as it happened
    expect(stderr).toMatch(/^AETHER MEMORY ERROR: /m);
    // with backtraces, a block the program allocated is traced back to its main()
    if (kind !== "invalid-free")
      expect(main.events[0]!.allocStack.some((f) => f.function === "main" && f.location?.includes(`${name}.c`))).toBe(true);
  });

  test.each(BUGS.map(([n]) => [n]).concat([["leak"]]))("%s, clean twin: no error, same output and exit code as a plain run", (name) => {
    const exe = compile(name, true);
    const plain = runCmd([exe]);
    const { code, stdout, stderr, report } = runUnder(exe);
    expect(report.totalErrors).toBe(0);
    expect(stderr).not.toContain("AETHER MEMORY ERROR");
    expect(code).toBe(plain.code);
    // pointers differ between allocators; the shape of the output does not
    expect(stdout.replace(/0x[0-9a-f]+/g, "P")).toBe(plain.stdout.replace(/0x[0-9a-f]+/g, "P"));
  });

  test("a leak is reported with its size and allocation stack, and is not an error", () => {
    const { code, stdout, report } = runUnder(compile("leak", false), ["--leaks", "full"]);
    expect(code).toBe(0);
    expect(report.totalErrors).toBe(0);
    const main = report.processes.find((p) => p.main)!;
    const leak = main.leaks.largest.find((l) => BigInt(l.address) === BigInt(stdout.trim()));
    expect(leak?.size).toBe(4242);
    expect(leak!.allocStack.some((f) => f.function === "main" && f.location?.includes("leak.c"))).toBe(true);
  });

  test("--fail-on-error turns a memory error into exit 1; the program's own code otherwise", () => {
    expect(aether(["run", "--fail-on-error", "--", compile("double_free", false)]).code).toBe(1);
    expect(aether(["run", "--fail-on-error", "--", compile("double_free", true)]).code).toBe(0);
    expect(aether(["run", "--", "false"]).code).toBe(1);
    expect(aether(["run", "--", "sh", "-c", "exit 7"]).code).toBe(7);
  });

  test("--abort-on-error stops the program at the error (SIGABRT)", () => {
    const r = aether(["run", "--abort-on-error", "--", compile("double_free", false)]);
    expect(r.code).toBe(128 + 6);
    expect(r.stderr).toContain("was killed by SIGABRT");
  });

  test("--log sends the diagnostics to a file; the human report names the kind and address", () => {
    const dir = mkdtempSync(join(tmpdir(), "aether-log-"));
    try {
      const log = join(dir, "mem.log");
      const r = aether(["run", "--log", log, "--", compile("overflow_one", false)]);
      expect(r.stderr).not.toContain("AETHER MEMORY ERROR");
      expect(require("node:fs").readFileSync(log, "utf8")).toMatch(/^AETHER MEMORY ERROR: Buffer overflow detected at 0x[0-9a-f]+\n$/);
      expect(r.stderr).toContain("1 memory error(s): buffer-overflow 1");
      expect(r.stderr).toContain(`buffer-overflow at ${r.stdout.trim()}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("--redzone widens the guard: an overflow 30 bytes past the end is caught with --redzone 64", () => {
    const exe = compileSource(
      "far",
      `#include <stdlib.h>\n#include <stdio.h>\nint main(void){char *volatile p=malloc(64);p[64+30]=1;printf("%p\\n",(void*)p);free(p);return 0;}\n`,
    );
    const wide = runUnder(exe, ["--redzone", "64"]);
    expect(wide.report.errorsByKind["buffer-overflow"]).toBe(1);
  });

  test("SIGUSR2 asks a running program for a walk of every live block", () => {
    const exe = compileSource(
      "usr2",
      `#include <signal.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <unistd.h>\n` +
        `int main(void){char *volatile p=malloc(16);p[16]=1;raise(SIGUSR2);` +
        `for(int i=0;i<100000;i++)free(malloc(32));fprintf(stderr,"after\\n");_exit(0);}\n`,
    );
    // _exit skips the walk at exit: only the SIGUSR2 walk can have found the overflow, before "after"
    const r = aether(["run", "--", exe]);
    expect(r.stderr).toMatch(/AETHER MEMORY ERROR: Buffer overflow detected at 0x[0-9a-f]+\nafter/);
  });

  test("a write into a block still in the quarantine at exit is reported by the walk at exit", () => {
    const exe = compileSource(
      "uafx",
      `#include <stdlib.h>\n#include <stdio.h>\nint main(void){char *volatile p=malloc(100);free(p);p[5]=1;printf("%p\\n",(void*)p);return 0;}\n`,
      ["-Wno-use-after-free"],
    );
    const { stdout, report } = runUnder(exe);
    expect(report.errorsByKind["use-after-free"]).toBe(1);
    const ev = report.processes.find((p) => p.main)!.events[0]!;
    expect(BigInt(ev.address)).toBe(BigInt(stdout.trim()));
  });

  test("a program that is not there is a usage error", () => {
    const r = aether(["run", "--", "no-such-program-aether"]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe("aether run: program not found on PATH: no-such-program-aether (see 'aether run --help')");
  });
});

describe("the preload keeps the C library's contract", () => {
  test("malloc(0), errno, alignment rules, realloc edge cases, fork while allocating, threads, exit from a thread", () => {
    const exe = join(BIN, "preload_api");
    const cc = runCmd(["gcc", "-std=gnu11", "-O1", "-g", "-Wall", "-Werror", join(ROOT, "test", "native", "preload_api.c"), "-lpthread", "-o", exe]);
    expect(cc.stderr).toBe("");
    // glibc's own allocator is the reference: no sanitizer runtime this process may have been started with
    const plain = runCmd([exe], { env: { LD_PRELOAD: undefined } });
    expect(plain.stdout).toBe("semantics checked\nthreads checked\nfork checked\nok\n");
    const under = runCmd([exe], { env: { LD_PRELOAD: join(ROOT, "build", "release", "libaether-preload.so"), AETHER_EXPECT_PRELOAD: "1" } });
    expect(under.stdout).toBe(plain.stdout);
    expect(under.stderr).toBe("");
    expect(under.code).toBe(0);
    const viaCli = aether(["run", "--json", "--", exe]);
    expect(viaCli.code).toBe(0);
    const report = JSON.parse(viaCli.stderr.slice(viaCli.stderr.indexOf("{\n"))) as Report;
    expect(report.totalErrors).toBe(0);
    // the program and its 20 forked children (which leave through _exit) each reported
    expect(report.processes.length).toBe(21);
  });
});

describe("real programs run unchanged", () => {
  const tmp = mkdtempSync(join(tmpdir(), "aether-real-"));

  function same(cmd: string[], opts: { cwd?: string; stdin?: string; reports?: boolean } = {}) {
    const plain = runCmd(cmd, opts);
    const r = aether(["run", "--json", "--", ...cmd], { cwd: opts.cwd, stdin: opts.stdin });
    const at = r.stderr.lastIndexOf("\n{\n");
    const report = JSON.parse(r.stderr.slice(at + 1)) as Report;
    expect(r.stdout).toBe(plain.stdout);
    expect(r.code).toBe(plain.code);
    expect(report.totalErrors).toBe(0);
    expect(r.stderr).not.toContain("AETHER MEMORY ERROR");
    expect(report.mainReported).toBe(opts.reports ?? true);
    return { plain, r };
  }

  test("Debian's python3 running a non-trivial script", () => {
    const script = join(tmp, "work.py");
    writeFileSync(
      script,
      `import json, re, collections, hashlib, sqlite3
words = collections.Counter(re.findall(r"\\w+", open("${join(ROOT, "README.md")}").read().lower()))
data = [{"w": w, "n": n, "h": hashlib.sha256(w.encode()).hexdigest()} for w, n in words.most_common(200)]
db = sqlite3.connect(":memory:")
db.execute("create table t(w text, n int, h text)")
db.executemany("insert into t values (:w, :n, :h)", data)
print(db.execute("select count(*), sum(n) from t").fetchone())
print(json.dumps(sorted(data, key=lambda d: d["h"])[:3]))
print(sum(len(str(i) * 3) for i in range(200000)))
`,
    );
    expect(existsSync("/usr/bin/python3")).toBe(true);
    same(["/usr/bin/python3", script]);
  });

  test("sqlite3 running a workload", () => {
    const sql = `create table t(a integer primary key, b text, c real);
with recursive n(i) as (select 1 union all select i+1 from n where i < 20000)
insert into t select i, hex(randomblob(16)), i * 0.5 from n;
create index tb on t(b);
select count(*), sum(c), max(length(b)) from t;
select a from t where b like 'A%' order by a limit 3 offset 0;
update t set b = lower(b) where a % 3 = 0;
select count(*) from t where b = lower(b);
`;
    same(["sqlite3", ":memory:"], { stdin: sql.replace("hex(randomblob(16))", "printf('%08X%08X', i * 2654435761 % 4294967296, i)") });
  });

  test("git on a repository", () => {
    const repo = join(tmp, "repo");
    mkdirSync(repo);
    const git = (args: string[]) => runCmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", ...args], { cwd: repo });
    git(["init", "-q"]);
    for (let i = 0; i < 30; i++) {
      writeFileSync(join(repo, `f${i % 7}.txt`), `line ${i}\n`.repeat(i + 1));
      git(["add", "."]);
      git(["commit", "-q", "-m", `commit ${i}`]);
    }
    same(["git", "log", "--stat", "--format=%s"], { cwd: repo });
    same(["git", "diff", "HEAD~10", "--numstat"], { cwd: repo });
    same(["git", "fsck", "--no-progress"], { cwd: repo });
  });

  test("gcc compiling a C file", () => {
    const out = join(tmp, "alloc_threads.o");
    same(["gcc", "-O2", "-c", join(ROOT, "test", "native", "alloc_threads.c"), `-I${join(ROOT, "csrc", "include")}`, "-o", out]);
    expect(existsSync(out)).toBe(true);
  });

  test("bun itself running a script", () => {
    const script = join(tmp, "b.ts");
    writeFileSync(script, `const m = new Map(); for (let i = 0; i < 100000; i++) m.set("k" + i, { i }); console.log(m.size, JSON.stringify([...m.values()].slice(0, 2)));`);
    // Bun leaves through a raw exit_group system call, past every libc exit path, so it writes no report; its
    // allocations through libc still go through the preload, and any error would be printed as it happens.
    same([process.execPath, script], { reports: false });
    const human = aether(["run", "--", process.execPath, script]);
    expect(human.stderr).toContain("no report from bun.exe itself");
  });
});
