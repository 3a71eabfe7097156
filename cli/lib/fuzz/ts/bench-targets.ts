// bench-targets.ts: the oracle for bench/targets.json's parser (parseTargets in cli/lib/bench/targets.ts). An input
// is either raw text (first byte odd) or a document assembled from it: a version, top-level keys, and targets
// whose every field is picked from valid and invalid values (ids, figures of known and unknown suites,
// comparisons, stats, thresholds including 0, negatives, NaN-like strings and huge numbers, ops, units, quick
// flags, unknown keys, duplicates). Checked: parseTargets either returns targets of the documented shape (ids
// unique and well formed, figures of a known suite, positive finite thresholds, a ratio target's stat "ratio",
// an absolute target's stat a known one, op <= or >=) and then reading its own output back gives the same, or
// throws TargetsError with one line that names the file; never another exception.
import { parseTargets, STATS, TargetsError } from "../../bench/targets.ts";

export class BenchTargetsFailure extends Error {
  override name = "FuzzFailure";
}
const check = (cond: unknown, msg: () => string) => {
  if (!cond) throw new BenchTargetsFailure(msg());
};

const SUITES = ["alloc", "ffi", "simd", "run", "devpool", "layout"];
const pick = <T>(list: readonly T[], b: number): T => list[b % list.length]!;
const IDS = ["spec-1", "a.b:c_d-e", "", "has space", "dup", "dup", "x/y", "ok.2"];
const FIGURES = ["alloc/pair/16B/safe", "simd/norm2/avx2", "nosuite/x", "alloc", "devpool/pair/256B", "", "ffi/call"];
const COMPARISONS = ["absolute", "ratio", "relative", undefined];
const STAT_VALUES = ["value", "p50", "p99", "p999", "ratio", "median", undefined, 3];
const THRESHOLDS: unknown[] = [1, 0.5, 0, -1, 1e308, "2", null, 100, Number.MIN_VALUE];
const OPS = ["<=", ">=", "<", undefined];
const EXTRA = [undefined, "unit", "source", "bogus"];

function assemble(d: Uint8Array): string {
  let i = 1;
  const b = () => (i < d.length ? d[i++]! : 0);
  const doc: Record<string, unknown> = {};
  const v = b();
  doc.version = v % 5 === 4 ? 2 : v % 5 === 3 ? "1" : 1;
  if (v & 0x20) doc.description = "fuzz";
  if (v & 0x40) doc.unknown = true;
  const n = b() % 7;
  const targets: unknown[] = [];
  for (let k = 0; k < n; k++) {
    const f = [b(), b(), b(), b(), b(), b(), b()];
    const t: Record<string, unknown> = { id: pick(IDS, f[0]!) === "dup" ? "dup" : `${pick(IDS, f[0]!)}${f[0]! & 0x80 ? k : ""}` };
    t.figure = pick(FIGURES, f[1]!);
    const c = pick(COMPARISONS, f[2]!);
    if (c !== undefined) t.comparison = c;
    const s = pick(STAT_VALUES, f[3]!);
    if (s !== undefined) t.stat = s;
    t.threshold = pick(THRESHOLDS, f[4]!);
    const o = pick(OPS, f[5]!);
    if (o !== undefined) t.op = o;
    if (f[6]! & 1) t.quick = f[6]! & 2 ? true : "yes";
    const x = pick(EXTRA, f[6]! >> 2);
    if (x !== undefined) t[x] = x === "bogus" ? 1 : "text";
    targets.push(f[6]! === 255 ? "not an object" : t);
  }
  if (!(v & 0x10)) doc.targets = targets;
  return JSON.stringify(doc);
}

export function checkBenchTargets(data: Uint8Array): string {
  const text = (data[0] ?? 0) & 1 ? new TextDecoder().decode(data.subarray(1)) : assemble(data);
  let parsed;
  try {
    parsed = parseTargets(text, "t.json", SUITES);
  } catch (e) {
    check(e instanceof TargetsError, () => `parseTargets threw ${(e as Error).name}: ${(e as Error).message} on ${text.slice(0, 200)}`);
    const msg = (e as Error).message;
    check(msg.startsWith("t.json: ") && !msg.includes("\n"), () => `a targets error that is not one line naming the file: ${JSON.stringify(msg)}`);
    return `refused: ${msg}`;
  }
  const ids = new Set<string>();
  check(parsed.targets.length > 0, () => "an empty target list was accepted");
  for (const t of parsed.targets) {
    check(/^[\w.:-]+$/.test(t.id) && !ids.has(t.id), () => `bad or repeated id ${JSON.stringify(t.id)}`);
    ids.add(t.id);
    check(SUITES.includes(t.figure.split("/")[0]!) && t.figure.includes("/"), () => `figure ${t.figure}`);
    check(Number.isFinite(t.threshold) && t.threshold > 0, () => `threshold ${t.threshold}`);
    check(t.comparison === "ratio" ? t.stat === "ratio" : (STATS as readonly string[]).includes(t.stat), () => `comparison ${t.comparison} with stat ${t.stat}`);
    check(t.op === undefined || t.op === "<=" || t.op === ">=", () => `op ${t.op}`);
    check(typeof t.quick === "boolean", () => `quick ${t.quick}`);
  }
  const again = parseTargets(
    JSON.stringify({ version: 1, targets: parsed.targets.map((t) => ({ ...t, stat: t.comparison === "ratio" ? undefined : t.stat })) }),
    "t.json",
    SUITES,
  );
  check(JSON.stringify(again.targets) === JSON.stringify(parsed.targets), () => "reading the parsed targets back changed them");
  return `${parsed.targets.length} target(s)`;
}
