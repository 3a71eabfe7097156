// targets.ts: which fuzz targets exist. A C target is one file fuzz/<name>.c (its seed corpus in
// fuzz/corpus/<name>/); its opening comment starts with "<name>: what it checks", and a line
// "libFuzzer options: -flag=value ..." in that comment adds options to every libFuzzer run of it. Builtin
// targets (the Bun-side engine) are listed in builtin/index.ts, Jazzer.js targets are fuzz/jazzer/<name>.ts.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";

export const FUZZ_DIR = join(PACKAGE_ROOT, "fuzz");
export const CORPUS_DIR = join(FUZZ_DIR, "corpus");
export const ARTIFACTS_DIR = join(FUZZ_DIR, "artifacts");
export const JAZZER_DIR = join(FUZZ_DIR, "jazzer");
export const FUZZ_BUILD_DIR = join(PACKAGE_ROOT, "build", "fuzz");

/** Files in fuzz/ that are not targets. */
const NOT_TARGETS = new Set(["regression_driver.c"]);

export interface CTarget {
  name: string;
  source: string;
  description: string;
  /** extra libFuzzer flags from the "libFuzzer options:" line */
  options: string[];
}

function openingComment(text: string): string {
  const m = /^\s*\/\*([\s\S]*?)\*\//.exec(text);
  return m ? m[1]!.replace(/^\s*\* ?/gm, "").trim() : "";
}

export function cTargets(): CTarget[] {
  if (!existsSync(FUZZ_DIR)) return [];
  return readdirSync(FUZZ_DIR)
    .filter((f) => f.endsWith(".c") && !NOT_TARGETS.has(f))
    .sort()
    .map((f) => {
      const source = join(FUZZ_DIR, f);
      const name = f.slice(0, -2);
      const comment = openingComment(readFileSync(source, "utf8"));
      const first = comment.split(/\n\s*\n/)[0]!.replace(/\s+/g, " ");
      const description = first.replace(new RegExp(`^${name}:\\s*`), "").replace(/\. .*$/, "").replace(/[:.]$/, "");
      const opt = /libFuzzer options:\s*([^\n]*)/.exec(comment);
      return { name, source, description, options: opt ? opt[1]!.trim().split(/\s+/) : [] };
    });
}

export function corpusDir(target: string): string {
  return join(CORPUS_DIR, target);
}

/** Jazzer.js targets: fuzz/jazzer/<name>.ts, each exporting fuzz(data: Buffer). */
export function jazzerTargets(): { name: string; source: string; description: string }[] {
  if (!existsSync(JAZZER_DIR)) return [];
  return readdirSync(JAZZER_DIR)
    .filter((f) => f.endsWith(".ts"))
    .sort()
    .map((f) => {
      const source = join(JAZZER_DIR, f);
      const first = (/^\/\/\s*(.*)$/m.exec(readFileSync(source, "utf8"))?.[1] ?? "").replace(/^[\w.-]+:\s*/, "");
      return { name: f.slice(0, -3), source, description: first };
    });
}

export function corpusFiles(target: string): string[] {
  const dir = corpusDir(target);
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => !f.startsWith("."))
    .sort()
    .map((f) => join(dir, f));
}
