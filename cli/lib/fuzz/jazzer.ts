// jazzer.ts: Jazzer.js (@jazzer.js/core), libFuzzer for JavaScript under Node, fuzzing the CLI's TypeScript
// parsers. It is not a dependency of the project: it is used when the user installed it (in this package's
// node_modules, or in the node_modules folder named by AETHER_JAZZER_PATH). A target fuzz/jazzer/<name>.ts is
// bundled by Bun into build/fuzz/jazzer/<name>.cjs (Node runs no TypeScript) and run by Jazzer.js's CLI with
// the committed corpus. Its 4.0.0 prebuilt addon needs glibc 2.38, newer than Debian 12's 2.36: that (and any
// other reason it cannot load) is reported in one line.
import { existsSync, mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import { toolEnv, which } from "../tools.ts";
import { parseLine, summarize, type FuzzResult, type Progress } from "./libfuzzer.ts";
import { ARTIFACTS_DIR, corpusDir, FUZZ_BUILD_DIR } from "./targets.ts";

export const INSTALL_JAZZER_HINT = "npm install --no-save @jazzer.js/core (or set AETHER_JAZZER_PATH to a node_modules folder that has it)";

export type JazzerStatus = { ok: true; cli: string; node: string; version: string; nodeModules: string } | { ok: false; reason: string };

function glibcVersion(): string | undefined {
  try {
    const r = Bun.spawnSync({ cmd: ["getconf", "GNU_LIBC_VERSION"], stdout: "pipe", stderr: "pipe" });
    return /glibc ([\d.]+)/.exec(r.stdout.toString())?.[1];
  } catch {
    return undefined;
  }
}

/** One line saying why an addon failed to load, from Node's error text. */
export function explainLoadFailure(stderr: string, version: string): string {
  const glibc = /version [`']GLIBC_([\d.]+)' not found/.exec(stderr);
  if (glibc) {
    const have = glibcVersion();
    return `Jazzer.js ${version}'s prebuilt addon needs glibc ${glibc[1]}, newer than this system's${have ? ` ${have}` : ""}: use --engine builtin (or libfuzzer)`;
  }
  const first = stderr.split("\n").find((l) => /Error|error:/.test(l))?.trim() ?? stderr.trim().split("\n")[0] ?? "unknown error";
  return `Jazzer.js ${version} cannot load under Node (${first.slice(0, 160)}): use --engine builtin`;
}

export function jazzerStatus(): JazzerStatus {
  const node = which("node");
  if (!node) return { ok: false, reason: "Jazzer.js runs under Node, which is not installed (apt-get install -y nodejs)" };
  const dirs = [process.env.AETHER_JAZZER_PATH, join(PACKAGE_ROOT, "node_modules")].filter((d): d is string => !!d);
  const nodeModules = dirs.find((d) => existsSync(join(d, "@jazzer.js", "core", "package.json")));
  if (!nodeModules) return { ok: false, reason: `Jazzer.js (@jazzer.js/core) is not installed: ${INSTALL_JAZZER_HINT}` };
  const pkg = JSON.parse(readFileSync(join(nodeModules, "@jazzer.js", "core", "package.json"), "utf8")) as { version: string; bin?: Record<string, string> };
  const cli = join(nodeModules, "@jazzer.js", "core", pkg.bin?.jazzer ?? "dist/cli.js");
  // Load its native addon in a throwaway Node: the glibc check happens at dlopen.
  const r = Bun.spawnSync({
    cmd: [node, "-e", "require(process.argv[1])", join(nodeModules, "@jazzer.js", "fuzzer")],
    stdout: "pipe",
    stderr: "pipe",
  });
  if (r.exitCode !== 0) return { ok: false, reason: explainLoadFailure(r.stderr.toString(), pkg.version) };
  return { ok: true, cli, node, version: pkg.version, nodeModules };
}

/** Bundle a fuzz/jazzer/<name>.ts target into CommonJS for Node. */
export async function bundleJazzerTarget(source: string, name: string): Promise<string> {
  const outDir = join(FUZZ_BUILD_DIR, "jazzer");
  mkdirSync(outDir, { recursive: true });
  const out = join(outDir, `${name}.cjs`);
  // Always rebuilt (it takes a blink): the bundle must follow every module the target imports.
  const r = await Bun.build({ entrypoints: [source], target: "node", format: "cjs", outdir: outDir, naming: `${name}.cjs` });
  if (!r.success) throw new Error(`bundling ${name} for Node failed: ${r.logs.map((l) => String(l)).join("; ").slice(0, 300)}`);
  return out;
}

export async function runJazzer(name: string, bundle: string, st: Extract<JazzerStatus, { ok: true }>, opts: { seconds?: number; runs?: number; onProgress?: (p: Progress) => void }): Promise<FuzzResult> {
  const work = join(FUZZ_BUILD_DIR, "work", `jazzer-${name}`);
  const artifacts = join(ARTIFACTS_DIR, name);
  for (const d of [work, artifacts, corpusDir(name)]) mkdirSync(d, { recursive: true });
  const before = new Set(readdirSync(artifacts));
  const libfuzzer = [`-artifact_prefix=${artifacts}/`, "-print_final_stats=1"];
  if (opts.seconds) libfuzzer.push(`-max_total_time=${Math.ceil(opts.seconds)}`);
  if (opts.runs !== undefined) libfuzzer.push(`-runs=${opts.runs}`);
  const cmd = [st.node, st.cli, bundle, work, corpusDir(name), "--sync", "--", ...libfuzzer];
  const t0 = performance.now();
  const p = Bun.spawn({ cmd, cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: { ...toolEnv(), NODE_PATH: st.nodeModules } });
  const prog: Progress = { execs: 0, execPerSec: 0, coverage: 0, features: 0, corpus: 0, seconds: 0 };
  let output = "";
  const dec = new TextDecoder();
  const consume = async (s: ReadableStream<Uint8Array>) => {
    for await (const c of s) {
      const text = dec.decode(c, { stream: true });
      output += text;
      for (const l of text.split("\n")) if (parseLine(l, prog)) opts.onProgress?.({ ...prog, seconds: (performance.now() - t0) / 1000 });
    }
  };
  await Promise.all([consume(p.stdout), consume(p.stderr)]);
  const code = await p.exited;
  prog.seconds = (performance.now() - t0) / 1000;
  const res: FuzzResult = { target: name, engine: "jazzer", status: code === 0 ? "pass" : "fail", findings: [], ...prog };
  for (const f of readdirSync(artifacts).filter((f) => !before.has(f))) {
    const file = join("fuzz", "artifacts", name, f);
    res.findings.push({ file, summary: summarize(output), reproduce: `aether fuzz ${name} --engine jazzer --repro ${file}` });
  }
  if (code !== 0 && !res.findings.length) res.error = `Jazzer.js exited with ${code}: ${summarize(output).split("\n")[0]}`;
  return res;
}

/** Run inputs through a bundled target under plain Node (no Jazzer.js): how the corpus is replayed anywhere. */
export function replayUnderNode(bundle: string, files: string[]): { code: number; stdout: string; stderr: string } {
  const node = which("node") ?? "node";
  const script = `const t = require(process.argv[1]); const fs = require("fs"); let n = 0;
for (const f of process.argv.slice(2)) { process.stderr.write("running " + f + "\\n"); const out = t.fuzz(fs.readFileSync(f)); if (process.env.FUZZ_VERBOSE && out) console.log(out); n++; }
process.stderr.write("replayed " + n + " inputs\\n");`;
  const r = Bun.spawnSync({ cmd: [node, "-e", script, bundle, ...files], cwd: PACKAGE_ROOT, stdout: "pipe", stderr: "pipe", env: toolEnv() });
  return { code: r.exitCode ?? 1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}
