// `aether bench --report FILE.html` in a real browser: Debian's chromium, headless, loads the report, and a
// script injected into a copy of it asks the browser for every chart's rendered geometry (the report itself
// carries no script); a screenshot is kept in build/test-output/. Without chromium these tests fail, saying how
// to install it: a report nobody looked at is not tested.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BenchDocument } from "../cli/lib/bench/types.ts";
import { toolEnv, which } from "../cli/lib/tools.ts";
import { aether, ROOT, type Ran } from "./helpers/run.ts";

// Benchmarks run in child processes; on a busy shared machine some take more than the 5 s default.
setDefaultTimeout(60_000);

const OUT = join(ROOT, "build", "test-output");
const REPORT = join(OUT, "bench-report.html");
const RESULT = join(OUT, "bench-report.json");
const SHOT = join(OUT, "bench-report.png");
const profile = mkdtempSync(join(tmpdir(), "aether-chromium-"));
afterAll(() => rmSync(profile, { recursive: true, force: true }));

function chromium(): string {
  const found = [process.env.CHROMIUM, "chromium", "chromium-browser", "google-chrome"].filter(Boolean).map((c) => (c!.includes("/") ? c : which(c!))).find((p) => p && existsSync(p));
  if (!found) throw new Error("chromium not found: the HTML report is tested in a real headless browser; install Debian's chromium (apt-get install -y chromium) or set CHROMIUM=/path/to/chrome");
  return found;
}

/** Chromium as the machine's notes require it: headless, no sandbox (root), no GPU, no background networking. */
function runChromium(args: string[]): { code: number; stdout: string; stderr: string } {
  const flags = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    `--user-data-dir=${profile}`,
  ];
  // toolEnv: the browser is not ours, and gets no sanitizer runtime this suite may run under (aether sanitize).
  const r = Bun.spawnSync({ cmd: [chromium(), ...flags, ...args], env: toolEnv(), stdout: "pipe", stderr: "pipe", timeout: 90_000 });
  return { code: r.exitCode ?? -1, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

// Measures what the browser drew, then replaces the page with the measurements as JSON (for --dump-dom).
const VERIFY = `<script>
(() => {
  const charts = [...document.querySelectorAll("svg.chart-svg")].map((svg) => {
    const box = svg.getBoundingClientRect();
    const vb = svg.viewBox.baseVal;
    const marks = [...svg.querySelectorAll("polyline.series, rect.bar")];
    const outside = marks.filter((m) => {
      const b = m.getBBox();
      const finite = [b.x, b.y, b.width, b.height].every(Number.isFinite);
      return !finite || b.width + b.height <= 0 || b.x < -1 || b.y < -1 || b.x + b.width > vb.width + 1 || b.y + b.height > vb.height + 1;
    }).length;
    return {
      id: svg.id,
      kind: svg.dataset.kind,
      width: box.width,
      height: box.height,
      visible: box.width > 0 && box.height > 0 && getComputedStyle(svg).visibility !== "hidden",
      marks: marks.length,
      outside,
      points: [...svg.querySelectorAll("polyline.series")].map((p) => p.points.numberOfItems),
      texts: [...svg.querySelectorAll("text")].filter((t) => t.getComputedTextLength() > 0).length,
      broken: /NaN|Infinity|undefined/.test(svg.outerHTML),
      figures: marks.map((m) => m.dataset.figure),
    };
  });
  const out = JSON.stringify({ title: document.title, charts, sections: [...document.querySelectorAll("section")].map((s) => s.id) });
  document.body.textContent = "";
  const pre = document.createElement("pre");
  pre.id = "verify";
  pre.textContent = out;
  document.body.append(pre);
})();
</script>`;

interface Drawn {
  title: string;
  sections: string[];
  charts: { id: string; kind: string; width: number; height: number; visible: boolean; marks: number; outside: number; points: number[]; texts: number; broken: boolean; figures: string[] }[];
}

describe("the HTML report", () => {
  let run: Ran;
  let html = "";
  let doc: BenchDocument;
  beforeAll(() => {
    mkdirSync(OUT, { recursive: true });
    for (const f of [REPORT, RESULT, SHOT]) rmSync(f, { force: true });
    run = aether(["bench", "alloc", "ffi", "simd", "devpool", "--quick", "--gate", "--report", REPORT, "--json", RESULT], { timeoutMs: 100_000 });
    html = existsSync(REPORT) ? readFileSync(REPORT, "utf8") : "";
    doc = existsSync(RESULT) ? (JSON.parse(readFileSync(RESULT, "utf8")) as BenchDocument) : (undefined as unknown as BenchDocument);
  }, 120_000);

  test("is written by --report next to the --json result", () => {
    expect([0, 1]).toContain(run.code); // 1 only if a quick target was not met: the speed is not what is tested
    expect(html.startsWith("<!doctype html>")).toBe(true);
    expect(doc.suites.map((s) => s.name)).toEqual(["alloc", "ffi", "simd", "devpool"]);
  });

  test("is self-contained: no script, no stylesheet, image, font or address outside the file", () => {
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<link|<img|<iframe|@import|url\(|src=/i);
    expect(html).not.toMatch(/https?:\/\//i);
    expect(html).toContain("<style>");
    expect((html.match(/<svg /g) ?? []).length).toBeGreaterThanOrEqual(6);
    // the environment and the gate are in it
    expect(html).toContain(doc.environment.cpu.model);
    expect(html).toContain(doc.environment.bun.version);
    expect(html).toContain('id="gate"');
  });

  test("chromium is here to render it", () => {
    expect(chromium()).toBeTruthy();
  });

  test("renders every chart in Chromium: visible, every series and bar drawn inside its chart", () => {
    const verify = join(profile, "verify.html");
    writeFileSync(verify, html.replace("</body>", `${VERIFY}</body>`));
    const r = runChromium(["--dump-dom", "--window-size=1400,2000", `file://${verify}`]);
    expect(r.code).toBe(0);
    const m = /<pre id="verify">([\s\S]*?)<\/pre>/.exec(r.stdout);
    expect(m, `no measurements in the DOM chromium dumped; stderr: ${r.stderr.slice(-500)}`).not.toBeNull();
    const text = m![1]!.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&amp;/g, "&");
    const drawn = JSON.parse(text) as Drawn;
    expect(drawn.title).toBe("aether bench report");
    expect(drawn.sections).toEqual(expect.arrayContaining(["gate", "suite-alloc", "suite-ffi", "suite-simd", "suite-devpool", "environment"]));
    expect(drawn.charts.length).toBe((html.match(/<svg /g) ?? []).length);
    for (const c of drawn.charts) {
      const where = `chart ${c.id} (${c.kind})`;
      expect(c.visible, where).toBe(true);
      expect(c.width, where).toBeGreaterThan(100);
      expect(c.height, where).toBeGreaterThan(40);
      expect(c.marks, where).toBeGreaterThan(0);
      expect(c.outside, where).toBe(0);
      expect(c.broken, where).toBe(false);
      expect(c.texts, where).toBeGreaterThan(2);
      if (c.kind === "latency") for (const n of c.points) expect(n, where).toBe(7); // p50 .. p99.9
    }
    // every latency figure with percentiles is plotted, every throughput figure has its bar, every ratio its bar
    const plotted = new Set(drawn.charts.filter((c) => c.kind === "latency").flatMap((c) => c.figures));
    const barred = new Set(drawn.charts.filter((c) => c.kind === "throughput" || c.kind === "time").flatMap((c) => c.figures));
    const ratios = new Set(drawn.charts.filter((c) => c.kind === "ratio").flatMap((c) => c.figures));
    for (const s of doc.suites) {
      for (const f of s.figures) {
        if (f.kind === "latency" && f.percentiles) expect(plotted.has(f.name), `${f.name} plotted`).toBe(true);
        if (f.kind !== "latency") expect(barred.has(f.name), `${f.name} has a bar`).toBe(true);
        if (f.baseline) expect(ratios.has(f.name), `${f.name} ratio drawn`).toBe(true);
      }
      expect(drawn.charts.some((c) => c.kind === "latency" && c.figures.some((n) => n.startsWith(`${s.name}/`))), `${s.name} has a percentile plot`).toBe(true);
    }
    // subject against baseline: a plot with two series or more, the baseline among them
    expect(drawn.charts.some((c) => c.kind === "latency" && c.figures.includes("alloc/pair/16B/safe") && c.figures.includes("alloc/pair/16B/glibc"))).toBe(true);
    expect(drawn.charts.some((c) => c.kind === "throughput" && c.figures.includes("alloc/threads/64B/2/safe"))).toBe(true);
  }, 120_000);

  test("a screenshot of it is kept in build/test-output", () => {
    const r = runChromium([`--screenshot=${SHOT}`, "--window-size=1400,3000", `file://${REPORT}`]);
    expect(r.code).toBe(0);
    expect(existsSync(SHOT)).toBe(true);
    const png = readFileSync(SHOT);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.readUInt32BE(16)).toBe(1400); // IHDR width
    expect(statSync(SHOT).size).toBeGreaterThan(50_000); // a page of charts, not a blank one
  }, 120_000);
});
