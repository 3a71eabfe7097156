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
import { existsSync } from "node:fs";
import { which } from "../cli/lib/tools.ts";
import { alternate, arg, fmt, jsonOut, quick, ratio, type Summary } from "./lib.ts";
import { CLI, makeWorkloads, PRELOAD, timed as run, type Workload } from "./workloads.ts";

const reps = arg("--reps", quick ? 3 : 7);
const others = !process.argv.includes("--no-others");
const log = (s: string) => jsonOut || console.log(s);

if (!existsSync(PRELOAD)) {
  console.error(`run.bench: ${PRELOAD} is missing: run \`npm install\` first`);
  process.exit(1);
}

// ---- workloads (set up once, not timed)
const workloads = makeWorkloads(quick ? 1 : 4, quick);
const WORKLOADS = workloads.list;
const timed = (w: Workload, env: Record<string, string>, prefix: string[] = []) => run(w, workloads.dir, env, prefix);

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
workloads.dispose();
if (jsonOut) console.log(JSON.stringify({ reps, results }, null, 2));

