// report.ts: --report FILE.html. One self-contained file: inline CSS and inline SVG, no script, no font, no
// image and no address of anything outside the file, so it opens the same offline, from a CI artifact or an
// e-mail. Per suite:
//   - latency percentile plots: for each baseline, the baseline and every subject compared with it, per-operation
//     latency at p50, p75, p90, p95, p99, p99.5 and p99.9 (x: the percentile on a log scale of 1/(1-q), as
//     HdrHistogram plots it, so the tail gets room; y: ns on a log scale);
//   - bars for throughput and wall-time figures, each group's baseline first;
//   - the ratio of every figure to its baseline, on a log scale around 1 (green: better than the baseline);
//   - the table of every figure;
// then the environment, the gate and the baseline comparison when there are any.
import { QUANTILES } from "../../native/histogram.ts";
import { NOTABLE_FLAGS } from "./environment.ts";
import { formatValue, gateRowText, ratioText } from "./formats.ts";
import type { BenchDocument, Figure, SuiteResult } from "./types.ts";

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const ANSI = /\x1b\[[0-9;]*m/g;
const plain = (s: string) => s.replace(ANSI, "");
const f2 = (n: number) => (Math.round(n * 100) / 100).toString();

const BASELINE_COLOR = "#6b7280";
const PALETTE = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04"];
const PLOTTED = QUANTILES.filter(([name]) => name !== "max"); // p50 .. p99.9

/** The figures of a suite grouped by the baseline they are compared with (the baseline first). */
function groups(s: SuiteResult, pick: (f: Figure) => boolean): Figure[][] {
  const byName = new Map(s.figures.map((f) => [f.name, f]));
  const out = new Map<string, Figure[]>();
  const grouped = new Set<string>();
  for (const f of s.figures) {
    if (!pick(f) || !f.baseline) continue;
    const b = byName.get(f.baseline.name);
    if (!b || !pick(b)) continue;
    if (!out.has(b.name)) out.set(b.name, [b]);
    out.get(b.name)!.push(f);
    grouped.add(f.name).add(b.name);
  }
  for (const f of s.figures) if (pick(f) && !grouped.has(f.name)) out.set(f.name, [f]);
  return [...out.values()];
}

/** Round numbers for a log axis between lo and hi: 1, 2, 5 per decade (or every decade when wide). */
function logTicks(lo: number, hi: number): number[] {
  const ticks: number[] = [];
  const wide = hi / lo > 1e4;
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of wide ? [1] : [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) ticks.push(v);
    }
  }
  return ticks;
}

function shortLabel(f: Figure): string {
  return f.name.split("/").slice(1).join("/");
}

/** "pair/16B: safe, unchecked vs glibc" for a group (the baseline first): the shared start of the names once. */
export function groupTitle(group: Figure[]): string {
  const parts = group.map((f) => shortLabel(f).split("/"));
  if (parts.length === 1) return parts[0]!.join("/");
  let k = 0;
  while (k < Math.min(...parts.map((p) => p.length)) - 1 && parts.every((p) => p[k] === parts[0]![k])) k++;
  const prefix = parts[0]!.slice(0, k).join("/");
  const rest = parts.map((p) => p.slice(k).join("/"));
  return `${prefix ? `${prefix}: ` : ""}${rest.slice(1).join(", ")} vs ${rest[0]}`;
}

/** A tick label: three significant digits at most, no trailing zeros ("500 ns", "2 µs", "1.5 ms"). */
function tickLabel(ns: number): string {
  const [v, u] = ns < 1e3 ? [ns, "ns"] : ns < 1e6 ? [ns / 1e3, "µs"] : ns < 1e9 ? [ns / 1e6, "ms"] : [ns / 1e9, "s"];
  return `${Number(v.toPrecision(3))} ${u}`;
}

function legend(series: { label: string; color: string; dashed: boolean }[], x: number, y: number): string {
  return series
    .map(
      (s, i) =>
        `<g transform="translate(${x},${y + i * 15})"><line x1="0" y1="-4" x2="18" y2="-4" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="4 3"' : ""}/>` +
        `<text x="23" y="0" class="lg">${esc(s.label)}</text></g>`,
    )
    .join("");
}

/** A percentile plot of a group: the baseline (grey, dashed) and its subjects. */
export function latencyChart(group: Figure[], id: string): string {
  const W = 420, top = 28, left = 56, right = 20, plotH = 150;
  const H = top + plotH + 34 + group.length * 15 + 6;
  const xs = PLOTTED.map(([, q]) => Math.log10(1 / (1 - q)));
  const x0 = xs[0]!, x1 = xs[xs.length - 1]!;
  const px = (v: number) => left + ((v - x0) / (x1 - x0)) * (W - left - right);
  const values = group.flatMap((f) => PLOTTED.map(([n]) => f.percentiles![n]));
  const positive = values.filter((v) => v > 0);
  // Log scale: a zero (a call faster than the clock's resolution) is drawn on the floor.
  let lo = positive.length ? Math.min(...positive) : 1;
  let hi = positive.length ? Math.max(...positive) : 10;
  if (hi / lo < 4) {
    const mid = Math.sqrt(lo * hi);
    lo = mid / 2;
    hi = mid * 2;
  }
  lo *= 0.85;
  hi *= 1.15;
  const py = (v: number) => top + plotH - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo))) * plotH;
  const parts: string[] = [];
  parts.push(`<rect x="${left}" y="${top}" width="${W - left - right}" height="${plotH}" class="plot"/>`);
  for (const t of logTicks(lo, hi)) {
    const y = f2(py(t));
    parts.push(`<line x1="${left}" y1="${y}" x2="${W - right}" y2="${y}" class="grid"/><text x="${left - 5}" y="${f2(py(t) + 3.5)}" class="yt">${esc(tickLabel(t))}</text>`);
  }
  PLOTTED.forEach(([name], i) => {
    const x = f2(px(xs[i]!));
    parts.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + plotH}" class="grid"/><text x="${x}" y="${top + plotH + 14}" class="xt">${name}</text>`);
  });
  const series = group.map((f, i) => ({
    f,
    color: i === 0 && group.length > 1 ? BASELINE_COLOR : PALETTE[(group.length > 1 ? i - 1 : i) % PALETTE.length]!,
    dashed: i === 0 && group.length > 1,
  }));
  for (const s of series) {
    const pts = PLOTTED.map(([n], i) => `${f2(px(xs[i]!))},${f2(py(s.f.percentiles![n]))}`);
    parts.push(
      `<polyline class="series" data-figure="${esc(s.f.name)}" points="${pts.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}/>`,
    );
    PLOTTED.forEach(([n], i) =>
      parts.push(
        `<circle cx="${f2(px(xs[i]!))}" cy="${f2(py(s.f.percentiles![n]))}" r="2.6" fill="${s.color}"><title>${esc(`${s.f.name} ${n}: ${formatValue(s.f.percentiles![n], "ns")}`)}</title></circle>`,
      ),
    );
  }
  const title = groupTitle(group);
  parts.push(`<text x="8" y="16" class="ct">${esc(title)} <tspan class="dim">(ns per operation)</tspan></text>`);
  parts.push(
    legend(
      series.map((s, i) => ({ label: `${shortLabel(s.f)}${i === 0 && group.length > 1 ? " (baseline)" : ""}: p50 ${formatValue(s.f.percentiles!.p50, "ns")}, p99.9 ${formatValue(s.f.percentiles!["p99.9"], "ns")}`, color: s.color, dashed: s.dashed })),
      left,
      top + plotH + 34,
    ),
  );
  return svg(id, "latency", W, H, `Latency percentiles: ${title}`, parts.join(""));
}

/** Horizontal bars of a group of throughput or wall-time figures, the baseline first. */
export function barChart(group: Figure[], id: string): string {
  const W = 460, left = 150, right = 135, rowH = 22, top = 26;
  const H = top + group.length * rowH + 10;
  const max = Math.max(...group.map((f) => f.max), ...group.map((f) => f.value)) || 1;
  const bx = (v: number) => left + (v / max) * (W - left - right);
  const parts: string[] = [];
  group.forEach((f, i) => {
    const y = top + i * rowH;
    const base = i === 0 && group.length > 1;
    const color = base ? BASELINE_COLOR : PALETTE[(group.length > 1 ? i - 1 : i) % PALETTE.length]!;
    const w = Math.max(1, bx(f.value) - left);
    parts.push(`<text x="${left - 6}" y="${y + 14}" class="bl">${esc(shortLabel(f).slice(-24))}</text>`);
    parts.push(
      `<rect class="bar" data-figure="${esc(f.name)}" x="${left}" y="${y + 3}" width="${f2(w)}" height="${rowH - 8}" fill="${color}"${base ? ' fill-opacity="0.55"' : ""}><title>${esc(`${f.name}: ${formatValue(f.value, f.unit)} [${formatValue(f.min, f.unit)} - ${formatValue(f.max, f.unit)}]`)}</title></rect>`,
    );
    // the range over repetitions
    parts.push(`<line x1="${f2(bx(f.min))}" y1="${y + rowH / 2 + 1}" x2="${f2(bx(f.max))}" y2="${y + rowH / 2 + 1}" class="rng"/>`);
    parts.push(`<text x="${f2(Math.max(bx(f.value), bx(f.max)) + 5)}" y="${y + 14}" class="bv">${esc(formatValue(f.value, f.unit))}${f.baseline ? ` ${f.baseline.ratio.toFixed(2)}x` : ""}</text>`);
  });
  const title = groupTitle(group);
  parts.push(`<text x="8" y="16" class="ct">${esc(title)} <tspan class="dim">(${esc(group[0]!.unit)}, ${group[0]!.better} is better)</tspan></text>`);
  return svg(id, group[0]!.kind === "time" ? "time" : "throughput", W, H, `${group[0]!.kind}: ${title}`, parts.join(""));
}

/** Every ratio to a baseline in a suite, on a log scale centred on 1. */
export function ratioChart(s: SuiteResult, id: string): string {
  const figs = s.figures.filter((f) => f.baseline && f.baseline.ratio > 0);
  const W = 900, left = 330, right = 70, rowH = 18, top = 26;
  const H = top + figs.length * rowH + 22;
  const ext = Math.max(1.5, ...figs.map((f) => Math.max(f.baseline!.ratio, 1 / f.baseline!.ratio)));
  const L = Math.log10(ext) * 1.05;
  const rx = (r: number) => left + ((Math.log10(r) + L) / (2 * L)) * (W - left - right);
  const parts: string[] = [];
  // Ticks 1-2-5 per decade, outward from 1x, each at least 36 px from the last one kept.
  const kept = [1];
  for (const side of [[2, 5, 10, 20, 50, 100, 200, 500, 1000], [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001]]) {
    let last = rx(1);
    for (const t of side) {
      if (Math.abs(Math.log10(t)) > L) break;
      if (Math.abs(rx(t) - last) < 36) continue;
      kept.push(t);
      last = rx(t);
    }
  }
  for (const t of kept) {
    const x = f2(rx(t));
    parts.push(`<line x1="${x}" y1="${top - 4}" x2="${x}" y2="${top + figs.length * rowH}" class="${t === 1 ? "one" : "grid"}"/><text x="${x}" y="${top + figs.length * rowH + 14}" class="xt">${t}x</text>`);
  }
  figs.forEach((f, i) => {
    const r = f.baseline!.ratio;
    const y = top + i * rowH;
    const good = f.better === "lower" ? r <= 1 : r >= 1;
    const a = rx(Math.min(1, r)), b = rx(Math.max(1, r));
    const base = s.figures.find((x) => x.name === f.baseline!.name);
    parts.push(`<text x="${left - 6}" y="${y + 12}" class="bl">${esc(base ? groupTitle([base, f]) : shortLabel(f))}</text>`);
    parts.push(
      `<rect class="bar" data-figure="${esc(f.name)}" x="${f2(a)}" y="${y + 3}" width="${f2(Math.max(1, b - a))}" height="${rowH - 6}" fill="${good ? "#16a34a" : "#dc2626"}" fill-opacity="0.75"><title>${esc(`${f.name}: ${r.toFixed(3)}x ${f.baseline!.name} [${f.baseline!.ratioMin.toFixed(3)} - ${f.baseline!.ratioMax.toFixed(3)}]`)}</title></rect>`,
    );
    parts.push(`<line x1="${f2(rx(f.baseline!.ratioMin))}" y1="${y + rowH / 2}" x2="${f2(rx(f.baseline!.ratioMax))}" y2="${y + rowH / 2}" class="rng"/>`);
    parts.push(`<text x="${W - right + 6}" y="${y + 12}" class="bv">${r.toFixed(r < 10 ? 3 : 1)}x</text>`);
  });
  parts.push(`<text x="8" y="16" class="ct">ratio to the baseline (green: better than the baseline; the line: range over repetitions)</text>`);
  return svg(id, "ratio", W, H, `Ratios to baselines in ${s.name}`, parts.join(""));
}

function svg(id: string, kind: string, w: number, h: number, title: string, body: string): string {
  return (
    `<figure class="chart"><svg id="${esc(id)}" class="chart-svg" data-kind="${kind}" role="img" aria-label="${esc(title)}" ` +
    `width="${w}" height="${h}" viewBox="0 0 ${w} ${h}"><title>${esc(title)}</title>${body}</svg></figure>`
  );
}

function figureTable(s: SuiteResult): string {
  const rows = s.figures
    .map(
      (f) =>
        `<tr><td title="${esc(f.label)}"><code>${esc(shortLabel(f))}</code><div class="lbl">${esc(f.label)}</div></td><td class="n">${esc(formatValue(f.value, f.unit))}</td>` +
        `<td class="n dim">${esc(formatValue(f.min, f.unit))} – ${esc(formatValue(f.max, f.unit))}</td><td>${esc(ratioText(f))}</td>` +
        `<td class="n">${f.percentiles ? esc(formatValue(f.percentiles.p50, "ns")) : ""}</td><td class="n">${f.percentiles ? esc(formatValue(f.percentiles.p99, "ns")) : ""}</td>` +
        `<td class="n">${f.percentiles ? esc(formatValue(f.percentiles["p99.9"], "ns")) : ""}</td><td class="dim">${f.measured}</td></tr>`,
    )
    .join("");
  return `<table class="figs"><thead><tr><th>figure</th><th>median</th><th>range</th><th>ratio to baseline [range]</th><th>p50</th><th>p99</th><th>p99.9</th><th>in</th></tr></thead><tbody>${rows}</tbody></table>`;
}

function suiteSection(s: SuiteResult, n: number): string {
  const charts: string[] = [];
  let c = 0;
  for (const g of groups(s, (f) => f.kind === "latency" && f.percentiles !== undefined)) charts.push(latencyChart(g, `chart-${n}-${c++}`));
  for (const g of groups(s, (f) => f.kind !== "latency")) charts.push(barChart(g, `chart-${n}-${c++}`));
  const ratio = s.figures.some((f) => f.baseline) ? ratioChart(s, `chart-${n}-${c++}`) : "";
  const skipped = s.skipped.map((k) => `<li>skipped <code>${esc(k.name)}</code>: ${esc(k.reason)}</li>`).join("");
  const notes = s.notes.map((t) => `<li>${esc(t)}</li>`).join("");
  return (
    `<section class="suite" id="suite-${esc(s.name)}"><h2>${esc(s.name)} <span class="dim">${esc(s.title)}</span></h2>` +
    `<p class="meta">${s.figures.length} figures, ${s.reps} alternating repetitions, ${s.seconds.toFixed(1)} s</p>` +
    (ratio ? `<div class="wide">${ratio}</div>` : "") +
    `<div class="charts">${charts.join("")}</div>` +
    (skipped || notes ? `<ul class="notes">${skipped}${notes}</ul>` : "") +
    figureTable(s) +
    `</section>`
  );
}

function envTable(doc: BenchDocument): string {
  const e = doc.environment;
  const flags = NOTABLE_FLAGS.filter((f) => e.cpu.flags.includes(f));
  const rows: [string, string][] = [
    ["CPU", `${e.cpu.model}${e.cpu.mhz ? ` (${Math.round(e.cpu.mhz)} MHz)` : ""}`],
    ["CPU flags", flags.join(" ")],
    ["cores", `${e.cpu.online} online of ${e.cpu.cores}`],
    ["memory", `${(e.memory.totalBytes / 2 ** 30).toFixed(1)} GiB`],
    ["kernel", `Linux ${e.kernel.release} ${e.kernel.machine} (${e.kernel.version})`],
    ["OS", e.os],
    ["compiler", e.compiler],
    ["library", `${e.library.variant} ${e.library.version}: ${e.library.path}`],
    ["build flags", e.library.flags],
    ["SIMD", e.simd],
    ["Bun", `${e.bun.version} (${e.bun.revision.slice(0, 12)})`],
    ["git", e.git.commit ? `${e.git.commit}${e.git.dirty ? " (with uncommitted changes)" : ""}${e.git.branch ? ` on ${e.git.branch}` : ""}` : "not a git checkout"],
    ["load average", e.loadAverage.join(", ")],
    ["cycle counter", `${e.nsPerTick.toFixed(4)} ns per tick`],
  ];
  return `<table class="env">${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join("")}</table>`;
}

function gateSection(doc: BenchDocument): string {
  const g = doc.gate;
  if (!g) return "";
  const rows = g.rows
    .map((r) => {
      const cells = gateRowText(r).map(plain);
      return `<tr class="${r.verdict}">${cells.map((c, i) => `<td${i === 2 ? ' class="n"' : ""}>${esc(c)}</td>`).join("")}</tr>`;
    })
    .join("");
  const verdict = g.failed ? `${g.failed} target(s) not met` : `all ${g.passed} target(s) met${g.skipped ? `, ${g.skipped} skipped` : ""}`;
  return `<section id="gate"><h2>Gate <span class="dim">${esc(g.file)}${g.quick ? ", quick targets" : ""}</span></h2><p class="${g.failed ? "bad" : "good"}">${esc(verdict)}</p><table class="figs"><thead><tr><th>target</th><th>figure</th><th>measured</th><th>threshold</th><th>verdict</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

function comparisonSection(doc: BenchDocument): string {
  const c = doc.comparison;
  if (!c) return "";
  const rows = c.rows
    .filter((r) => r.compared === "ratio")
    .sort((a, b) => b.regressionPct - a.regressionPct)
    .map((r) => `<tr class="${r.verdict}"><td><code>${esc(r.figure)}</code></td><td class="n">${r.previous.toFixed(3)}x</td><td class="n">${r.current.toFixed(3)}x</td><td class="n">${r.regressionPct >= 0 ? "+" : ""}${r.regressionPct.toFixed(1)}%</td><td>${r.verdict}</td></tr>`)
    .join("");
  const warn = c.warnings.map((w) => `<li>${esc(w)}</li>`).join("");
  return `<section id="comparison"><h2>Against ${esc(c.file)} <span class="dim">fail above ${c.maxRegressionPct}% worse in any ratio</span></h2>${warn ? `<ul class="notes">${warn}</ul>` : ""}<p class="${c.failed ? "bad" : "good"}">${c.failed ? `${c.failed} ratio(s) regressed` : "no ratio regressed beyond the limit"}</p><table class="figs"><thead><tr><th>figure</th><th>ratio before</th><th>now</th><th>worse by</th><th>verdict</th></tr></thead><tbody>${rows}</tbody></table></section>`;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#111827;background:#f9fafb}
header{background:#111827;color:#f9fafb;padding:18px 28px}header h1{margin:0;font-size:22px}header p{margin:4px 0 0;color:#d1d5db}
main{padding:8px 28px 40px;max-width:1400px}h2{font-size:18px;margin:26px 0 4px}.dim{color:#6b7280;font-weight:normal}
.meta{margin:0 0 8px;color:#6b7280}.charts{display:flex;flex-wrap:wrap;gap:12px}.wide{margin:8px 0 12px}
figure.chart{margin:0;background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:6px}
svg text{font-family:system-ui,sans-serif}.ct{font-size:12px;font-weight:600;fill:#111827}.xt{font-size:10px;fill:#4b5563;text-anchor:middle}
.yt{font-size:10px;fill:#4b5563;text-anchor:end}.lg{font-size:10.5px;fill:#374151}tspan.dim{fill:#6b7280;font-weight:normal}.bl{font-size:11px;fill:#374151;text-anchor:end}.bv{font-size:11px;fill:#111827}
.plot{fill:#fff;stroke:#d1d5db}.grid{stroke:#e5e7eb;stroke-width:1}.one{stroke:#111827;stroke-width:1.2}.rng{stroke:#111827;stroke-width:1.2;opacity:.55}
table{border-collapse:collapse;margin:10px 0;background:#fff}th,td{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{font-weight:600;font-size:12px;color:#374151}td.n{text-align:right;white-space:nowrap}.lbl{font-size:11px;color:#6b7280;max-width:420px}
.env th{width:120px}tr.fail td{background:#fef2f2}tr.pass td:last-child{color:#15803d}tr.fail td:last-child{color:#b91c1c;font-weight:600}tr.skip td{color:#92400e}
.good{color:#15803d;font-weight:600}.bad{color:#b91c1c;font-weight:600}.notes{color:#92400e;margin:6px 0}code{font-size:12.5px}
nav a{color:#93c5fd;margin-right:12px;text-decoration:none}`;

/** The whole report as one HTML string. */
export function htmlReport(doc: BenchDocument): string {
  const e = doc.environment;
  const gate = doc.gate ? (doc.gate.failed ? `gate: ${doc.gate.failed} target(s) not met` : `gate: all ${doc.gate.passed} target(s) met`) : "";
  const sub = [
    `${doc.quick ? "quick" : "full"} run of ${doc.suites.map((s) => s.name).join(", ")}`,
    `started ${doc.started}, ${doc.seconds.toFixed(1)} s`,
    `${e.cpu.model}, Bun ${e.bun.version}, ${e.git.commit ? e.git.commit.slice(0, 10) : "no git"}`,
    gate,
  ].filter(Boolean);
  const nav = doc.suites.map((s) => `<a href="#suite-${esc(s.name)}">${esc(s.name)}</a>`).join("") + (doc.gate ? `<a href="#gate">gate</a>` : "") + `<a href="#environment">environment</a>`;
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">` +
    `<title>aether bench report</title><style>${CSS}</style></head><body>` +
    `<header><h1>aether bench</h1><p>${sub.map(esc).join(" · ")}</p><nav>${nav}</nav></header><main>` +
    `<p class="meta">Every figure is the median over repetitions that alternate the subject with its baseline, measured in the same run; a ratio is the median of the per-repetition ratios. Latency percentiles are per operation (C loops: every operation timed with the cycle counter; from Bun: per batch mean, see each figure's batch).</p>` +
    gateSection(doc) +
    comparisonSection(doc) +
    doc.suites.map((s, i) => suiteSection(s, i)).join("") +
    `<section id="environment"><h2>Environment</h2>${envTable(doc)}</section>` +
    `</main></body></html>\n`
  );
}
