// run.bench.ts: wall time of real programs under the safe allocator against plain glibc, in the same run.
//   bun bench/run.bench.ts [--reps 7] [--quick] [--json] [--no-others]
// Programs: Debian's python3 (a text/JSON/dict workload), sqlite3 (200k rows, an index, updates), git (log -p
// and fsck on a generated repository), gcc (compiling a libaether source at -O2), and Bun running a script.
// Configurations, alternated within each repetition:
//   glibc                plain run
//   preload              LD_PRELOAD=libaether-preload.so, all checks on (guards, registry, quarantine, walk at exit)
//   aether run           the same through `aether run --leaks off --` (adds the CLI's start and the report)
//   redzone 64 / 4096    wider guards (AETHER_REDZONE)
//   quarantine 0 / 16m   no quarantine / a large one (AETHER_QUARANTINE_BYTES)
//   backtrace            a stack captured at every allocation and free (AETHER_BACKTRACE=1)
//   electric-fence, duma, valgrind   where installed (one repetition: they are slow), unless --no-others
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { which } from "../cli/lib/tools.ts";
import { alternate, arg, fmt, jsonOut, quick, ratio, type Summary } from "./lib.ts";

const ROOT = resolve(import.meta.dir, "..");
const PRELOAD = join(ROOT, "build", "release", "libaether-preload.so");
const CLI = join(ROOT, "cli", "aether.ts");
const reps = arg("--reps", quick ? 3 : 7);
const others = !process.argv.includes("--no-others");
const log = (s: string) => jsonOut || console.log(s);

if (!existsSync(PRELOAD)) {
  console.error(`run.bench: ${PRELOAD} is missing: run \`npm install\` first`);
  process.exit(1);
}

// ---- workloads (set up once, not timed)
const tmp = mkdtempSync(join(tmpdir(), "aether-runbench-"));
const scale = quick ? 1 : 4;
const py = join(tmp, "work.py");
writeFileSync(
  py,
  `import json, re, collections, hashlib
text = open(${JSON.stringify(join(ROOT, "README.md"))}).read() * ${20 * scale}
words = collections.Counter(re.findall(r"\\w+", text.lower()))
data = [{"w": w, "n": n, "h": hashlib.sha256(w.encode()).hexdigest()} for w, n in words.most_common()]
print(len(json.dumps(data)), sum(len(str(i) * 3) for i in range(${100000 * scale})))
d = {str(i): [i] * 5 for i in range(${100000 * scale})}
print(len(d), len(sorted(d)))
`,
);
const sql = `create table t(a integer primary key, b text, c real);
with recursive n(i) as (select 1 union all select i+1 from n where i < ${50000 * scale})
insert into t select i, printf('%08X%08X', i * 2654435761 % 4294967296, i), i * 0.5 from n;
create index tb on t(b);
select count(*), sum(c) from t;
update t set b = lower(b) where a % 3 = 0;
select count(*) from t where b = lower(b);
select b from t order by c desc limit 3;
`;
const repo = join(tmp, "repo");
mkdirSync(repo);
const g = (args: string[]) => Bun.spawnSync({ cmd: ["git", "-c", "user.name=b", "-c", "user.email=b@b", ...args], cwd: repo });
g(["init", "-q"]);
for (let i = 0; i < (quick ? 40 : 150); i++) {
  writeFileSync(join(repo, `f${i % 13}.txt`), Array.from({ length: 50 + i }, (_, k) => `line ${k} of commit ${i}\n`).join(""));
  g(["add", "."]);
  g(["commit", "-q", "-m", `commit ${i}`]);
}
const bunScript = join(tmp, "work.ts");
writeFileSync(
  bunScript,
  `const m = new Map(); for (let i = 0; i < ${200000 * scale}; i++) m.set("k" + i, { i, s: String(i).repeat(3) });
let t = 0; for (const v of m.values()) t += v.s.length; console.log(m.size, t);`,
);

interface Workload {
  name: string;
  cmd: string[];
  cwd?: string;
  stdin?: string;
}
const WORKLOADS: Workload[] = [
  { name: "python3", cmd: ["/usr/bin/python3", py] },
  { name: "sqlite3", cmd: ["sqlite3", ":memory:"], stdin: sql },
  { name: "git log -p", cmd: ["git", "log", "-p", "--stat"], cwd: repo },
  { name: "git fsck", cmd: ["git", "fsck", "--no-progress", "--full"], cwd: repo },
  { name: "gcc -O2", cmd: ["gcc", "-O2", "-D_GNU_SOURCE", `-I${join(ROOT, "csrc")}`, "-c", join(ROOT, "csrc", "safe_alloc.c"), "-o", join(tmp, "x.o")] },
  { name: "bun", cmd: [process.execPath, bunScript] },
].filter((w) => which(w.cmd[0]!.split("/").pop()!) || existsSync(w.cmd[0]!));

function timed(w: Workload, env: Record<string, string>, prefix: string[] = []): number {
  const t0 = performance.now();
  const r = Bun.spawnSync({
    cmd: [...prefix, ...w.cmd],
    cwd: w.cwd ?? tmp,
    env: { ...process.env, ...env } as Record<string, string>,
    stdin: w.stdin !== undefined ? Buffer.from(w.stdin) : "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${prefix.join(" ")} ${w.cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().slice(-300)}`);
  return ms;
}

const pre = (extra: Record<string, string> = {}) => ({ LD_PRELOAD: PRELOAD, ...extra });
const CONFIGS: Record<string, (w: Workload) => number> = {
  glibc: (w) => timed(w, {}),
  preload: (w) => timed(w, pre()),
  "aether run": (w) => timed(w, {}, [process.execPath, CLI, "run", "--leaks", "off", "--"]),
  "redzone 64": (w) => timed(w, pre({ AETHER_REDZONE: "64" })),
  "redzone 4096": (w) => timed(w, pre({ AETHER_REDZONE: "4096" })),
  "quarantine 0": (w) => timed(w, pre({ AETHER_QUARANTINE_BYTES: "0" })),
  "quarantine 16m": (w) => timed(w, pre({ AETHER_QUARANTINE_BYTES: "16m" })),
  backtrace: (w) => timed(w, pre({ AETHER_BACKTRACE: "1" })),
};

const OTHERS: Record<string, (w: Workload) => number> = {};
const efence = ["/usr/lib/libefence.so.0", "/usr/lib/x86_64-linux-gnu/libefence.so.0"].find(existsSync);
const duma = ["/usr/lib/libduma.so.0", "/usr/lib/x86_64-linux-gnu/libduma.so.0"].find(existsSync);
const valgrind = which("valgrind");
if (others && efence) OTHERS["electric-fence"] = (w) => timed(w, { LD_PRELOAD: efence });
if (others && duma) OTHERS.duma = (w) => timed(w, { LD_PRELOAD: duma, DUMA_DISABLE_BANNER: "1" });
if (others && valgrind) OTHERS.valgrind = (w) => timed(w, {}, [valgrind, "-q", "--error-exitcode=0"]);

const results: Record<string, Record<string, { ms: Summary; ratio: Summary } | { ms: number; ratio: number } | { error: string }>> = {};
log(`wall time, median [min-max] of ${reps} alternating runs; ratio = median of per-run ratios to glibc`);
for (const w of WORKLOADS) {
  const s = alternate(
    reps,
    Object.fromEntries(Object.entries(CONFIGS).map(([k, f]) => [k, () => f(w)])) as Record<string, () => number>,
  );
  const row: (typeof results)[string] = {};
  log(`\n${w.name}`);
  for (const k of Object.keys(CONFIGS)) {
    const r = ratio(s[k]!, s.glibc!);
    row[k] = { ms: s[k]!, ratio: r };
    log(`  ${k.padEnd(16)}${fmt(s[k]!, 0, " ms").padEnd(26)}${k === "glibc" ? "" : fmt(r, 2, "x")}`);
  }
  for (const [k, f] of Object.entries(OTHERS)) {
    try {
      const base = s.glibc!.median;
      const ms = f(w);
      row[k] = { ms, ratio: ms / base };
      log(`  ${k.padEnd(16)}${`${ms.toFixed(0)} ms (1 run)`.padEnd(26)}${(ms / base).toFixed(2)}x`);
    } catch (e) {
      row[k] = { error: (e as Error).message.split("\n")[0]! };
      log(`  ${k.padEnd(16)}failed: ${(e as Error).message.split("\n")[0]}`);
    }
  }
  results[w.name] = row;
}
rmSync(tmp, { recursive: true, force: true });
if (jsonOut) console.log(JSON.stringify({ reps, results }, null, 2));

