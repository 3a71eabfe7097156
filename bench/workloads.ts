// workloads.ts: real programs for the `aether run` benchmarks (bench/run.bench.ts and the `run` suite of
// `aether bench`): Debian's python3 (a text/JSON/dict workload), sqlite3 (rows, an index, updates), git (log -p
// and fsck on a generated repository), gcc (compiling a libaether source at -O2), and Bun running a script.
// Set up once (not timed); each workload says how to run it, and timed() runs it and returns milliseconds.
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { which } from "../cli/lib/tools.ts";

export const ROOT = resolve(import.meta.dir, "..");
export const PRELOAD = join(ROOT, "build", "release", "libaether-preload.so");
export const CLI = join(ROOT, "cli", "aether.ts");

export interface Workload {
  name: string;
  cmd: string[];
  cwd?: string;
  stdin?: string;
}

export interface Workloads {
  dir: string;
  list: Workload[];
  /** remove the temporary files */
  dispose(): void;
}

/** Build the workloads in a fresh temporary directory; scale 1 is the quick size. Programs that are not
 * installed are left out (see `missing`). */
export function makeWorkloads(scale: number, quick: boolean): Workloads & { missing: string[] } {
  const tmp = mkdtempSync(join(tmpdir(), "aether-runbench-"));
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
  const haveGit = which("git") !== undefined;
  if (haveGit) {
    mkdirSync(repo);
    const g = (args: string[]) => Bun.spawnSync({ cmd: ["git", "-c", "user.name=b", "-c", "user.email=b@b", ...args], cwd: repo });
    g(["init", "-q"]);
    for (let i = 0; i < (quick ? 40 : 150); i++) {
      writeFileSync(join(repo, `f${i % 13}.txt`), Array.from({ length: 50 + i }, (_, k) => `line ${k} of commit ${i}\n`).join(""));
      g(["add", "."]);
      g(["commit", "-q", "-m", `commit ${i}`]);
    }
  }
  const bunScript = join(tmp, "work.ts");
  writeFileSync(
    bunScript,
    `const m = new Map(); for (let i = 0; i < ${200000 * scale}; i++) m.set("k" + i, { i, s: String(i).repeat(3) });
let t = 0; for (const v of m.values()) t += v.s.length; console.log(m.size, t);`,
  );
  const all: Workload[] = [
    { name: "python3", cmd: ["/usr/bin/python3", py] },
    { name: "sqlite3", cmd: ["sqlite3", ":memory:"], stdin: sql },
    { name: "git log -p", cmd: ["git", "log", "-p", "--stat"], cwd: repo },
    { name: "git fsck", cmd: ["git", "fsck", "--no-progress", "--full"], cwd: repo },
    { name: "gcc -O2", cmd: ["gcc", "-O2", "-D_GNU_SOURCE", `-I${join(ROOT, "csrc")}`, "-c", join(ROOT, "csrc", "safe_alloc.c"), "-o", join(tmp, "x.o")] },
    { name: "bun", cmd: [process.execPath, bunScript] },
  ];
  const present = (w: Workload) => which(w.cmd[0]!.split("/").pop()!) !== undefined || existsSync(w.cmd[0]!);
  return {
    dir: tmp,
    list: all.filter(present),
    missing: all.filter((w) => !present(w)).map((w) => `${w.name} (${w.cmd[0]} not found)`),
    dispose: () => rmSync(tmp, { recursive: true, force: true }),
  };
}

/** Run a workload to its end and return its wall time in ms; throws with its stderr's tail if it fails. */
export function timed(w: Workload, dir: string, env: Record<string, string>, prefix: string[] = []): number {
  const t0 = performance.now();
  const r = Bun.spawnSync({
    cmd: [...prefix, ...w.cmd],
    cwd: w.cwd ?? dir,
    env: { ...process.env, ...env } as Record<string, string>,
    stdin: w.stdin !== undefined ? Buffer.from(w.stdin) : "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`${prefix.join(" ")} ${w.cmd.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().slice(-300)}`);
  return ms;
}
