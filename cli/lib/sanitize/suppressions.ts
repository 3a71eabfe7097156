// suppressions.ts: the one reviewed suppressions file (sanitizer-suppressions.txt at the repository root), read
// strictly: every entry names its sanitizer and carries a reason, or aether sanitize refuses to run.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import type { SanitizerName } from "./sanitizers.ts";

export const SUPPRESSIONS_FILE = join(PACKAGE_ROOT, "sanitizer-suppressions.txt");

export interface Suppression {
  sanitizer: "asan" | "lsan" | "ubsan" | "tsan";
  /** "<type>:<pattern>", as the runtime reads it */
  rule: string;
  reason: string;
  line: number;
}

export class SuppressionError extends Error {
  override name = "SuppressionError";
}

export function parseSuppressions(text: string, file = SUPPRESSIONS_FILE): Suppression[] {
  const out: Suppression[] = [];
  text.split("\n").forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const hash = line.indexOf("#");
    const reason = hash >= 0 ? line.slice(hash + 1).trim() : "";
    const body = (hash >= 0 ? line.slice(0, hash) : line).trim();
    const m = /^(asan|lsan|ubsan|tsan|msan)\s+(\S+:\S+)$/.exec(body);
    const where = `${file}:${i + 1}`;
    if (!m) throw new SuppressionError(`${where}: expected '<asan|lsan|ubsan|tsan> <type>:<pattern>  # <reason>', got '${line}'`);
    if (m[1] === "msan") throw new SuppressionError(`${where}: MemorySanitizer has no run-time suppressions: fix the code`);
    if (!reason) throw new SuppressionError(`${where}: suppression '${body}' has no reason (add '# <why this is not our bug>')`);
    out.push({ sanitizer: m[1] as Suppression["sanitizer"], rule: m[2]!, reason, line: i + 1 });
  });
  return out;
}

export function loadSuppressions(file = SUPPRESSIONS_FILE): Suppression[] {
  return existsSync(file) ? parseSuppressions(readFileSync(file, "utf8"), file) : [];
}

/** The runtime suppression files for s (its own, and LeakSanitizer's with ASan), written into dir; undefined
 * where there is nothing to suppress. */
export function suppressionFile(s: SanitizerName, all: Suppression[], dir: string): { own?: string; lsan?: string } {
  const write = (name: string, rules: Suppression[]) => {
    if (rules.length === 0) return undefined;
    const path = join(dir, name);
    writeFileSync(path, rules.map((r) => `# ${r.reason} (sanitizer-suppressions.txt:${r.line})\n${r.rule}\n`).join(""));
    return path;
  };
  return {
    own: write(`${s}.supp`, all.filter((r) => r.sanitizer === s)),
    lsan: s === "asan" ? write("lsan.supp", all.filter((r) => r.sanitizer === "lsan")) : undefined,
  };
}
