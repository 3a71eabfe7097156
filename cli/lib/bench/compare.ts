// compare.ts: --baseline FILE --max-regression PCT. Compares this run with a previous `--json` result figure by
// figure. What gates is each figure's ratio to its own baseline measured in the same run (glibc, a pure-JS call,
// the scalar kernel...): a ratio survives a slower or busier machine, where an absolute time does not. Figures
// with no baseline are compared by value for information only.
import { readFileSync } from "node:fs";
import { figureIndex } from "./runner.ts";
import { TargetsError } from "./targets.ts";
import { SCHEMA, type BenchDocument, type Comparison, type ComparisonRow, type Figure } from "./types.ts";

/** A previous result that cannot be read or is not an `aether bench --json` result (exit 2). */
export class BaselineError extends TargetsError {
  override name = "BaselineError";
}

export function parseBaseline(text: string, path: string): BenchDocument {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new BaselineError(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const d = json as Partial<BenchDocument> | null;
  if (typeof d !== "object" || d === null || d.schema !== SCHEMA)
    throw new BaselineError(`${path}: not an \`aether bench --json\` result (its "schema" is ${JSON.stringify(d && (d as { schema?: unknown }).schema)}, expected "${SCHEMA}")`);
  if (!Array.isArray(d.suites) || d.suites.some((s) => !Array.isArray(s?.figures)))
    throw new BaselineError(`${path}: "suites" must be an array of suites with "figures"`);
  for (const s of d.suites)
    for (const f of s.figures)
      if (typeof f?.name !== "string" || typeof f.value !== "number" || (f.better !== "lower" && f.better !== "higher"))
        throw new BaselineError(`${path}: a figure of suite ${String(s.name)} lacks a name, a numeric value or "better"`);
  return d as BenchDocument;
}

export function loadBaseline(path: string): BenchDocument {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new BaselineError(`${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message.split("\n")[0]}`);
  }
  return parseBaseline(text, path);
}

/** How much worse `current` is than `previous`, in percent, for a quantity where `better` is the good way. */
export function regressionPct(previous: number, current: number, better: Figure["better"]): number {
  if (!(previous > 0) || !(current > 0)) return 0;
  return (better === "lower" ? current / previous - 1 : previous / current - 1) * 100;
}

export function compare(current: BenchDocument, previous: BenchDocument, path: string, maxRegressionPct: number): Comparison {
  const prev = figureIndex(previous);
  const cur = figureIndex(current);
  const ranSuites = new Set(current.suites.map((s) => s.name));
  const rows: ComparisonRow[] = [];
  for (const f of cur.values()) {
    const p = prev.get(f.name);
    if (!p) continue;
    if (f.baseline && p.baseline) {
      const pct = regressionPct(p.baseline.ratio, f.baseline.ratio, f.better);
      rows.push({ figure: f.name, previous: p.baseline.ratio, current: f.baseline.ratio, regressionPct: pct, compared: "ratio", verdict: pct > maxRegressionPct ? "fail" : "pass" });
    } else {
      rows.push({ figure: f.name, previous: p.value, current: f.value, regressionPct: regressionPct(p.value, f.value, f.better), compared: "value", verdict: "info" });
    }
  }
  const warnings: string[] = [];
  const pe = previous.environment, ce = current.environment;
  if (pe?.cpu?.model && pe.cpu.model !== ce.cpu.model) warnings.push(`the previous result was measured on another CPU (${pe.cpu.model})`);
  if (pe?.library?.variant && pe.library.variant !== ce.library.variant) warnings.push(`the previous result used the ${pe.library.variant} library, this run ${ce.library.variant}`);
  if (previous.quick !== current.quick) warnings.push(`the previous result was a ${previous.quick ? "quick" : "full"} run, this one is ${current.quick ? "quick" : "full"}`);
  return {
    file: path,
    maxRegressionPct,
    rows,
    failed: rows.filter((r) => r.verdict === "fail").length,
    added: [...cur.keys()].filter((n) => !prev.has(n)),
    // Only figures of the suites that ran count as removed: a run of one suite removes nothing of the others.
    removed: [...prev.keys()].filter((n) => !cur.has(n) && ranSuites.has(n.split("/")[0]!)),
    warnings,
  };
}
