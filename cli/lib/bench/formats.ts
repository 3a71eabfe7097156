// formats.ts: a result as a terminal reads it (human), and as the GitHub benchmark action reads it
// (benchmark-action/github-action-benchmark: its "customSmallerIsBetter" and "customBiggerIsBetter" tools each
// take a JSON array of {name, unit, value, range?, extra?}).
import { color, formatBytes, table, verdictText } from "../output.ts";
import { environmentLine } from "./environment.ts";
import type { BenchDocument, Comparison, Figure, GateResult, GateRow } from "./types.ts";

/** A number in its unit, readable: ns as ns/µs/ms, rates with k/M/G. */
export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return "-";
  if (unit === "ns") {
    if (v < 10) return `${v.toFixed(2)} ns`;
    if (v < 1000) return `${v.toFixed(1)} ns`;
    if (v < 1e6) return `${(v / 1e3).toFixed(2)} µs`;
    if (v < 1e9) return `${(v / 1e6).toFixed(2)} ms`;
    return `${(v / 1e9).toFixed(2)} s`;
  }
  if (unit === "ms") return v < 1000 ? `${v.toFixed(1)} ms` : `${(v / 1000).toFixed(2)} s`;
  if (unit === "x") return `${v.toFixed(v < 10 ? 3 : 1)}x`;
  if (unit === "bytes") return formatBytes(v);
  if (unit.endsWith("/s") && unit !== "GB/s") {
    const u = unit.slice(0, -2);
    const sep = u.length > 2 ? " " : "";
    if (v >= 1e9) return `${(v / 1e9).toFixed(2)} G${sep}${u}/s`;
    if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M${sep}${u}/s`;
    if (v >= 1e3) return `${(v / 1e3).toFixed(1)} k${sep}${u}/s`;
    return `${v.toFixed(0)} ${u}/s`;
  }
  return `${v.toPrecision(4)} ${unit}`;
}

/** "[min-max]" in the figure's unit, compact. */
function range(f: Figure): string {
  return `[${formatValue(f.min, f.unit).split(" ")[0]}-${formatValue(f.max, f.unit)}]`;
}

const shortName = (f: { name: string; suite: string }) => f.name.slice(f.suite.length + 1);

export function ratioText(f: Figure): string {
  if (!f.baseline) return "";
  const b = f.baseline.name.split("/").slice(1).join("/");
  return `${f.baseline.ratio.toFixed(3)}x ${b} [${f.baseline.ratioMin.toFixed(2)}-${f.baseline.ratioMax.toFixed(2)}]`;
}

export function gateRowText(r: GateRow): string[] {
  const stat = r.stat === "value" ? "" : ` ${r.stat}`;
  const thr = r.unit === "x" ? `${r.threshold}x` : r.unit ? formatValue(r.threshold, r.unit) : String(r.threshold);
  return [
    r.id,
    `${r.figure}${stat}`,
    r.measured === null ? color.dim("-") : formatValue(r.measured, r.unit),
    `${r.op} ${thr}`,
    r.verdict === "skip" ? `${verdictText("skip")} ${color.dim(r.reason ?? "")}` : verdictText(r.verdict),
  ];
}

export function gateText(g: GateResult): string {
  const head = ["target", "figure", "measured", "threshold", "verdict"].map((h) => color.dim(h));
  const lines = [
    color.bold(`gate: ${g.file}${g.quick ? " (quick targets)" : ""}`),
    table([head, ...g.rows.map(gateRowText)], [2]),
    g.failed
      ? color.red(`${g.failed} of ${g.rows.length - g.skipped} target(s) not met`)
      : color.green(`all ${g.passed} target(s) met`) + (g.skipped ? color.dim(` (${g.skipped} skipped)`) : ""),
  ];
  return lines.join("\n");
}

export function comparisonText(c: Comparison): string {
  const ratios = c.rows.filter((r) => r.compared === "ratio");
  const worst = [...ratios].sort((a, b) => b.regressionPct - a.regressionPct);
  const shown = worst.filter((r) => r.verdict === "fail").concat(worst.filter((r) => r.verdict !== "fail").slice(0, 5));
  const head = ["figure", "ratio before", "ratio now", "change", "verdict"].map((h) => color.dim(h));
  const rows = shown.map((r) => [
    r.figure,
    `${r.previous.toFixed(3)}x`,
    `${r.current.toFixed(3)}x`,
    `${r.regressionPct >= 0 ? "+" : ""}${r.regressionPct.toFixed(1)}% ${r.regressionPct > 0 ? "worse" : "better"}`,
    r.verdict === "fail" ? verdictText("fail") : verdictText("pass"),
  ]);
  const lines = [color.bold(`baseline: ${c.file} (fail above ${c.maxRegressionPct}% worse in any ratio)`)];
  for (const w of c.warnings) lines.push(color.yellow(`  note: ${w}`));
  if (rows.length) lines.push(table([head, ...rows], [1, 2, 3]));
  if (ratios.length > shown.length) lines.push(color.dim(`  (${ratios.length - shown.length} more ratios within the limit)`));
  if (c.added.length) lines.push(color.dim(`  new figures: ${c.added.length} (${c.added.slice(0, 4).join(", ")}${c.added.length > 4 ? ", ..." : ""})`));
  if (c.removed.length) lines.push(color.yellow(`  figures no longer produced: ${c.removed.join(", ")}`));
  lines.push(
    c.failed
      ? color.red(`${c.failed} ratio(s) regressed by more than ${c.maxRegressionPct}%`)
      : color.green(`no ratio regressed by more than ${c.maxRegressionPct}% (${ratios.length} compared)`),
  );
  return lines.join("\n");
}

export function humanText(doc: BenchDocument): string {
  const out: string[] = [];
  out.push(color.dim(environmentLine(doc.environment)));
  out.push(color.dim(`${doc.quick ? "quick run" : "full run"}; each figure: median over alternating repetitions [range]; ratio: median of per-repetition ratios to the baseline`));
  for (const s of doc.suites) {
    out.push("");
    out.push(`${color.bold(s.name)}: ${s.title} ${color.dim(`(${s.reps} repetitions, ${s.seconds.toFixed(1)} s)`)}`);
    const head = ["figure", "median", "range", "ratio to baseline [range]", "p50", "p99", "p99.9"].map((h) => color.dim(h));
    const rows = s.figures.map((f) => [
      shortName(f),
      formatValue(f.value, f.unit),
      color.dim(range(f)),
      ratioText(f),
      f.percentiles ? formatValue(f.percentiles.p50, "ns") : "",
      f.percentiles ? formatValue(f.percentiles.p99, "ns") : "",
      f.percentiles ? formatValue(f.percentiles["p99.9"], "ns") : "",
    ]);
    if (rows.length) out.push(table([head, ...rows], [1, 4, 5, 6]));
    for (const k of s.skipped) out.push(color.yellow(`  skipped ${k.name}: ${k.reason}`));
    for (const n of s.notes) out.push(color.dim(`  note: ${n}`));
  }
  if (doc.comparison) out.push("", comparisonText(doc.comparison));
  if (doc.gate) out.push("", gateText(doc.gate));
  return out.join("\n");
}

// ------------------------------------------------------------------ github-action-benchmark ---

export interface GabEntry {
  name: string;
  unit: string;
  value: number;
  range?: string;
  extra?: string;
}
export interface GabOutput {
  customSmallerIsBetter: GabEntry[];
  customBiggerIsBetter: GabEntry[];
}

function num(v: number): number {
  return Number(v.toPrecision(6));
}

/** Every figure as an entry of the tool its direction needs, and every ratio to a baseline as one more entry
 * (`<name> vs <baseline>`, unit "x"), which is what to set alert thresholds on when runners differ. */
export function githubActionBenchmark(doc: BenchDocument): GabOutput {
  const out: GabOutput = { customSmallerIsBetter: [], customBiggerIsBetter: [] };
  const commit = doc.environment.git.commit?.slice(0, 12) ?? "unknown";
  for (const s of doc.suites) {
    for (const f of s.figures) {
      const list = f.better === "lower" ? out.customSmallerIsBetter : out.customBiggerIsBetter;
      const extra = [
        f.label,
        `median of ${f.reps} alternating repetitions, range ${num(f.min)} to ${num(f.max)} ${f.unit}`,
        f.percentiles ? `per operation: p50 ${num(f.percentiles.p50)} ns, p99 ${num(f.percentiles.p99)} ns, p99.9 ${num(f.percentiles["p99.9"])} ns` : "",
        f.baseline ? `vs ${f.baseline.name}: ${num(f.baseline.ratio)}x [${num(f.baseline.ratioMin)}-${num(f.baseline.ratioMax)}]` : "",
        `measured in ${f.measured === "c" ? "C" : f.measured === "bun" ? "Bun" : "a child process"}; ${doc.environment.cpu.model}; commit ${commit}`,
      ].filter(Boolean);
      list.push({ name: f.name, unit: f.unit, value: num(f.value), range: `± ${num((f.max - f.min) / 2)}`, extra: extra.join("\n") });
      if (f.baseline) {
        list.push({
          name: `${f.name} vs ${f.baseline.name}`,
          unit: "x",
          value: num(f.baseline.ratio),
          range: `± ${num((f.baseline.ratioMax - f.baseline.ratioMin) / 2)}`,
          extra: `ratio of ${f.name} to ${f.baseline.name} (${num(f.baseline.value)} ${f.unit}), median of per-repetition ratios`,
        });
      }
    }
  }
  return out;
}
