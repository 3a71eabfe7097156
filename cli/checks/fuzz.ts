// `aether fuzz`'s self-check: every committed corpus replayed and a few seconds of fuzzing per target. With
// clang and libFuzzer, each C target runs libFuzzer for 2 seconds (its corpus first); without them, the
// corpora are replayed by the plain-gcc regression driver and the builtin engine fuzzes through the FFI.
import { buildTargets, compilerFor, gccSanitizers, FuzzBuildError } from "../lib/fuzz/build.ts";
import { replayBuiltin, runBuiltin } from "../lib/fuzz/builtin/engine.ts";
import { BUILTIN_TARGETS } from "../lib/fuzz/builtin/index.ts";
import { replay, runLibFuzzer, type FuzzResult } from "../lib/fuzz/libfuzzer.ts";
import { corpusDir, corpusFiles, cTargets } from "../lib/fuzz/targets.ts";
import type { CheckDef, CheckResult } from "./types.ts";

const SECONDS = 2;

export const fuzzCheck: CheckDef = {
  component: "aether fuzz",
  id: "fuzz",
  async run(): Promise<CheckResult> {
    const problems: string[] = [];
    const targets = cTargets();
    let execs = 0;
    let replayed = 0;
    const libfuzzer = "cc" in compilerFor("libfuzzer");
    const results: FuzzResult[] = [];
    try {
      if (libfuzzer) {
        const bins = await buildTargets({ engine: "libfuzzer", sanitizers: ["address", "undefined"] }, targets, { jobs: 2 });
        for (const t of targets) {
          const r = await runLibFuzzer(t.name, bins.get(t.name)!, { seconds: SECONDS, extra: t.options, updateCorpus: false, minimizeSeconds: 5 });
          results.push(r);
          execs += r.execs;
          replayed += corpusFiles(t.name).length;
        }
      } else {
        const bins = await buildTargets({ engine: "regression", sanitizers: gccSanitizers() }, targets, { jobs: 2 });
        for (const t of targets) {
          const r = await replay(bins.get(t.name)!, [corpusDir(t.name)]);
          replayed += r.inputs;
          if (!r.ok) problems.push(`${t.name}: ${r.failed ?? "replay"} failed: ${(r.summary ?? "").split("\n")[0]}`);
        }
      }
    } catch (e) {
      if (!(e instanceof FuzzBuildError)) throw e;
      problems.push(e.message.split("\n")[0]!);
    }
    // The Bun-side targets: their own corpora, then a short run each (the C-shared ones only without clang).
    for (const t of BUILTIN_TARGETS) {
      const shared = targets.some((c) => c.name === t.name);
      if (!shared) {
        const files = corpusFiles(t.name);
        const r = await replayBuiltin(t, files);
        replayed += r.inputs;
        if (!r.ok) problems.push(`${t.name}: ${r.failed} failed: ${r.summary}`);
      }
      if (shared && libfuzzer) continue;
      const r = await runBuiltin(t, { seconds: SECONDS, seed: (Math.random() * 2 ** 32) >>> 0, shrinkSeconds: 10 });
      results.push(r);
      execs += r.execs;
    }
    for (const r of results) {
      if (r.error) problems.push(`${r.target} (${r.engine}): ${r.error}`);
      for (const f of r.findings) problems.push(`${r.target} (${r.engine}): ${f.summary.split("\n")[0]}; reproduce: ${f.reproduce}`);
    }
    const engines = libfuzzer ? "libFuzzer + builtin" : "gcc replay + builtin (no clang: libFuzzer skipped)";
    return {
      verdict: problems.length ? "fail" : "pass",
      figure: `${targets.length} C targets + ${BUILTIN_TARGETS.length} builtin, ${replayed} corpus inputs, ${execs} execs in ${SECONDS} s/target (${engines})`,
      problems,
      data: { replayed, execs, results },
    };
  },
};
