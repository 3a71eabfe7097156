// targets.ts: the gates. bench/targets.json names, for each target, a figure, what of it is compared (its
// median, one of its percentiles, or its ratio to its baseline), the threshold, and whether it is quick (part of
// `aether check`). A file that does not follow that shape, and a target whose figure the run did not produce,
// are errors of the user's (exit 2), told in one line; a target that is not met is a failure (exit 1).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { PACKAGE_ROOT } from "../../native/ffi.ts";
import { QUANTILES } from "../../native/histogram.ts";
import { figureIndex } from "./runner.ts";
import type { BenchDocument, Figure, GateResult, GateRow } from "./types.ts";

/** The targets checked in with the package. */
export const DEFAULT_TARGETS = join(PACKAGE_ROOT, "bench", "targets.json");

export const STATS = ["value", ...QUANTILES.map(([n]) => n)] as const;
export type Stat = (typeof STATS)[number];

export interface Target {
  id: string;
  figure: string;
  comparison: "absolute" | "ratio";
  /** for absolute: the figure's median ("value") or one of its percentiles */
  stat: Stat | "ratio";
  threshold: number;
  /** defaults to the figure's direction: <= for lower-is-better, >= for higher-is-better */
  op?: "<=" | ">=";
  unit?: string;
  quick: boolean;
  source?: string;
}

export interface TargetsFile {
  path: string;
  targets: Target[];
}

/** A malformed targets file, or a target the run cannot evaluate: the user's to fix (exit 2). */
export class TargetsError extends Error {
  override name = "TargetsError";
}

/** A name from the file as it is, unless it holds control characters (a newline): then escaped, so that an
 * error stays one line. */
const oneLine = (s: string) => (/[\u0000-\u001f\u007f]/.test(s) ? JSON.stringify(s) : s);

const TARGET_KEYS = ["id", "figure", "comparison", "stat", "threshold", "op", "unit", "quick", "source"];
const TOP_KEYS = ["$schema", "$comment", "description", "version", "targets"];

/** Parse and validate a targets file; knownSuites are the suite names a figure may start with. */
export function parseTargets(text: string, path: string, knownSuites: readonly string[]): TargetsFile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TargetsError(`${path}: not valid JSON (${(e as Error).message.split("\n")[0]})`);
  }
  const fail = (msg: string): never => {
    throw new TargetsError(`${path}: ${msg}`);
  };
  if (typeof json !== "object" || json === null || Array.isArray(json)) fail(`expected an object with "version": 1 and "targets": [...]`);
  const top = json as Record<string, unknown>;
  for (const k of Object.keys(top)) if (!TOP_KEYS.includes(k)) fail(`unknown key ${JSON.stringify(k)} (known: ${TOP_KEYS.join(", ")})`);
  if (top.version !== 1) fail(`"version" must be 1, got ${JSON.stringify(top.version)}`);
  if (!Array.isArray(top.targets) || top.targets.length === 0) fail(`"targets" must be a non-empty array`);
  const seen = new Set<string>();
  const targets = (top.targets as unknown[]).map((raw, i): Target => {
    const where = `target ${i + 1}`;
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) fail(`${where} is not an object`);
    const t = raw as Record<string, unknown>;
    const id = typeof t.id === "string" && /^[\w.:-]+$/.test(t.id) ? t.id : fail(`${where}: "id" must be a string of letters, digits, '.', ':', '_' or '-'`);
    const at = `${where} ("${id}")`;
    for (const k of Object.keys(t)) if (!TARGET_KEYS.includes(k)) fail(`${at}: unknown key ${JSON.stringify(k)} (known: ${TARGET_KEYS.join(", ")})`);
    if (seen.has(id)) fail(`${at}: the id is used twice`);
    seen.add(id);
    if (typeof t.figure !== "string" || !t.figure.includes("/")) fail(`${at}: "figure" must be a figure name such as "alloc/pair/16B/safe"`);
    const figure = t.figure as string;
    const suite = figure.split("/")[0]!;
    if (!knownSuites.includes(suite)) fail(`${at}: figure ${JSON.stringify(figure)} is not in a known suite (${knownSuites.join(", ")})`);
    if (t.comparison !== "absolute" && t.comparison !== "ratio") fail(`${at}: "comparison" must be "absolute" or "ratio", got ${JSON.stringify(t.comparison)}`);
    const comparison = t.comparison as Target["comparison"];
    if (typeof t.threshold !== "number" || !Number.isFinite(t.threshold) || t.threshold <= 0) fail(`${at}: "threshold" must be a positive number, got ${JSON.stringify(t.threshold)}`);
    let stat: Target["stat"];
    if (comparison === "ratio") {
      if (t.stat !== undefined && t.stat !== "ratio") fail(`${at}: a ratio target compares the ratio to the baseline; drop "stat" (got ${JSON.stringify(t.stat)})`);
      stat = "ratio";
    } else {
      if (t.stat !== undefined && !(STATS as readonly unknown[]).includes(t.stat)) fail(`${at}: "stat" must be one of ${STATS.join(", ")}, got ${JSON.stringify(t.stat)}`);
      stat = (t.stat as Stat | undefined) ?? "value";
    }
    if (t.op !== undefined && t.op !== "<=" && t.op !== ">=") fail(`${at}: "op" must be "<=" or ">=", got ${JSON.stringify(t.op)}`);
    if (t.unit !== undefined && typeof t.unit !== "string") fail(`${at}: "unit" must be a string`);
    if (t.quick !== undefined && typeof t.quick !== "boolean") fail(`${at}: "quick" must be true or false`);
    if (t.source !== undefined && typeof t.source !== "string") fail(`${at}: "source" must be a string`);
    return {
      id,
      figure,
      comparison,
      stat,
      threshold: t.threshold as number,
      op: t.op as Target["op"],
      unit: t.unit as string | undefined,
      quick: (t.quick as boolean | undefined) ?? false,
      source: t.source as string | undefined,
    };
  });
  return { path, targets };
}

export function loadTargets(path: string, knownSuites: readonly string[]): TargetsFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TargetsError(`${path}: ${code === "ENOENT" ? "no such file" : (e as Error).message.split("\n")[0]}`);
  }
  return parseTargets(text, path, knownSuites);
}

/** The suites the selected targets need. */
export function suitesOf(targets: readonly Target[]): string[] {
  return [...new Set(targets.map((t) => t.figure.split("/")[0]!))];
}

function glob(pattern: string): RegExp {
  return new RegExp(`^${pattern.split("*").map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&")).join(".*")}$`);
}

/** The number a target compares, and in what unit. */
function measure(t: Target, f: Figure): { value: number; unit: string } {
  if (t.stat === "ratio") {
    if (!f.baseline) throw new TargetsError(`target "${t.id}": figure ${f.name} has no baseline, so it has no ratio; use "comparison": "absolute"`);
    return { value: f.baseline.ratio, unit: "x" };
  }
  if (t.stat === "value") return { value: f.value, unit: f.unit };
  if (!f.percentiles) throw new TargetsError(`target "${t.id}": figure ${f.name} has no percentiles (it is a ${f.kind}); use "stat": "value"`);
  return { value: f.percentiles[t.stat], unit: "ns" };
}

/**
 * Evaluate the targets against a run. Targets of suites that did not run are skipped; so are figures a suite
 * reported it could not measure here (no AVX-512, a missing program). Any other missing figure is an error.
 */
export function evaluate(doc: BenchDocument, file: TargetsFile, quick: boolean): GateResult {
  const figures = figureIndex(doc);
  const ran = new Map(doc.suites.map((s) => [s.name, s]));
  const rows: GateRow[] = [];
  for (const t of file.targets) {
    if (quick && !t.quick) continue;
    const suiteName = t.figure.split("/")[0]!;
    const suite = ran.get(suiteName);
    const base = { id: t.id, figure: t.figure, stat: t.stat, threshold: t.threshold, source: t.source };
    const declared = t.stat === "ratio" ? "x" : (t.unit ?? "");
    if (!suite) {
      rows.push({ ...base, op: t.op ?? "<=", unit: declared, measured: null, verdict: "skip", reason: `suite ${suiteName} was not run` });
      continue;
    }
    const f = figures.get(t.figure);
    if (!f) {
      const skipped = suite.skipped.find((s) => glob(s.name).test(t.figure));
      if (skipped) {
        rows.push({ ...base, op: t.op ?? "<=", unit: declared, measured: null, verdict: "skip", reason: skipped.reason });
        continue;
      }
      const names = suite.figures.map((x) => x.name);
      const near = names.filter((n) => n.split("/").slice(0, 2).join("/") === t.figure.split("/").slice(0, 2).join("/"));
      const hint = (near.length ? near : names).slice(0, 6).join(", ");
      throw new TargetsError(`${file.path}: target "${t.id}" names figure ${oneLine(t.figure)}, which suite ${suiteName} did not produce${doc.quick ? " in a quick run" : ""} (it produced ${names.length} figures, e.g. ${hint})`);
    }
    const m = measure(t, f);
    if (t.unit !== undefined && t.unit !== m.unit)
      throw new TargetsError(`${file.path}: target "${t.id}" is in ${oneLine(t.unit ?? "")}, but ${t.figure}${t.stat === "value" ? "" : ` (${t.stat})`} is in ${m.unit}`);
    const op = t.op ?? (f.better === "lower" ? "<=" : ">=");
    const ok = op === "<=" ? m.value <= t.threshold : m.value >= t.threshold;
    rows.push({ ...base, op, unit: m.unit, measured: m.value, verdict: ok ? "pass" : "fail" });
  }
  return {
    file: file.path,
    quick,
    rows,
    failed: rows.filter((r) => r.verdict === "fail").length,
    passed: rows.filter((r) => r.verdict === "pass").length,
    skipped: rows.filter((r) => r.verdict === "skip").length,
  };
}
