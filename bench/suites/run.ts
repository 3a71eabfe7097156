// run: real programs under the safe allocator (`aether run`), against plain glibc in the same run.
//   <program>/{glibc,preload,aether-run}   wall time: plain; with libaether-preload.so in LD_PRELOAD (every check
//                                           on); through `aether run --leaks off --` (adds the CLI and the report)
// The programs are Debian's python3, sqlite3, git, gcc and Bun itself (bench/workloads.ts); a quick run takes
// python3 and sqlite3 at their small size. `bun bench/run.bench.ts` adds each setting's cost and other tools.
import { existsSync } from "node:fs";
import { alternate } from "../../cli/lib/bench/measure.ts";
import type { Suite } from "../../cli/lib/bench/types.ts";
import { CLI, makeWorkloads, PRELOAD, timed } from "../workloads.ts";

const QUICK = ["python3", "sqlite3"];
const slug = (name: string) => name.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "").toLowerCase();

export const runSuite: Suite = {
  name: "run",
  title: "Real programs under aether run",
  description:
    "Wall time of unmodified programs (python3, sqlite3, git, gcc, Bun) with every heap allocation going through " +
    "the safe allocator (libaether-preload.so, all checks on), and through `aether run`, against the same " +
    "programs on plain glibc, alternated in each repetition.",
  estimate: (quick) => (quick ? 3 : 120),
  steps: (quick) => (quick ? QUICK.length : 6) + 1,
  run(ctx) {
    if (!existsSync(PRELOAD)) {
      ctx.skip("*", `${PRELOAD} is missing: run \`npm install\` (or \`npx aether build\`)`);
      return;
    }
    ctx.step("setting up the workloads");
    const w = makeWorkloads(ctx.quick ? 1 : 4, ctx.quick);
    try {
      for (const m of w.missing) ctx.skip(slug(m.split(" (")[0]!), m);
      const list = (ctx.quick && !ctx.filtered ? w.list.filter((x) => QUICK.includes(x.name)) : w.list).filter((x) => ctx.wants(`${slug(x.name)}/`));
      for (const wl of list) {
        ctx.step(wl.name);
        const configs: Record<string, () => number> = {
          glibc: () => timed(wl, w.dir, {}),
          preload: () => timed(wl, w.dir, { LD_PRELOAD: PRELOAD }),
        };
        if (!ctx.quick) configs["aether-run"] = () => timed(wl, w.dir, {}, [process.execPath, CLI, "run", "--leaks", "off", "--"]);
        const s = alternate(ctx.reps, configs);
        const labels: Record<string, string> = {
          glibc: `${wl.name} on plain glibc`,
          preload: `${wl.name} with libaether-preload.so (every check on)`,
          "aether-run": `${wl.name} under \`aether run --leaks off --\``,
        };
        for (const [k, samples] of Object.entries(s)) {
          ctx.add({
            name: `${slug(wl.name)}/${k}`,
            label: labels[k]!,
            kind: "time",
            unit: "ms",
            better: "lower",
            samples,
            baseline: k === "glibc" ? undefined : `${slug(wl.name)}/glibc`,
            measured: "process",
            params: { command: wl.cmd.map((a) => a.replace(w.dir, "$TMP")).join(" ") },
          });
        }
      }
    } finally {
      w.dispose();
    }
  },
};
